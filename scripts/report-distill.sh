#!/usr/bin/env bash
# ./build.sh report-distill (see build.sh for what it writes).
source "$(dirname "$0")/lib.sh"

setup_teacher; setup_data; build_native
R=reports/distill.json; B="$CACHE/bundles"; mkdir -p reports "$B"; rm -f "$R"
rk() { "$TARGET_DIR/release/ranklet" "$@"; }
common=(--texts data/ml-100k --restart --report "$R")
# The student: `ranklet distill`'s defaults — 2 layers (teacher layers 2 and 5) keeping all
# 12 heads, feed-forward pruned to 64 neurons, 48 epochs, copies for 80 % of the steps
# (words dropped, vocabulary words 0.5, neighbour words 0.3), lr floor, no dropout.
rk distill "${common[@]}" --out models/student --name student
# The same without neighbour-word copies.
rk distill "${common[@]}" --neighbour-words 0 --out "$B/distill-no-neighbours" --name no-neighbour-words-48ep
# The rows below ran before the defaults above: copies for 50 % of the steps, no neighbour
# words, 32 epochs and vocabulary words 0.3 unless they say otherwise; and with the
# teacher's dropout (0.1) where they pass "${old[@]}".
was=("${common[@]}" --neighbour-words 0)
old=(--dropout 0.1)
# The previous student: 32 epochs, copies for half the steps, vocabulary words 0.3.
recipe32=("${was[@]}" --augment 0.5 --vocab-words 0.3)
rk distill "${recipe32[@]}" --epochs 32 --out "$B/distill-32ep" --name previous-student-32ep
# The students before it, 3 layers × 3 heads × 320 neurons: the same recipe; before
# --lr-floor and --vocab-words; and the first of them alone (24 epochs).
three0=("${was[@]}" "${old[@]}" --layers 3 --heads 3 --ffn 320)
three=("${three0[@]}" --augment 0.5)
rk distill "${three[@]}" --epochs 32 --vocab-words 0.3 --out "$B/distill-three-layers" --name three-layer-student
rk distill "${three[@]}" --epochs 24 --lr-floor 1 --vocab-words 0 --out "$B/distill-previous" --name student-previous
rk distill "${three[@]}" --epochs 24 --vocab-words 0 --out "$B/distill-decay" --name lr-decay-24ep
rk distill "${three0[@]}" --epochs 24 --vocab-words 0 --replace-words 0.3 --augment 0.8 \
  --out "$B/distill-decay-replace" --name lr-decay-catalog-words-24ep
# Ablations on a shorter schedule (5 epochs, constant lr), each against "both-5ep".
short=("${three[@]}" --epochs 5 --stage1-epochs 1 --lr-floor 1)
rk distill "${short[@]}" --vocab-words 0 --out "$B/distill-both" --name both-5ep
rk distill "${short[@]}" --vocab-words 0 --out "$B/distill-homodistil" --name homodistil-alone --no-cos-nce --fgm-epsilon 0
rk distill "${three[@]}" --epochs 5 --stage1-epochs 0 --lr-floor 1 --vocab-words 0 --out "$B/distill-one-stage" --name one-stage
rk distill "${short[@]}" --vocab-words 0 --out "$B/distill-no-fgm" --name no-fgm --fgm-epsilon 0
rk distill "${short[@]}" --vocab-words 0 --out "$B/distill-no-vocab" --name no-vocab-pruning --no-vocab-prune
rk distill "${short[@]}" --vocab-words 0 --out "$B/distill-lrc" --name lrc-bert-alone --no-prune
rk distill "${short[@]}" --vocab-words 0 --out "$B/distill-catalog-words" --name catalog-word-copies --replace-words 0.3
rk distill "${short[@]}" --vocab-words 0.3 --out "$B/distill-vocab-words" --name vocabulary-word-copies
rk distill "${short[@]}" --vocab-words 0 --out "$B/distill-token" --name word-piece-loss --token-weight 1
# Where the compute goes (5 epochs, constant lr; about the compute of 3 layers × 3 heads × 320
# neurons): layers, heads and neurons traded against each other, heads shared out over the
# layers by importance, which teacher layers 2 layers keep, and the 2-layer shape's options.
probe=("${was[@]}" --augment 0.5 --epochs 5 --stage1-epochs 1 --lr-floor 1)
for s in "6 2 128" "3 4 256" "3 8 64" "2 4 512" "2 6 384" "2 8 256" "2 10 128" "2 12 64"; do
  set -- $s
  rk distill "${probe[@]}" "${old[@]}" --vocab-words 0 --layers "$1" --heads "$2" --ffn "$3" \
    --out "$B/distill-shape-$1-$2-$3" --name "shape-$1-layers-$2-heads-$3-neurons"
