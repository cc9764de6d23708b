#!/usr/bin/env bash
# ./build.sh report-denoise (see build.sh for what it writes).
source "$(dirname "$0")/lib.sh"

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
fi
