#!/usr/bin/env bash
# ./build.sh bench-web (see build.sh for what it writes).
source "$(dirname "$0")/lib.sh"

setup; build_web; build_native; setup_peer
mkdir -p reports
BENCH_QUERY="${BENCH_QUERY:-models=../models/teacher/,../models/student/&backends=cpu,webgpu&texts=256&batches=1,8,32&peer=fp32,q8&catalog=catalog/ml-100k.json&shop=../models/shop/}" \
  RANKLET_BIN="$TARGET_DIR/release/ranklet" node tests/browser/bench.mjs reports/browser.json
