#!/usr/bin/env bash
# scripts/gpu-check.sh — what a machine's GPUs offer ranklet, measured against its CPU in the
# same run → reports/gpu.json (issue 25). One command, no network: everything it runs is built
# beforehand and carried (the binary, models/teacher, models/student, data/ml-100k).
#
#   scripts/gpu-check.sh [--cpu-only] [--out FILE] [--bin PATH]
#
# It probes the machine (NVIDIA driver and GPUs, CUDA driver library and NVRTC for burn's CUDA
# backend, Vulkan ICDs for WGPU, what the binary was built with), then on the CPU and on each
# GPU backend that works (`gpu` = WGPU, `cuda` when built with --features cuda):
#   - teacher and student embedding, texts/s at batch 1 and 32 (`ranklet bench embed`);
#   - teacher parity: min cosine to the PyTorch reference vectors of
#     tests/fixtures/all-minilm-l6-v2/reference.json;
#   - one training epoch on ml-100k (inductive, the shop model's shape), from the train log;
#   - one distillation epoch (the student's recipe), wall time;
#   - with several GPUs, `--devices 1` vs `--devices N` epoch time;
#   - one training epoch with a `ranklet worker` on the last working device beside the leader
#     (`--devices D,ws://127.0.0.1:PORT`): the worker-side step on that backend (on a GPU, the
#     custom operation's `Cube` handler), recorded as worked or not with its error.
# Speed-ups are ratios to the CPU figure of the same run. `--cpu-only` is the dry run CI does on
# a machine without a GPU: the same steps on the CPU only, on the tiny test encoder and the
# synthetic shop (seconds), so the script itself is tested; it writes to --out (default
# target/gpu-check-dry.json there), never over reports/gpu.json.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CPU_ONLY=0
OUT=
BIN=${RANKLET_BIN:-$ROOT/target/release/ranklet}
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-only) CPU_ONLY=1 ;;
    --out) OUT=$2; shift ;;
    --bin) BIN=$2; shift ;;
    *) echo "usage: scripts/gpu-check.sh [--cpu-only] [--out FILE] [--bin PATH]" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$OUT" ] || { [ "$CPU_ONLY" = 1 ] && OUT=target/gpu-check-dry.json || OUT=reports/gpu.json; }
[ -x "$BIN" ] || { echo "gpu-check: no ranklet binary at $BIN (build it: cargo build --release [--features cuda])" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/ranklet-gpu-check.XXXXXX")
worker=
trap '[ -z "$worker" ] || kill "$worker" 2>/dev/null; rm -rf "$W"' EXIT
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# --- what the machine offers -------------------------------------------------------------------
say "probing the machine"
{
  echo "{"
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "\"nvidia_smi\": $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()]))'),"
  else
    echo "\"nvidia_smi\": null,"
  fi
  lib() { ldconfig -p 2>/dev/null | grep -o "$1[^ ]*" | head -n1 || true; }
  echo "\"libcuda\": \"$(lib libcuda.so)\", \"libnvrtc\": \"$(lib libnvrtc.so)\","
  icds=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null | tr '\n' ' ' || true)
  echo "\"vulkan_icds\": \"${VK_ICD_FILENAMES:-$icds}\","
  echo "\"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores\""
  echo "}"
} > "$W/probe.json"
gpus=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(len(p["nvidia_smi"] or []))' "$W/probe.json")

# --- what to run, and on what -------------------------------------------------------------------
if [ "$CPU_ONLY" = 1 ]; then
  "$BIN" fixture --out "$W/fx" >/dev/null
  TEACHER=$W/fx/encoder STUDENT=$W/fx/encoder DATA=$W/fx/shop TEXTS=16
  SHAPE=(--hidden 16 --heads 2 --inner 32 --layers 1 --experts 2 --max-len 10 --batch-size 16)
  DISTILL=(--layers 1 --ffn 16 --no-vocab-prune --batch-size 16 --max-len 16)
else
  TEACHER=models/teacher STUDENT=models/student DATA=data/ml-100k TEXTS=256
  # The shop model's shape (reports/shop.json) and the student's recipe (docs/distillation.md).
  SHAPE=(--hidden 128 --heads 2 --inner 256 --layers 2 --experts 4 --max-len 50 --batch-size 64)
  DISTILL=()
fi
devices=(cpu)
if [ "$CPU_ONLY" = 0 ]; then
  # A backend counts as working when it embeds one text; the reason is kept when it does not.
  for d in gpu cuda; do
    if "$BIN" embed --model "$STUDENT" --device "$d" --text "probe" >/dev/null 2>"$W/probe-$d.err"; then
      devices+=("$d")
    fi
  done
fi
say "devices: ${devices[*]}"

# --- measurements ------------------------------------------------------------------------------
python3 - "$TEACHER" > "$W/reference-texts.jsonl" <<'PY'
import json, sys
ref = json.load(open("tests/fixtures/all-minilm-l6-v2/reference.json"))
for i, item in enumerate(ref["items"]):
    print(json.dumps({"id": str(i), "text": item["text"]}))
PY
for d in "${devices[@]}"; do
  for who in teacher student; do
    model=$TEACHER; [ "$who" = student ] && model=$STUDENT
    say "$d: $who embedding, batch 1 and 32"
    "$BIN" bench embed --model "$model" --device "$d" --batch 1 --batch 32 --texts "$TEXTS" --json "$W/embed-$who-$d.json" >/dev/null
  done
  say "$d: teacher parity"
  "$BIN" embed --model models/teacher --device "$d" --input "$W/reference-texts.jsonl" --output "$W/parity-$d.jsonl" --quiet
  say "$d: one training epoch"
  "$BIN" train --data "$DATA" --mode inductive --text-model "$STUDENT" "${SHAPE[@]}" --epochs 1 --device "$d" --quiet \
    --restart --checkpoint "$W/ck-$d" --cache "$W/vectors" --out "$W/bundle-$d" --report "$W/train-$d.json" >/dev/null
  say "$d: one distillation epoch"
  s=$(date +%s.%N)
  "$BIN" distill --teacher "$TEACHER" --texts "$DATA" --out "$W/student-$d" --epochs 1 --device "$d" --quiet \
    --restart --checkpoint "$W/dck-$d" "${DISTILL[@]}" >/dev/null
  echo "{\"device\": \"$d\", \"seconds\": $(awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }')}" > "$W/distill-$d.json"
