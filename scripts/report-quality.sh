#!/usr/bin/env bash
# ./build.sh report-quality → reports/quality.json + .md: how the shelf answers the visitor
# (issue 23). So far the baseline of today's models: the genre response on ml-100k (the share of
# a genre on the top-8 after three films of it, 10 seeded draws per genre with at least 20
# films, averaged over genres) and Steck's miscalibration C_KL@10 of the test users' lists, for
# models/shop and the popularity baseline, beside their NDCG@10 (`ranklet eval
# --shelf-response`). A minute on 2 CPU cores.
source "$(dirname "$0")/lib.sh"

setup_data; build_native
bin="$TARGET_DIR/release/ranklet"
mkdir -p reports
rm -f reports/quality.json
"$bin" eval --data data/ml-100k --shelf-response --quiet --report reports/quality.json
"$bin" eval --data data/ml-100k --model models/shop --shelf-response --quiet --report reports/quality.json
python3 - <<'PY'
import json
r = json.load(open("reports/quality.json"))
lines = ["# Shelf quality: how the shelf answers the visitor", "",
         "Regenerate: `./build.sh report-quality` (the 2-core development machine). ml-100k, the "
         "leave-one-out protocol of `reports/ml-100k.md`.", "",
         "- **Genre response**: after a history of three films of genre G (10 seeded draws per genre "
         "with at least 20 films), the share of G on the top-8 shelf, averaged over genres (target ≥ 0.5).",
         "- **Miscalibration C_KL@10** (Steck, RecSys 2018): KL between the genre mix of a test user's "
         "history and that of their top-10, mean over test users (lower is better).", "",
         "| model | genre response | C_KL@10 | test NDCG@10 |", "|---|---|---|---|"]
for m in r["models"]:
    s = m["shelf"]
    lines.append(f"| {m['name']} | {s['facet_response']['mean']:.3f} | {s['miscalibration_ckl@10']:.4f} | {m['test']['ndcg@10']:.4f} |")
lines += ["", "Per genre (share of the genre on the top-8):", "",
          "| genre | " + " | ".join(m["name"] for m in r["models"]) + " |",
          "|---|" + "---|" * len(r["models"])]
genres = sorted(r["models"][0]["shelf"]["facet_response"]["per_facet"])
for g in genres:
    lines.append(f"| {g} | " + " | ".join(f"{m['shelf']['facet_response']['per_facet'][g]:.3f}" for m in r["models"]) + " |")
open("reports/quality.md", "w").write("\n".join(lines) + "\n")
PY
log "reports/quality.json, reports/quality.md"
