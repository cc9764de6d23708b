#!/usr/bin/env python3
"""The bad-input catalogue of issue 24, run against the release binary and its server.

    python3 scripts/hardening_report.py BIN OUT.json [--property-cases N] [--foreign-requests N]

Each case runs the binary on one bad input (made here, in a scratch folder, from the binary's own
fixtures) and records: its exit status, whether the message is clear (names the flag, file,
line or id the case is about), whether it panicked (exit 101 or "panicked" on stderr), whether
data was lost (an earlier file overwritten or half-written), and whether it produced a wrong
result (exit 0 with a figure or a bundle it should not have written). The server cases count
every file answered outside the allow-list. `./build.sh report-hardening` runs it with the
property-test and browser counts filled in.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BIN, OUT = sys.argv[1], sys.argv[2]
ARGS = dict(zip(sys.argv[3::2], sys.argv[4::2]))
W = tempfile.mkdtemp(prefix="ranklet-hardening-")
cases = []


def run(args, stdin=None, pipe_head=False):
    if pipe_head:
        # `ranklet … | head -1`: the reader closes the pipe after one line.
        p = subprocess.Popen([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.readline()
        p.stdout.close()
        err = p.stderr.read().decode(errors="replace")
        return p.wait(), "", err
    p = subprocess.run([BIN, *args], capture_output=True, text=True, input=stdin)
    return p.returncode, p.stdout, p.stderr


def case(name, args, *, expect_exit=2, names=(), data_lost=lambda: False, wrong=lambda rc, out: False, **kw):
    rc, out, err = run(args, **kw)
    text = out + err
    panicked = rc == 101 or "panicked" in err
    clear = rc == expect_exit and all(n in text for n in names) and not panicked
    entry = {"name": name, "exit": rc, "expected_exit": expect_exit, "clear_message": clear,
             "panicked": panicked, "data_lost": bool(data_lost()), "wrong_result": bool(wrong(rc, out)),
             "message": (err.strip().splitlines() or [""])[-1][:300]}
    cases.append(entry)
    print(f"{'ok ' if clear and not entry['data_lost'] and not entry['wrong_result'] else 'BAD'} {name}: exit {rc}", flush=True)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w" if isinstance(text, str) else "wb") as f:
        f.write(text)


# Fixtures: the tiny encoder and the synthetic shop, and a tiny inductive bundle trained on it.
fx = os.path.join(W, "fx")
subprocess.run([BIN, "fixture", "--out", fx], check=True, capture_output=True)
enc, shop = os.path.join(fx, "encoder"), os.path.join(fx, "shop")
TINY = ["--mode", "inductive", "--text-model", enc, "--hidden", "16", "--heads", "2", "--inner", "32",
        "--layers", "1", "--experts", "2", "--max-len", "10", "--batch-size", "16", "--quiet", "--restart",
        "--cache", os.path.join(W, "vectors")]
bundle = os.path.join(W, "bundle")
subprocess.run([BIN, "train", "--data", shop, *TINY, "--epochs", "1", "--out", bundle,
                "--checkpoint", os.path.join(W, "ck0")], check=True, capture_output=True)

# -- wrong results: divergence, NaN, encoder layers, several .inter files, reports ----------------
for flag, value in [("--lr", "nan"), ("--temperature", "0"), ("--weight-decay", "nan"), ("--dropout", "1.5"),
                    ("--hidden", "0"), ("--inner", "0"), ("--lr", "inf")]:
    out_dir = os.path.join(W, f"flag{len(cases)}")
    case(f"train {flag} {value}", ["train", "--data", shop, *TINY, "--epochs", "1", flag, value, "--out", out_dir],
         names=(flag,), wrong=lambda rc, out, d=out_dir: os.path.exists(os.path.join(d, "manifest.json")))
short = os.path.join(W, "layers")
shutil.copytree(enc, short)
cfg = json.load(open(os.path.join(short, "config.json")))
cfg["num_hidden_layers"] = 1
write(os.path.join(short, "config.json"), json.dumps(cfg))
os.remove(os.path.join(short, "manifest.json"))  # a plain HF folder: no checksums to trip first
case("embed: config.json with fewer layers than the weights", ["embed", "--model", short, "--text", "a film"],
     names=("not used by config.json", "encoder.layer.1."), wrong=lambda rc, out: rc == 0)
two = os.path.join(W, "two-inter")
os.makedirs(two)
for n in ["a.inter", "b.inter"]:
    write(os.path.join(two, n), "user_id:token\titem_id:token\ttimestamp:float\n1\t1\t1\n")
case("a folder with several .inter files and none named after it", ["eval", "--data", two],
     names=("a.inter", "b.inter"), wrong=lambda rc, out: rc == 0)
report = os.path.join(W, "table.json")
other = '{"dataset": "another-shop", "models": [{"name": "theirs"}]}'
write(report, other)
case("--report holding another dataset's report", ["eval", "--data", shop, "--report", report], expect_exit=0,
     names=("table.json.1.bak",), data_lost=lambda: open(report + ".1.bak").read() != other if os.path.exists(report + ".1.bak") else True)
write(report, "{ half a report")
case("--report that is not a report", ["eval", "--data", shop, "--report", report], expect_exit=0,
     names=("table.json.2.bak",), data_lost=lambda: not os.path.exists(report + ".2.bak"))

# -- panics that must be clear errors ------------------------------------------------------------
header_only = os.path.join(W, "header-only")
write(os.path.join(header_only, "header-only.inter"), "user_id:token\titem_id:token\ttimestamp:float\n")
write(os.path.join(header_only, "header-only.item"), "item_id:token\ttitle:token_seq\n1\tA film\n")
case("train on a header-only .inter (no validation users)", ["train", "--data", header_only, "--mode", "id",
     "--epochs", "1", "--quiet", "--restart", "--checkpoint", os.path.join(W, "ck2")], names=("header-only",))
case("recommend | head -1", ["recommend", "--model", bundle, "--data", shop, "--history", "item-0,item-1", "--k", "50",
     "--cache", os.path.join(W, "vectors")], expect_exit=0, pipe_head=True)
case("eval | head -1", ["eval", "--data", shop], expect_exit=0, pipe_head=True)

# -- smaller ones ----------------------------------------------------------------------------------
ck = os.path.join(W, "ck3")
subprocess.run([BIN, "train", "--data", shop, "--mode", "id", "--hidden", "8", "--heads", "2", "--inner", "8",
                "--layers", "1", "--epochs", "2", "--max-len", "10", "--quiet", "--restart", "--checkpoint", ck],
               check=True, capture_output=True)
records = sorted(f for f in os.listdir(ck) if f.startswith("model-") and f.endswith(".bpk"))
with open(os.path.join(ck, records[-1]), "r+b") as f:
    f.seek(100)
    b = f.read(1)
    f.seek(100)
    f.write(bytes([b[0] ^ 0x10]))
case("--resume on a bit-flipped checkpoint record", ["train", "--data", shop, "--mode", "id", "--hidden", "8",
     "--heads", "2", "--inner", "8", "--layers", "1", "--epochs", "3", "--max-len", "10", "--quiet", "--resume",
     "--checkpoint", ck], names=(records[-1],), wrong=lambda rc, out: rc == 0)
dup = os.path.join(W, "dup-items")
os.makedirs(dup)
write(os.path.join(dup, "dup-items.inter"), "user_id:token\titem_id:token\ttimestamp:float\n1\t1\t1\n1\t2\t2\n1\t1\t3\n")
write(os.path.join(dup, "dup-items.item"), "item_id:token\ttitle:token_seq\n1\tA film\n1\tAnother\n2\tB film\n")
case(".item with a duplicate id", ["eval", "--data", dup], names=("dup-items.item",))
case("recommend --k 0", ["recommend", "--model", bundle, "--data", shop, "--history", "item-0", "--k", "0"], names=("--k",))
case("embed --input a folder", ["embed", "--model", enc, "--input", W, "--output", os.path.join(W, "v.jsonl")], names=(W,))
case("embed --output in a missing folder", ["embed", "--model", enc, "--text", "a", "--output", os.path.join(W, "no", "such", "v.jsonl")],
     names=("no/such",))
trunc = os.path.join(W, "truncated")
shutil.copytree(enc, trunc)
os.remove(os.path.join(trunc, "manifest.json"))
weights = [f for f in os.listdir(trunc) if f.endswith(".safetensors")][0]
data = open(os.path.join(trunc, weights), "rb").read()
write(os.path.join(trunc, weights), data[: len(data) // 2])
case("a plain HF folder with truncated weights", ["embed", "--model", trunc, "--text", "a film"], names=(weights,))
bad_catalog = os.path.join(W, "catalog-bad.jsonl")
write(bad_catalog, '{"id": "a", "title": "A"}\n{"id": "b", "title": \n')
case("ranklet index: a malformed catalogue line", ["index", "--model", bundle, "--catalog", bad_catalog, "--out",
     os.path.join(W, "index-bad"), "--quiet"], names=("catalog-bad.jsonl", "line 2"))

# -- the server ----------------------------------------------------------------------------------
site = os.path.join(W, "site")
for d in ["www", ".git", "data/ml-100k"]:
    os.makedirs(os.path.join(site, d), exist_ok=True)
write(os.path.join(site, "www/index.html"), "<p>shop</p>")
write(os.path.join(site, ".git/config"), "[remote] secret")
write(os.path.join(site, ".env"), "KEY=secret")
write(os.path.join(site, "data/ml-100k/ml-100k.inter"), "secret")
write(os.path.join(W, "outside.json"), "secret")
os.symlink(os.path.join(W, "outside.json"), os.path.join(site, "www/out.json"))
server = subprocess.Popen([BIN, "serve", "--root", site, "--port", "0"], stdout=subprocess.PIPE, text=True)
port = int(server.stdout.readline().strip().rstrip("/").rsplit(":", 1)[1])


def http(raw):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(raw)
    chunks = []
    while True:
        c = s.recv(65536)
        if not c:
            break
        chunks.append(c)
    s.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head.decode(errors="replace"), body


served_outside = 0
server_cases = []
for path in ["/.git/config", "/.env", "/data/ml-100k/ml-100k.inter", "/www/out.json", "/../outside.json",
             "/www/%2e%2e/%2e%2e/outside.json", "/www/..%2f..%2foutside.json"]:
    status, head, body = http(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    leaked = b"secret" in body or status == 200
    served_outside += leaked
    server_cases.append({"name": f"GET {path}", "status": status, "served": leaked})
status, head, _ = http(b"POST /www/index.html HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
server_cases.append({"name": "POST", "status": status, "served": status == 200})
status, head, _ = http(b"GET /www/index.html HTTP/1.1\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")
server_cases.append({"name": "a 64 KiB header", "status": status, "served": status == 200})
status, head, _ = http(b"GET /www/index.html HTTP/1.1\r\n\r\n")
defaults = ["Content-Security-Policy", "X-Content-Type-Options: nosniff", "Referrer-Policy", "Cross-Origin-Resource-Policy: same-origin", "ETag"]
server_cases.append({"name": "GET a page: default security headers", "status": status,
                     "headers_present": [h for h in defaults if h in head], "served": False})
server.terminate()
server.wait()
for name, args, names in [
    ("serve --root a missing folder", ["serve", "--root", os.path.join(W, "missing"), "--port", "0"], ("missing",)),
    ("serve --header with CR/LF", ["serve", "--root", site, "--port", "0", "--header", "X-A: 1\r\nX-B: 2"], ("--header",)),
]:
    case(name, args, names=names)
busy = socket.socket()
busy.bind(("127.0.0.1", 0))
busy.listen()
case("serve on a port in use", ["serve", "--root", site, "--port", str(busy.getsockname()[1])], names=("--port",))
busy.close()

panics = sum(c["panicked"] for c in cases)
report = {
    "cases": cases,
    "server_cases": server_cases,
    "panics": panics,
    "unclear_messages": sum(not c["clear_message"] for c in cases),
    "data_lost": sum(c["data_lost"] for c in cases),
    "wrong_results": sum(c["wrong_result"] for c in cases),
    "served_outside_allowlist": served_outside + sum(c["served"] for c in server_cases[-3:-1]),
    "foreign_requests": int(ARGS["--foreign-requests"]) if "--foreign-requests" in ARGS else None,
    "property_cases": int(ARGS["--property-cases"]) if "--property-cases" in ARGS else None,
    "machine": "x86_64, 2 cores (the project's development machine), no GPU",
    "command": "./build.sh report-hardening",
}
tmp = OUT + ".tmp"
with open(tmp, "w") as f:
    json.dump(report, f, indent=2)
    f.write("\n")
os.replace(tmp, OUT)
shutil.rmtree(W, ignore_errors=True)
print(f"{len(cases)} cases: {panics} panics, {report['unclear_messages']} unclear, {report['wrong_results']} wrong results, "
      f"{report['data_lost']} with data lost; server: {report['served_outside_allowlist']} served outside the allow-list")
