#!/usr/bin/env bash
# ./build.sh shop-model (see build.sh for what it writes).
source "$(dirname "$0")/lib.sh"

setup_data; build_native
"$TARGET_DIR/release/ranklet" train --data data/ml-100k --mode inductive --text-model models/student \
  --hidden 128 --experts 4 --inner 256 --epochs 60 --patience 8 --restart --name ranklet-shop --rec-dtype f16 \
  --checkpoint "$CACHE/checkpoints/shop" --report reports/shop.json --out models/shop
