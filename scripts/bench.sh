#!/usr/bin/env bash
# ./build.sh bench (see build.sh for what it writes).
source "$(dirname "$0")/lib.sh"

setup; build_web; build_native
mkdir -p reports
"$TARGET_DIR/release/ranklet" bench embed --model models/teacher --device cpu --device gpu --json reports/native-embed.json
RANKLET_BIN="$TARGET_DIR/release/ranklet" node tests/browser/bench.mjs reports/browser-embed.json