done
rk distill "${probe[@]}" "${old[@]}" --vocab-words 0 --layers 3 --heads 8 --global-heads \
  --out "$B/distill-global-heads" --name shape-3-layers-24-heads-shared-64-neurons
for m in 1,5 3,5; do
  rk distill "${probe[@]}" "${old[@]}" --vocab-words 0 --layer-map "$m" --out "$B/distill-map-$m" \
    --name "shape-2-layers-12-heads-64-neurons-map-$m"
done
rk distill "${probe[@]}" "${old[@]}" --vocab-words 0.3 --out "$B/distill-two-vocab" --name two-layers-vocabulary-word-copies-5ep
rk distill "${probe[@]}" --vocab-words 0 --out "$B/distill-two-dropout" --name two-layers-no-dropout-5ep
# Against two-layers-no-dropout-5ep: MiniLM's relation loss, the teacher's word table kept,
# a larger FGM step.
for w in 1 4; do
  rk distill "${probe[@]}" --vocab-words 0 --relation-weight "$w" --out "$B/distill-relation-$w" \
    --name "two-layers-relation-loss-$w-5ep"
done
rk distill "${probe[@]}" --vocab-words 0 --freeze-words --out "$B/distill-frozen" --name two-layers-frozen-words-5ep
for e in 0.15 0.3; do
  rk distill "${probe[@]}" --vocab-words 0 --fgm-epsilon "$e" --out "$B/distill-fgm-$e" --name "two-layers-fgm-$e-5ep"
done
# The previous student's recipe with the teacher's dropout, for 32 and 48 epochs.
rk distill "${recipe32[@]}" "${old[@]}" --epochs 32 --out "$B/distill-two-32" --name two-layers-dropout-32ep
rk distill "${recipe32[@]}" "${old[@]}" --epochs 48 --out "$B/distill-two-48" --name two-layers-dropout-48ep
# The previous student's recipe with pruning done by 30 % of the steps (a longer settling phase), and
# with the weights averaged over that phase.
rk distill "${recipe32[@]}" --epochs 32 --prune-until 0.3 --out "$B/distill-prune-early" --name prune-until-0.3-32ep
rk distill "${recipe32[@]}" --epochs 32 --prune-until 0.3 --average 0.998 --out "$B/distill-prune-early-average" \
  --name prune-until-0.3-averaged-32ep
# Recommendation quality: the same inductive recommender on teacher and on student vectors,
# two seeds each (one run's NDCG@10 moves by several per cent with the seed).
RR=reports/distill-rec.json; rm -f "$RR"
for seed in 2020 7; do
  for m in teacher student; do
    rk train --data data/ml-100k --mode inductive --epochs 80 --patience 10 --restart --seed "$seed" \
      --text-model "models/$m" --name "$m-seed$seed" --checkpoint "$CACHE/checkpoints/distill-rec-$m-$seed" \
      --report "$RR" --out "$B/ml-100k-inductive-$m-$seed"
  done
done
python3 - "$R" "$RR" <<'PY'
import json, sys
report, rec = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ndcg = {m["name"]: m["test"]["ndcg@10"] for m in rec["models"]}
mean = lambda m: sum(v for k, v in ndcg.items() if k.startswith(m + "-seed")) / 2
s = report["student"]
s["ndcg@10_per_seed"] = ndcg
s["ndcg@10_teacher"], s["ndcg@10_student"] = mean("teacher"), mean("student")
s["ndcg@10_kept"] = s["ndcg@10_student"] / s["ndcg@10_teacher"]
json.dump(report, open(sys.argv[1], "w"), indent=2)
PY
# Held-out cosine by how many of a text's words no training text uses.
python3 tests/tools/heldout_words.py --bin "$TARGET_DIR/release/ranklet" "$B/distill-previous" "$B/distill-three-layers" \
  "$B/distill-32ep" "$B/distill-no-neighbours" models/student \
  > "$B/heldout-words.json"
python3 - "$R" "$B/heldout-words.json" <<'PY'
import json, sys
report, words = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
words["command"] = "python3 tests/tools/heldout_words.py <student-previous bundle> <three-layer-student bundle> <previous-student-32ep bundle> <no-neighbour-words-48ep bundle> models/student"
names = {"distill-previous": "student-previous", "distill-three-layers": "three-layer-student",
     "distill-32ep": "previous-student-32ep", "distill-no-neighbours": "no-neighbour-words-48ep"}
words["models"] = {names.get(k.rstrip("/").split("/")[-1], k.rstrip("/").split("/")[-1]): v for k, v in words["models"].items()}
report["held_out_by_unseen_words"] = words
json.dump(report, open(sys.argv[1], "w"), indent=2)
PY
