#!/usr/bin/env bash
# ./build.sh bench-catalog → reports/catalog.json: the precomputed item index on catalogues of
# ml-100k's 1 682 films (models/shop, real vectors) and a seeded synthetic product catalogue of
# 20 000 items (tests/tools/synthetic_catalog.py, real vectors through the same bundle):
#   - `ranklet index` items/s as a ratio to `ranklet embed` alone on the same items, same run
#     (interleaved rounds), and the index's size (gzip -9);
#   - test NDCG@10 on ml-100k with the int8 index against the model's exact f32 ranking;
#   - in headless Chromium (CPU backend): first visit to a personal shelf in a fresh profile,
#     bytes (gzip -9 of every file fetched), a later visit, recommend() latency;
#     ml-100k also without an index, for comparison.
#   - partitioned indexes (`--partitions auto`, the default nprobe and decoys) of 100 000 and
#     1 000 000 clustered synthetic vectors (examples/synthetic_index.rs, seeded; recall@10/@100
#     of the default probing against the exact ranking on test queries, nprobe swept on
#     validation queries), and their first visit, later visit and recommend() with shards cached
#     and fetched from the local server; ml-100k's NDCG@10 with a partitioned index.
# PARTS=cells runs only the partitioned part and merges it into the existing report.
source "$(dirname "$0")/lib.sh"
setup_data; setup_catalog; setup_browser
# NO_BUILD=1 measures the modules and binary already built (e.g. right after ./build.sh test).
if [ -z "${NO_BUILD:-}" ]; then build_web; build_native; fi
bin=${RANKLET_BIN:-$TARGET_DIR/release/ranklet}
W="$ROOT/target/bench-catalog"; mkdir -p "$W" reports
ROUNDS=${ROUNDS:-2}
PARTS=${PARTS:-all}

# Partitioned indexes: synthetic clustered vectors at 100 000 and 1 000 000 items; ml-100k's
# NDCG with a partitioned index (real vectors; nprobe 2 of its 5 cells, so that probing matters).
bench_cells() {
  cargo build --release --locked --example synthetic_index
  for n in 100000 1000000; do
    name="synthetic-$((n / 1000))k"; [ "$n" = 1000000 ] && name=synthetic-1m
    rm -rf "$W/$name"; mkdir -p "$W/$name"; cp -r models/shop "$W/$name/shop"
    log "synthetic partitioned index: $n items"
    "$TARGET_DIR/release/examples/synthetic_index" --model models/shop --items "$n" --out "$W/$name/shop/index" \
      --report "$W/$name/recall.json" --queries 100 >/dev/null
  done
  rm -rf "$W/ml-100k-cells"
  "$bin" index --model models/shop --data data/ml-100k --out "$W/ml-100k-cells" --partitions auto --nprobe 2 --quiet >/dev/null
  "$bin" eval --data data/ml-100k --model models/shop --index "$W/ml-100k-cells" --quiet --report "$W/eval-cells.json" >/dev/null
  RANKLET_BIN="$bin" node tests/browser/catalog_bench.mjs "$W/browser-cells.json" synthetic-100k:shop:cells synthetic-1m:shop:cells
}
bench_cells
if [ "$PARTS" = cells ]; then
  python3 scripts/catalog_report.py "$W" --cells-only
  exit 0
fi

prepare() { # name catalog-file
  rm -rf "$W/$1"; mkdir -p "$W/$1"
  cp "$2" "$W/$1/catalog.jsonl"
  cp -r models/shop "$W/$1/shop"
}
python3 - www/catalog/ml-100k.json "$W/ml-100k.jsonl" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))
open(sys.argv[2], "w").write("".join(json.dumps(i) + "\n" for i in items))
PY
prepare ml-100k "$W/ml-100k.jsonl"
python3 tests/tools/synthetic_catalog.py 20000 "$W/synthetic-20k.jsonl" --seed 42
prepare synthetic-20k "$W/synthetic-20k.jsonl"
rm -rf "$W/ml-100k-plain"; mkdir -p "$W/ml-100k-plain"; cp "$W/ml-100k/catalog.jsonl" "$W/ml-100k-plain/"; cp -r models/shop "$W/ml-100k-plain/shop"

# Native: embed alone vs index, interleaved, per catalogue.
native="$W/native.jsonl"; : > "$native"
for name in ml-100k synthetic-20k; do
  cat="$W/$name/catalog.jsonl"
  for round in $(seq "$ROUNDS"); do
    log "round $round: ranklet embed vs ranklet index on $name"
    s=$(date +%s.%N); "$bin" embed --model models/shop --input "$cat" --output "$W/embed.jsonl" --batch-size 64 2>/dev/null; e=$(date +%s.%N)
    rm -rf "$W/idx-tmp"
    t=$(date +%s.%N); "$bin" index --model models/shop --catalog "$cat" --out "$W/idx-tmp" --batch-size 64 --quiet >/dev/null; u=$(date +%s.%N)
    echo "{\"name\": \"$name\", \"round\": $round, \"embed_s\": $(echo "$e - $s" | bc), \"index_s\": $(echo "$u - $t" | bc)}" >> "$native"
  done
  mv "$W/idx-tmp" "$W/$name/shop/index"
done
"$bin" eval --data data/ml-100k --model models/shop --quiet --report "$W/eval-exact.json" >/dev/null
"$bin" eval --data data/ml-100k --model models/shop --index "$W/ml-100k/shop/index" --quiet --report "$W/eval-index.json" >/dev/null

# Browser.
RANKLET_BIN="$bin" node tests/browser/catalog_bench.mjs "$W/browser.json" ml-100k synthetic-20k ml-100k-plain

python3 scripts/catalog_report.py "$W"
