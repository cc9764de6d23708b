#!/usr/bin/env bash
# ./build.sh report-ml100k (see build.sh for what it writes).
source "$(dirname "$0")/lib.sh"

setup_teacher; setup_data; build_native
R=reports/ml-100k.json; B="$CACHE/bundles"; mkdir -p reports "$B"; rm -f "$R"
rk() { "$TARGET_DIR/release/ranklet" "$@"; }
rk eval --data data/ml-100k --report "$R"
rk train --data data/ml-100k --mode id --epochs 200 --patience 10 --restart --report "$R" --out "$B/ml-100k-id"
rk train --data data/ml-100k --mode inductive --epochs 80 --patience 10 --restart --report "$R" --out "$B/ml-100k-inductive"
rk train --data data/ml-100k --mode transductive --epochs 80 --patience 10 --restart --report "$R" --out "$B/ml-100k-transductive"
rk train --data data/ml-100k --mode inductive --pretrain-epochs 10 --epochs 80 --patience 10 --restart \
  --name ranklet-inductive-pretrained --report "$R"
rk train --data data/ml-100k --mode inductive --holdout-items 0.1 --epochs 80 --patience 10 --restart \
  --name ranklet-inductive-coldstart --checkpoint "$CACHE/checkpoints/coldstart" --report "$R"
