#!/usr/bin/env bash
# ./build.sh report-coldstart → reports/coldstart.json + .md: items never seen in training,
# ranked from their text (issue 23, item 3). The inductive model (`train`'s default shape: hidden 300, 8 experts, teacher vectors) is
# trained on ml-100k with 10 % of the items held out (`--holdout-items 0.1`: never in a training
# sequence, not even as negatives), once per holdout seed; for the test users whose target is a
# held-out item: Recall/NDCG@10 over the whole catalogue against popularity and random, and the
# target's rank among the held-out items only (a "new arrivals" shelf). 5 % more of the items
# are held out for validation (`--holdout-valid-items 0.05`): on them the new-item policies are
# chosen — the prior (one score offset for items never seen in training), the new-arrival places
# (the end of a shelf kept for the best new items), the neighbour mix and the catalogue-popularity
# lift — validation ranking without the test-held items. Seed means and spread.
# One seed is trained again with each of four changes (ablations; ABLATION=0 skips them).
# About 25 minutes per seed on 2 CPU cores; each run checkpoints, and a run stopped or finished
# earlier resumes from its checkpoint (a finished one is only evaluated again).
source "$(dirname "$0")/lib.sh"

setup_data; setup_teacher; build_native
bin="$TARGET_DIR/release/ranklet"
mkdir -p reports
R="$CACHE/coldstart-runs.json"
rm -f "$R"
for seed in ${SEEDS:-2020 1 2 3 4}; do
  log "cold start, holdout seed $seed"
  ck="$CACHE/checkpoints/coldstart-$seed"
  resume=(); [ -f "$ck/state.json" ] && resume=(--resume)
  "$bin" train --data data/ml-100k --mode inductive --holdout-items 0.1 --holdout-valid-items 0.05 --seed "$seed" \
    --epochs 80 --patience 5 --name "inductive-coldstart-seed$seed" \
    --checkpoint "$ck" "${resume[@]}" --report "$R"
done
# Ablations, one seed each, compared with the same seed's run above: more dropout on the text
# vectors entering the item tower (the adaptor memorises trained items' texts less); text + ID
# (transductive; held-out items have no ID row, as an item added after training has none); and
# the same with ID dropout (DropoutNet: an item's ID left out of half its training steps, so that
# its text alone must rank it, as a new item's must); and logit adjustment (each item's log
# training count added to its logit, so that the item vectors need not carry popularity, which a
# new item's text cannot predict).
A="$CACHE/coldstart-ablation.json"
rm -f "$A"
if [ "${ABLATION:-1}" = 1 ]; then
  while read -r name ck flags; do
    log "ablation: $name, holdout seed 2020"
    ck="$CACHE/checkpoints/$ck"
    resume=(); [ -f "$ck/state.json" ] && resume=(--resume)
    # shellcheck disable=SC2086  # $flags: several arguments
    "$bin" train --data data/ml-100k --holdout-items 0.1 --holdout-valid-items 0.05 --seed 2020 \
      --epochs 80 --patience 5 $flags --name "$name" \
      --checkpoint "$ck" "${resume[@]}" --report "$A"
  done <<'RUNS'
inductive-coldstart-td05-seed2020 coldstart-td05-2020 --mode inductive --text-dropout 0.5
transductive-iddrop0-coldstart-seed2020 coldstart-tr-id0-2020 --mode transductive --id-dropout 0
transductive-iddrop0.5-coldstart-seed2020 coldstart-tr-id0.5-2020 --mode transductive --id-dropout 0.5
inductive-poplogits-coldstart-seed2020 coldstart-pop-2020 --mode inductive --popularity-logits
RUNS
fi
python3 scripts/coldstart_report.py "$R" "$A"
log "reports/coldstart.json, reports/coldstart.md"
