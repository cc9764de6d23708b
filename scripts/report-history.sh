#!/usr/bin/env bash
# ./build.sh report-history (see build.sh for what it writes).
source "$(dirname "$0")/lib.sh"

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
