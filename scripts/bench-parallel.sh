#!/usr/bin/env bash
# Data-parallel training and distillation across two processes on this machine: the leader
# pinned to core 0 and a `ranklet worker` pinned to core 1, on loopback, against one process
# pinned to core 0. Same command, same data, runs interleaved → reports/parallel.json:
# - training (ml-100k, inductive, the shop model's shape, no dropout so that nothing random
#   differs): epoch time (validation included), the leader's wait-and-sum time per epoch, and
#   the largest difference of the per-epoch figures and test NDCG@10 against one process;
# - distillation (the real teacher on ml-100k's texts, stage 1, DISTILL_EPOCHS epochs): epoch
#   time and the largest difference of the per-epoch figures and the student's cosine;
# - a worker killed after the first checkpointed epoch: seconds until the leader stops.
#   EPOCHS (default 2) epochs per run, REPEATS (default 2) runs of each, at each batch size of
#   BATCHES (default "64 256": the shop model's and a data-parallel one); DISTILL_EPOCHS (1).
source "$(dirname "$0")/lib.sh"
setup_data
setup_teacher
[ -n "${NO_BUILD:-}" ] || build_native
BIN="$TARGET_DIR/release/ranklet"
EPOCHS=${EPOCHS:-2}
REPEATS=${REPEATS:-2}
DISTILL_EPOCHS=${DISTILL_EPOCHS:-1}
BATCHES=${BATCHES:-64 256}
OUT="$CACHE/parallel"
mkdir -p "$OUT"
command -v taskset >/dev/null || apt_install util-linux
[ "$(nproc)" -ge 2 ] || die "two cores are needed (one per process)"

train() {  # $1: label, $2: batch size, the rest: --devices …
  local label=$1 batch=$2; shift 2
  taskset -c 0 "$BIN" train --data data/ml-100k --mode inductive --text-model models/student \
    --hidden 128 --experts 4 --inner 256 --dropout 0 --batch-size "$batch" --epochs "$EPOCHS" --patience 99 --restart --quiet \
    --cache "$CACHE/vectors" --checkpoint "$OUT/checkpoint-$label" \
    --report "$OUT/$label.json" "$@" >/dev/null
}

start_worker() {  # sets $worker (pid) and $address
  taskset -c 1 "$BIN" worker --listen 127.0.0.1:0 >"$OUT/worker.out" 2>"$OUT/worker.err" &
  worker=$!
  for _ in $(seq 1 100); do grep -q ws:// "$OUT/worker.out" 2>/dev/null && break; sleep 0.1; done
  address=$(grep -o 'ws://[0-9.:]*' "$OUT/worker.out") || die "the worker did not start: $(cat "$OUT/worker.err")"
}
stop_worker() { kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null || true; }

distill() {  # $1: label, the rest: --devices …
  local label=$1; shift
  taskset -c 0 "$BIN" distill --texts data/ml-100k --out "$OUT/student-$label" \
    --epochs "$DISTILL_EPOCHS" --stage1-epochs "$DISTILL_EPOCHS" --restart --quiet \
    --checkpoint "$OUT/checkpoint-distill-$label" --report "$OUT/distill-$label.json" "$@" >/dev/null
}

log "text vectors (cached once, not timed)"
EPOCHS=1 train warmup 64 --devices 1
for batch in $BATCHES; do
  for r in $(seq 1 "$REPEATS"); do
    log "batch $batch, run $r/$REPEATS: one process on core 0"
    rm -f "$OUT/one-$batch-$r.json"; train "one-$batch-$r" "$batch" --devices 1
    log "batch $batch, run $r/$REPEATS: leader on core 0 + worker on core 1"
    start_worker
    rm -f "$OUT/two-$batch-$r.json"; train "two-$batch-$r" "$batch" --devices "cpu,$address"
    stop_worker
  done
done

log "exactness: ml-100k, ID mode (nothing random differs between the runs), one vs two processes"
exact() {  # $1: label, the rest: --devices …
  local label=$1; shift
  taskset -c 0 "$BIN" train --data data/ml-100k --mode id --dropout 0 --epochs 2 --patience 99 \
    --restart --quiet --checkpoint "$OUT/checkpoint-exact-$label" --report "$OUT/exact-$label.json" \
    "$@" >/dev/null
}
rm -f "$OUT"/exact-*.json; exact one --devices 1
start_worker; exact two --devices "cpu,$address"; stop_worker

log "distillation: one process on core 0"
rm -f "$OUT/distill-one.json"; distill one --devices 1
log "distillation: leader on core 0 + worker on core 1"
start_worker
rm -f "$OUT/distill-two.json"; distill two --devices "cpu,$address"
stop_worker

log "a worker killed after the first checkpointed epoch"
start_worker
rm -rf "$OUT/checkpoint-dead"
taskset -c 0 "$BIN" train --data data/ml-100k --mode id --epochs 50 --patience 99 --quiet \
  --checkpoint "$OUT/checkpoint-dead" --devices "cpu,$address" >/dev/null 2>"$OUT/dead.err" &
leader=$!
for _ in $(seq 1 600); do [ -f "$OUT/checkpoint-dead/state.json" ] && break; sleep 0.5; done
[ -f "$OUT/checkpoint-dead/state.json" ] || die "no checkpoint after 300 s"
sleep 2  # into the next epoch
kill -9 "$worker"; killed=$(date +%s.%N)
wait "$leader" && die "the leader went on without its worker"
stopped=$(date +%s.%N)
wait "$worker" 2>/dev/null || true
python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$killed" "$stopped" >"$OUT/dead.seconds"
grep -q "$address" "$OUT/dead.err" || die "the leader's error does not name $address: $(cat "$OUT/dead.err")"

