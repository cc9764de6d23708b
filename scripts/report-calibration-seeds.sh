#!/usr/bin/env bash
# ./build.sh report-calibration-seeds → reports/calibration-seeds.json + .md: how far the
# calibration figures of reports/quality.json (one model, models/shop) move from one trained
# model to another. The setting chosen there on validation (λ, head, decay) is applied to the five
# inductive models of ./build.sh report-coldstart (`train`'s default shape, trained on ml-100k
# with seeds 2020, 1, 2, 3, 4 and 15 % of the items held out, which the recommend path places by
# the neighbour mix), and each model's calibrated/uncalibrated list NDCG@10 and C_KL@10 ratios
# are given with their seed mean and spread; likewise for models/shop's own recipe trained with
# seeds 1 to 5 beside models/shop (seed 2020). Runs report-coldstart's training first where its
# checkpoints are missing (about 25 minutes a seed), and each shop-recipe seed's (about 10 minutes);
# with them, about 40 minutes. Each shop-recipe model is also calibrated over a 16-setting grid,
# and the report shows what the validation users of all those models pooled would choose.
# KEEP_MEASURED=1: a model with no checkpoint and no evaluation here is not retrained; its figures
# are kept from the committed report (scripts/calibration_seeds_report.py says which), so seeds
# can be added on another machine without retraining the others.
source "$(dirname "$0")/lib.sh"

setup_data; setup_teacher; build_native
bin="$TARGET_DIR/release/ranklet"
[ -f reports/quality.json ] || die "reports/quality.json is missing: run ./build.sh report-quality first"
read -r lambda head decay < <(python3 -c '
import json
c = json.load(open("reports/quality.json"))["calibration"]
print(c["chosen_lambda"], c["chosen_head"], c.get("chosen_decay", 1.0))')
out="$CACHE/calibration-seeds"
mkdir -p "$out"
# evaluate MODEL REPORT: the model uncalibrated, then calibrated by the chosen setting, into REPORT.
evaluate() {
  rm -f "$2"
  "$bin" eval --data data/ml-100k --model "$1" --shelf-response --quiet --report "$2"
  "$bin" eval --data data/ml-100k --model "$1" --shelf-response --calibrate "$lambda" \
    --calibrate-head "$head" --calibrate-decay "$decay" --quiet --report "$2"
}
# grid MODEL REPORT: the model calibrated at every (λ, head) of a smaller grid than report-quality's
# (decay 1), for a choice on the validation users of several trained models pooled.
grid() {
  local h l
  rm -f "$2"
  for h in 0 1 3 5; do
    for l in 0.02 0.05 0.1 0.2; do
      "$bin" eval --data data/ml-100k --model "$1" --shelf-response --calibrate "$l" \
        --calibrate-head "$h" --quiet --report "$2" > /dev/null
    done
  done
}
# kept SEED_FILE CHECKPOINT GROUP SEED: true where KEEP_MEASURED=1, this machine has neither the
# evaluation nor the checkpoint, and the committed report has GROUP's figures for SEED.
kept() {
  [ "${KEEP_MEASURED:-0}" = 1 ] && [ ! -f "$1" ] && [ ! -f "$2/state.json" ] && python3 -c '
import json, sys
r = json.load(open("reports/calibration-seeds.json"))
sys.exit(0 if any(s["seed"] == int(sys.argv[2]) for s in r.get(sys.argv[1], {}).get("per_seed", [])) else 1)' "$3" "$4" 2>/dev/null
}
for seed in ${SEEDS:-2020 1 2 3 4}; do
  ck="$CACHE/checkpoints/coldstart-$seed"
  if kept "$out/quality-$seed.json" "$ck" coldstart_models "$seed"; then log "seed $seed: kept from the committed report"; continue; fi
  resume=(); [ -f "$ck/state.json" ] && resume=(--resume)
  log "seed $seed: the cold-start run's bundle"
  "$bin" train --data data/ml-100k --mode inductive --holdout-items 0.1 --holdout-valid-items 0.05 --seed "$seed" \
    --epochs 80 --patience 5 --name "inductive-coldstart-seed$seed" --quiet \
    --checkpoint "$ck" "${resume[@]}" --out "$out/model-$seed" > "$out/train-$seed.log"
  log "seed $seed: uncalibrated, and calibrated at λ $lambda, head $head, decay $decay"
  evaluate "$out/model-$seed" "$out/quality-$seed.json"
done
# models/shop's own recipe (scripts/shop-model.sh) with other seeds; models/shop is seed 2020.
shop_seeds=(${SHOP_SEEDS:-1 2 3 4 5})
log "models/shop: uncalibrated, and calibrated"
evaluate models/shop "$out/quality-shop-2020.json"
grid models/shop "$out/grid-shop-2020.json"
for seed in "${shop_seeds[@]}"; do
  ck="$CACHE/checkpoints/shop-seed$seed"
  if kept "$out/quality-shop-$seed.json" "$ck" shop_recipe "$seed"; then log "models/shop's recipe, seed $seed: kept from the committed report"; continue; fi
  resume=(); [ -f "$ck/state.json" ] && resume=(--resume)
  log "models/shop's recipe, seed $seed"
  "$bin" train --data data/ml-100k --mode inductive --text-model models/student \
    --hidden 128 --experts 4 --inner 256 --epochs 60 --patience 8 --seed "$seed" --name "ranklet-shop-seed$seed" \
    --rec-dtype f16 --quiet --checkpoint "$ck" "${resume[@]}" --out "$out/shop-$seed" > "$out/train-shop-$seed.log"
  evaluate "$out/shop-$seed" "$out/quality-shop-$seed.json"
  log "models/shop's recipe, seed $seed: the calibration grid"
  grid "$out/shop-$seed" "$out/grid-shop-$seed.json"
done
SHOP_SEEDS="2020 ${shop_seeds[*]}" \
  python3 scripts/calibration_seeds_report.py "$out" "$lambda" "$head" "$decay" ${SEEDS:-2020 1 2 3 4}
log "reports/calibration-seeds.json, reports/calibration-seeds.md"