done
if [ "$gpus" -gt 1 ] && [[ " ${devices[*]} " == *" cuda "* ]]; then
  say "cuda: --devices $gpus vs 1"
  "$BIN" train --data "$DATA" --mode inductive --text-model "$STUDENT" "${SHAPE[@]}" --epochs 1 --device cuda --devices "$gpus" \
    --quiet --restart --checkpoint "$W/ck-multi" --cache "$W/vectors" --report "$W/train-multi.json" >/dev/null
fi

d=${devices[${#devices[@]}-1]}
say "$d: one training epoch with a ranklet worker on the same device"
"$BIN" worker --device "$d" --listen 127.0.0.1:0 >"$W/worker.out" 2>"$W/worker.err" &
worker=$!
for _ in $(seq 1 100); do grep -q ws:// "$W/worker.out" 2>/dev/null && break; sleep 0.1; done
address=$(grep -o 'ws://[0-9.:]*' "$W/worker.out" || true)
if [ -n "$address" ] && "$BIN" train --data "$DATA" --mode inductive --text-model "$STUDENT" "${SHAPE[@]}" --epochs 1 \
    --device "$d" --devices "$d,$address" --quiet --restart --checkpoint "$W/ck-worker" --cache "$W/vectors" \
    --report "$W/train-worker.json" >/dev/null 2>"$W/train-worker.err"; then
  echo "{\"device\": \"$d\", \"ok\": true}" > "$W/worker.json"
else
  echo "{\"device\": \"$d\", \"ok\": false}" > "$W/worker.json"
fi
kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null || true; worker=

# --- the report --------------------------------------------------------------------------------
python3 - "$W" "$OUT" "$CPU_ONLY" "$gpus" "${devices[@]}" <<'PY'
import glob, json, math, os, sys
W, out, cpu_only, gpus, devices = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]), sys.argv[5:]
ref = json.load(open("tests/fixtures/all-minilm-l6-v2/reference.json"))
ref_vecs = [item["embedding"] for item in ref["items"]]

def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

def epoch_seconds(path):
    log = json.load(open(path))["models"][0]["log"]
    return log[0]["seconds"]

report = {"probe": json.load(open(f"{W}/probe.json")), "devices": devices, "dry_run": cpu_only,
          "skipped": {d: open(f"{W}/probe-{d}.err").read().strip().splitlines()[-1:] for d in ("gpu", "cuda")
                      if d not in devices and os.path.exists(f"{W}/probe-{d}.err")},
          "per_device": {}}
for d in devices:
    entry = {}
    for who in ("teacher", "student"):
        r = json.load(open(f"{W}/embed-{who}-{d}.json"))["results"]
        entry[f"{who}_texts_per_s"] = {str(x["batch"]): x["texts_per_s"] for x in r}
    vecs = [json.loads(l)["embedding"] for l in open(f"{W}/parity-{d}.jsonl")]
    entry["teacher_parity_min_cosine"] = min(cos(a, b) for a, b in zip(vecs, ref_vecs))
    entry["train_epoch_seconds"] = epoch_seconds(f"{W}/train-{d}.json")
    entry["distill_epoch_seconds"] = json.load(open(f"{W}/distill-{d}.json"))["seconds"]
    report["per_device"][d] = entry
cpu = report["per_device"]["cpu"]
for d, e in report["per_device"].items():
    if d == "cpu":
        continue
    e["speedup_vs_cpu"] = {
        "train_epoch": cpu["train_epoch_seconds"] / e["train_epoch_seconds"],
        "distill_epoch": cpu["distill_epoch_seconds"] / e["distill_epoch_seconds"],
        **{f"{who}_batch_{b}": e[f"{who}_texts_per_s"][b] / cpu[f"{who}_texts_per_s"][b]
           for who in ("teacher", "student") for b in ("1", "32")},
    }
if os.path.exists(f"{W}/train-multi.json"):
    one = report["per_device"]["cuda"]["train_epoch_seconds"]
    many = epoch_seconds(f"{W}/train-multi.json")
    report["multi_gpu"] = {"gpus": gpus, "epoch_seconds_1": one, "epoch_seconds_n": many, "speedup": one / many}
worker = json.load(open(f"{W}/worker.json"))
if worker["ok"]:
    worker["train_epoch_seconds"] = epoch_seconds(f"{W}/train-worker.json")
    worker["steps_ran_on_the_worker"] = "running ranklet/train-shard/1 steps" in open(f"{W}/worker.err").read()
else:
    worker["error"] = (open(f"{W}/train-worker.err").read().strip().splitlines()
                       or open(f"{W}/worker.err").read().strip().splitlines())[-3:]
report["worker_step"] = worker
report["command"] = "scripts/gpu-check.sh" + (" --cpu-only" if cpu_only else "")
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
json.dump(report, open(out + ".tmp", "w"), indent=2)
os.replace(out + ".tmp", out)
print(json.dumps({d: {k: v for k, v in e.items() if not isinstance(v, dict)} for d, e in report["per_device"].items()}, indent=1))
PY
say "wrote $OUT"