python3 - "$OUT" "$REPEATS" "$BATCHES" <<'PY'
import json, statistics, sys, os, platform
out, repeats, batches = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def report_of(name):
    return json.load(open(os.path.join(out, name + ".json")))
def series(batch):
    one = [report_of(f"one-{batch}-{r}")["models"][0] for r in range(1, repeats + 1)]
    two = [report_of(f"two-{batch}-{r}")["models"][0] for r in range(1, repeats + 1)]
    t1 = [e["seconds"] for m in one for e in m["log"]]
    t2 = [e["seconds"] for m in two for e in m["log"]]
    ex = [e.get("exchange_seconds", 0.0) for m in two for e in m["log"]]
    busy = [e.get("replica_seconds", []) for m in two for e in m["log"]]
    valid = [e.get("valid_seconds", 0.0) for m in two for e in m["log"]]
    ratios = [statistics.mean(e["seconds"] for e in b["log"]) / statistics.mean(e["seconds"] for e in a["log"]) for a, b in zip(one, two)]
    # The same run's training figures on one and on two processes: per-epoch loss and
    # validation NDCG@10, and the test NDCG@10.
    diffs = []
    for a, b in zip(one, two):
        for ea, eb in zip(a["log"], b["log"]):
            diffs += [abs(ea["loss"] - eb["loss"]), abs(ea["valid_ndcg10"] - eb["valid_ndcg10"])]
        diffs.append(abs(a["test"]["ndcg@10"] - b["test"]["ndcg@10"]))
    return {
        "batch_size": int(batch),
        "two_process_epoch_ratio": round(statistics.mean(t2) / statistics.mean(t1), 3),
        "two_process_epoch_ratio_per_run": [round(r, 3) for r in ratios],
        "one_process_epoch_s": {"mean": round(statistics.mean(t1), 2), "all": [round(x, 2) for x in t1]},
        "two_process_epoch_s": {"mean": round(statistics.mean(t2), 2), "all": [round(x, 2) for x in t2]},
        "exchange_s_per_epoch": [round(x, 2) for x in ex],
        "replica_s_per_epoch": [[round(x, 2) for x in b] for b in busy],
        "valid_s_per_epoch": [round(x, 2) for x in valid],
        "max_abs_diff_vs_one_process": max(diffs),
        "max_abs_diff_note": "inductive mode draws MoE gate noise on each replica's device, so these runs differ by more than rounding; the exactness run is ID mode",
    }
runs = [series(b) for b in batches]
main = runs[0]
e1, e2 = report_of("exact-one")["models"][0], report_of("exact-two")["models"][0]
exact_diffs = [abs(a[k] - b[k]) for a, b in zip(e1["log"], e2["log"]) for k in ("loss", "valid_ndcg10")]
exact_diffs.append(abs(e1["test"]["ndcg@10"] - e2["test"]["ndcg@10"]))
d1, d2 = report_of("distill-one"), report_of("distill-two")
l1, l2 = d1["ablations"][0]["log"], d2["ablations"][0]["log"]
distill_diffs = [abs(x[k] - y[k]) for x, y in zip(l1, l2) for k in ("loss", "valid_cosine", "train_cosine")]
distill_diffs.append(abs(d1["student"]["mean_cosine_to_teacher"] - d2["student"]["mean_cosine_to_teacher"]))
dead_s = float(open(os.path.join(out, "dead.seconds")).read())
report = {
    "what": "ml-100k training epoch (inductive, the shop model's shape: hidden 128, 4 experts, inner 256, no dropout; validation included): leader on core 0 plus one `ranklet worker` process on core 1 over loopback WebSocket, against one process on core 0; runs interleaved",
    "two_process_epoch_ratio": main["two_process_epoch_ratio"],
    "two_process_epoch_ratio_meaning": f"at batch {main['batch_size']} (the shop model's); every batch size under by_batch_size",
    "max_abs_diff_vs_one_process": float(f"{max(exact_diffs):.3g}"),
    "max_abs_diff_meaning": "ml-100k, ID mode, no dropout, 2 epochs: largest difference over every epoch's loss and validation NDCG@10 and the test NDCG@10, two processes vs one",
    "by_batch_size": runs,
    "meanings": {
        "exchange_s_per_epoch": "the leader's time after its own shard, waiting for the worker's and summing the gradients",
        "replica_s_per_epoch": "per replica (leader, worker): seconds from each step's start until its gradients were on the leader, summed over the epoch",
        "valid_s_per_epoch": "the validation ranking at the epoch's end, on the leader alone",
    },
    "distill_max_abs_diff_vs_one_process": float(f"{max(distill_diffs):.3g}"),
    "distill": {
        "what": "ranklet distill, the real teacher (all-MiniLM-L6-v2) on ml-100k's texts, stage 1 (COS-NCE), the default student recipe otherwise",
        "one_process_epoch_s": [round(e["seconds"], 2) for e in l1],
        "two_process_epoch_s": [round(e["seconds"], 2) for e in l2],
        "two_process_epoch_ratio": round(sum(e["seconds"] for e in l2) / sum(e["seconds"] for e in l1), 3),
        "exchange_s_per_epoch": [round(e.get("exchange_seconds", 0.0), 2) for e in l2],
        "mean_cosine_to_teacher": [d1["student"]["mean_cosine_to_teacher"], d2["student"]["mean_cosine_to_teacher"]],
    },
    "dead_worker_error_s": dead_s,
    "dead_worker_meaning": "seconds from SIGKILL of the worker (mid-epoch, after the first checkpoint) to the leader's exit with an error naming the worker's address",
    "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
    "command": "./build.sh bench-parallel",
}
path = "reports/parallel.json"
tmp = path + ".tmp"
json.dump(report, open(tmp, "w"), indent=2)
os.replace(tmp, path)
print(json.dumps(report, indent=2))
PY
