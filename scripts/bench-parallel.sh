#!/usr/bin/env bash
# Data-parallel training across two processes on this machine: the leader pinned to core 0 and a
# `ranklet worker` pinned to core 1, on loopback, against one process pinned to core 0. Same
# command, same data (ml-100k, inductive, the shop model's shape), runs interleaved; the epoch
# time (validation included) and the leader's wait-and-sum time per epoch → reports/parallel.json.
#   EPOCHS (default 2) epochs per run, REPEATS (default 2) runs of each.
source "$(dirname "$0")/lib.sh"
setup_data
[ -n "${NO_BUILD:-}" ] || build_native
BIN="$TARGET_DIR/release/ranklet"
EPOCHS=${EPOCHS:-2}
REPEATS=${REPEATS:-2}
OUT="$CACHE/parallel"
mkdir -p "$OUT"
command -v taskset >/dev/null || apt_install util-linux
[ "$(nproc)" -ge 2 ] || die "two cores are needed (one per process)"

train() {  # $1: label, the rest: --devices …
  local label=$1; shift
  taskset -c 0 "$BIN" train --data data/ml-100k --mode inductive --text-model models/student \
    --hidden 128 --experts 4 --inner 256 --epochs "$EPOCHS" --patience 99 --restart --quiet \
    --cache "$CACHE/vectors" --checkpoint "$OUT/checkpoint-$label" \
    --report "$OUT/$label.json" "$@" >/dev/null
}

log "text vectors (cached once, not timed)"
EPOCHS=1 train warmup --devices 1
for r in $(seq 1 "$REPEATS"); do
  log "run $r/$REPEATS: one process on core 0"
  rm -f "$OUT/one-$r.json"; train "one-$r" --devices 1
  log "run $r/$REPEATS: leader on core 0 + worker on core 1"
  taskset -c 1 "$BIN" worker --listen 127.0.0.1:0 >"$OUT/worker.out" 2>"$OUT/worker.err" &
  worker=$!
  for _ in $(seq 1 100); do grep -q ws:// "$OUT/worker.out" 2>/dev/null && break; sleep 0.1; done
  address=$(grep -o 'ws://[0-9.:]*' "$OUT/worker.out") || die "the worker did not start: $(cat "$OUT/worker.err")"
  rm -f "$OUT/two-$r.json"; train "two-$r" --devices "cpu,$address"
  kill "$worker"; wait "$worker" 2>/dev/null || true
done
python3 - "$OUT" "$REPEATS" "$*" <<'PY'
import json, statistics, sys, os, platform
out, repeats = sys.argv[1], int(sys.argv[2])
def epochs(name):
    log = json.load(open(os.path.join(out, name + ".json")))["models"][0]["log"]
    return log
one = [epochs(f"one-{r}") for r in range(1, repeats + 1)]
two = [epochs(f"two-{r}") for r in range(1, repeats + 1)]
t1 = [e["seconds"] for run in one for e in run]
t2 = [e["seconds"] for run in two for e in run]
ex = [e.get("exchange_seconds", 0.0) for run in two for e in run]
ratios = [statistics.mean(e["seconds"] for e in b) / statistics.mean(e["seconds"] for e in a) for a, b in zip(one, two)]
report = {
    "what": "ml-100k training epoch (inductive, the shop model's shape: hidden 128, 4 experts, inner 256; validation included): leader on core 0 plus one `ranklet worker` process on core 1 over loopback WebSocket, against one process on core 0; runs interleaved",
    "two_process_epoch_ratio": round(statistics.mean(t2) / statistics.mean(t1), 3),
    "two_process_epoch_ratio_per_run": [round(r, 3) for r in ratios],
    "one_process_epoch_s": {"mean": round(statistics.mean(t1), 2), "all": [round(x, 2) for x in t1]},
    "two_process_epoch_s": {"mean": round(statistics.mean(t2), 2), "all": [round(x, 2) for x in t2]},
    "exchange_s_per_epoch": {"mean": round(statistics.mean(ex), 2), "all": [round(x, 2) for x in ex],
        "meaning": "the leader's time after its own shard, waiting for the worker's and summing the gradients"},
    "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
    "command": "./build.sh bench-parallel",
}
path = "reports/parallel.json"
earlier = json.load(open(path)) if os.path.exists(path) else {}
earlier.update(report)
tmp = path + ".tmp"
json.dump(earlier, open(tmp, "w"), indent=2)
os.replace(tmp, path)
print(json.dumps(report, indent=2))
PY
