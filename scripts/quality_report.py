"""reports/quality.json + .md from `ranklet eval --shelf-response` runs merged in reports/quality.json
(scripts/report-quality.sh writes them), the browser bench's recommend() timings with and without
reasons (argv[1]), reports/coldstart.json (./build.sh report-coldstart) and reports/ml-100k.json.
Run alone, it rewrites the report from what those files hold."""
import json, math, os, random, sys
import calibration_choice, coldstart_report
r = json.load(open("reports/quality.json"))
bench = json.load(open(sys.argv[1]))
models = r["models"]
plain = next(m for m in models if m["name"] == "models/shop")
popularity = next(m for m in models if m["name"] == "popularity")
calibrated = [m for m in models if m["name"].startswith("models/shop (calibrated")]
chosen, lam, head, decay = calibration_choice.choose(plain, calibrated)
s0, s1 = plain["shelf"], chosen["shelf"]
r["calibration"] = {
    "rule": calibration_choice.RULE,
    "chosen_lambda": lam, "chosen_head": head, "chosen_decay": decay,
    "test": {"miscalibration_ckl@10": s1["miscalibration_ckl@10"], "list_ndcg@10": s1["list_ndcg@10"], "genre_response": s1["facet_response"]["mean"]},
    "uncalibrated_test": {"miscalibration_ckl@10": s0["miscalibration_ckl@10"], "list_ndcg@10": s0["list_ndcg@10"], "genre_response": s0["facet_response"]["mean"]},
}
r["genre_response"] = {"before": s0["facet_response"]["mean"], "after": s1["facet_response"]["mean"], "popularity": popularity["shelf"]["facet_response"]["mean"]}
# The test NDCG ratio with a paired bootstrap over the test users (same users, both rankings):
# how far one run's ratio can move by which users happen to be in the test set.
def ndcg_of(positions):
    return [0.0 if p is None else 1.0 / math.log2(p + 2) for p in positions]
if "test_target_positions" in s0 and "test_target_positions" in s1:
    a, b = ndcg_of(s0["test_target_positions"]), ndcg_of(s1["test_target_positions"])
    rng = random.Random(2023)
    n = len(a)
    ratios = []
    for _ in range(2000):
        idx = [rng.randrange(n) for _ in range(n)]
        sa = sum(a[i] for i in idx)
        ratios.append(sum(b[i] for i in idx) / sa if sa > 0 else float("nan"))
    ratios.sort()
    bootstrap = {"ratio": sum(b) / sum(a), "ci95": [ratios[49], ratios[1949]], "resamples": 2000,
                 "share_at_least_0.98": sum(x >= 0.98 for x in ratios) / len(ratios)}
else:
    bootstrap = None
# Each user's target position is kept for the two rankings the bootstrap compares (943 numbers
# per setting would make most of the file).
for m in models:
    if m is not plain and m is not chosen and m.get("shelf"):
        m["shelf"].pop("test_target_positions", None)
r["miscalibration"] = {"before": s0["miscalibration_ckl@10"], "after": s1["miscalibration_ckl@10"]}
r["ndcg@10"] = {"before": s0["list_ndcg@10"], "after": s1["list_ndcg@10"], "what": "list NDCG@10 of the shown top-10 (seen items excluded), ml-100k test users",
                "valid_before": s0["valid"]["list_ndcg@10"], "valid_after": s1["valid"]["list_ndcg@10"],
                "paired_bootstrap_test_ratio": bootstrap}
drop = lambda d: {"because_rank_drop": d["rank_without_because"], "random_rank_drop": d["rank_without_random"], "ratio": d["ratio"], "histories": d["histories"]}
r["faithfulness"] = {**drop(s0["because_deletion_test"]), "nearest": drop(s0["nearest_deletion_test"]),
                     "every_event": drop(s0["every_event_deletion_test"]),
                     "what": "rank the model's first item falls to (from 0) when its reasons' events are removed, vs as many random read events"}
recs = bench["detail"]["recommender"][0]["recommend"]
r["reasons_cost_browser"] = [{"candidates": x["candidates"], "history": x["history"], "with_reasons_ms": x["median_ms"],
                              "without_reasons_ms": x["without_reasons_median_ms"], "runs": x["runs"]} for x in recs]
r["browser"] = bench["browser"]
# Cold start (./build.sh report-coldstart) and the best text mode's figure (reports/ml-100k.md).
if os.path.exists("reports/coldstart.json"):
    cs = json.load(open("reports/coldstart.json"))
    r["cold_start"] = coldstart_report.quality_entry(cs)
ml = json.load(open("reports/ml-100k.json"))
text = [m for m in ml["models"] if m.get("mode") in ("inductive", "transductive") and "cold_start" not in m]
best = max(text, key=lambda m: m["test"]["ndcg@10"])
r["best_text_ndcg@10_ml100k"] = {"value": best["test"]["ndcg@10"], "model": best["name"], "source": "reports/ml-100k.json (models unchanged by this report)"}
# The second dataset (./build.sh report-second-dataset), as it measured it.
r["second_dataset"] = json.load(open("reports/second-dataset.json"))["quality_summary"] if os.path.exists("reports/second-dataset.json") else None
r["command"] = "./build.sh report-quality"
def across_models():
    """reports/calibration-seeds.json's groups, when it was measured for this choice."""
    if not os.path.exists("reports/calibration-seeds.json"):
        return None
    x = json.load(open("reports/calibration-seeds.json"))
    st = x["setting"]
    if (st["lambda"], st["head"], st["decay"]) != (float(lam), int(head), float(decay)):
        return None  # measured for another choice: run ./build.sh report-calibration-seeds again
    return {k: x[k] for k in ("shop_recipe", "coldstart_models") if k in x}


# The chosen setting on other trained models (./build.sh report-calibration-seeds), when measured
# for this choice.
groups = across_models()
if groups:
    r["calibration"]["across_models"] = {
        k: {**{m: {"mean": g[m]["mean"], "stdev": g[m]["stdev"]} for m in ("test_list_ndcg@10_ratio", "valid_list_ndcg@10_ratio", "test_ckl@10_ratio")},
            "seeds": g["seeds"]} for k, g in groups.items()}
    r["calibration"]["across_models"]["source"] = "reports/calibration-seeds.json"
json.dump(r, open("reports/quality.json.tmp", "w"), indent=2)
os.replace("reports/quality.json.tmp", "reports/quality.json")
lines = ["# Shelf quality: how the shelf answers the visitor", "",
         "Regenerate: `./build.sh report-quality` (the 2-core development machine). ml-100k, the "
         "leave-one-out protocol of `reports/ml-100k.md`; `ranklet eval --shelf-response [--calibrate λ --calibrate-head N --calibrate-decay D]`. One seed.", "",
         "- **Genre response**: after a history of three films of genre G (10 seeded draws per genre "
         "with at least 20 films), the share of G on the top-8 shelf, averaged over genres (target ≥ 0.5).",
         "- **Miscalibration C_KL@10** (Steck, RecSys 2018): KL between the genre mix of a user's "
         "history and that of their top-10 (history excluded), mean over users (target: at least halved).",
         "- **List NDCG@10**: the target among those ten (seen items excluded; target ≥ 0.98 × uncalibrated).",
         "- **Calibration**: Steck's greedy re-ranking of the model's top 100, relevance the model's probability among them (softmax of its scores), "
         "weight λ, the model's first `head` items kept in place, the history's mix with each older event weighted `decay` per later event "
         "(1: all alike, Steck's p(g|u); below 1 the list follows what the visitor did last); λ ∈ 0.02–0.5 and head ∈ 0–5 at decay 1, and "
         "decay 0.8–0.95 at λ ∈ 0.05–0.2, head ∈ 1, 3, 5, chosen on the validation users (" + r["calibration"]["rule"] + ").", "",
         "| ranking | genre response | test C_KL@10 | test list NDCG@10 | valid C_KL@10 | valid list NDCG@10 |",
         "|---|---|---|---|---|---|"]
for m in models:
    s = m["shelf"]
    mark = " **(chosen)**" if m is chosen else ""
    lines.append(f"| {m['name']}{mark} | {s['facet_response']['mean']:.3f} | {s['miscalibration_ckl@10']:.4f} | {s['list_ndcg@10']:.4f} | "
                 f"{s['valid']['miscalibration_ckl@10']:.4f} | {s['valid']['list_ndcg@10']:.4f} |")
def decay_line():
    """What the same rule picks among the decayed settings alone, with its test figures."""
    decayed = [m for m in calibrated if calibration_choice.setting(m["name"])[2] < 1]
    if not decayed or decay < 1:
        return []
    m, l, h, d = calibration_choice.choose(plain, decayed)
    if m is plain:
        return []
    t, v = m["shelf"], m["shelf"]["valid"]
    return [f"Among the decayed settings alone the rule picks λ {l}, head {h}, decay {d}: test C_KL@10 {t['miscalibration_ckl@10']:.4f} "
            f"({t['miscalibration_ckl@10'] / s0['miscalibration_ckl@10']:.2f}×), list NDCG@10 {t['list_ndcg@10'] / s0['list_ndcg@10']:.3f}× on test "
            f"({v['list_ndcg@10'] / s0['valid']['list_ndcg@10']:.3f}× on validation). A decayed mix is not chosen over the whole history's: "
            "the rule reads C_KL@10 against the whole history's even mix, which a list following the latest events matches less closely."]


def seeds_line():
    """The same setting on other trained models (reports/calibration-seeds.json), when measured."""
    x = across_models()
    if x is None:
        return []
    f = lambda s: f"{s['mean']:.3f} ± {s['stdev']:.3f}"
    said = {"shop_recipe": "models/shop's recipe trained with seeds", "coldstart_models": "report-coldstart's models (hidden 300, 8 experts, the teacher's vectors), seeds"}
    parts = [f"{said[k]} {', '.join(str(s) for s in g['seeds'])}: test list NDCG@10 {f(g['test_list_ndcg@10_ratio'])}× "
             f"(validation {f(g['valid_list_ndcg@10_ratio'])}×), test C_KL@10 {f(g['test_ckl@10_ratio'])}×"
             for k, g in x.items() if k in said]
    return ["The same setting on other trained models ([calibration-seeds.md](calibration-seeds.md), mean ± spread): "
            + "; ".join(parts) + ".", ""]


c, u = r["calibration"]["test"], r["calibration"]["uncalibrated_test"]
f = r["faithfulness"]
lines += ["", f"Chosen λ {lam}, head {head}, decay {decay}: test C_KL@10 {u['miscalibration_ckl@10']:.4f} → {c['miscalibration_ckl@10']:.4f} "
          f"({c['miscalibration_ckl@10'] / u['miscalibration_ckl@10']:.2f}×; target ≤ 0.5×), list NDCG@10 {u['list_ndcg@10']:.4f} → "
          f"{c['list_ndcg@10']:.4f} ({c['list_ndcg@10'] / u['list_ndcg@10']:.3f}× on test, "
          f"{s1['valid']['list_ndcg@10'] / s0['valid']['list_ndcg@10']:.3f}× on validation; target ≥ 0.98×), genre response {u['genre_response']:.3f} → "
          f"{c['genre_response']:.3f} (target ≥ 0.5)." + ("" if bootstrap is None else
          f" Paired bootstrap over the {len(s0['test_target_positions'])} test users (2 000 resamples): the test ratio's 95 % interval is "
          f"{bootstrap['ci95'][0]:.3f}–{bootstrap['ci95'][1]:.3f}, and {bootstrap['share_at_least_0.98']:.0%} of the resamples reach 0.98×."), "",
          *seeds_line(), *decay_line(), "",
          "**Explanations, deletion test** (test users; the model's first item; the removed items stay excluded from the ranking, so a reason "
          "item cannot simply take its item's place):", "",
          "| reasons | rank after removing their events | after removing as many random read events | ratio (target ≥ 2) | test users with a reason |", "|---|---|---|---|---|",
          f"| leave-one-out, 8 candidates (what `recommend` and the browser name) | {f['because_rank_drop']:.1f} | {f['random_rank_drop']:.1f} | {f['ratio']:.1f}× | {f['histories']} |",
          f"| leave-one-out over every read event | {f['every_event']['because_rank_drop']:.1f} | {f['every_event']['random_rank_drop']:.1f} | {f['every_event']['ratio']:.1f}× | {f['every_event']['histories']} |",
          f"| nearest read events (the reasons before) | {f['nearest']['because_rank_drop']:.1f} | {f['nearest']['random_rank_drop']:.1f} | {f['nearest']['ratio']:.1f}× | {f['nearest']['histories']} |", "",
          "Leave-one-out names no reason where no single read event lowers the item's score (the shelf then says the item is popular); "
          "those users are left out of its rows, so the rows cover different users. Nearest read events always name two.", "",
          "**What the reasons cost in the browser** (" + r["browser"] + ", CPU module, the shop bundle, a 50-event history, "
          "`recommend({k: 10})` with and without `because: 0`, interleaved, medians):", "",
          "| items | with reasons | without | cost |", "|---|---|---|---|"]
for x in r["reasons_cost_browser"]:
    lines.append(f"| {x['candidates']} | {x['with_reasons_ms']:.1f} ms | {x['without_reasons_ms']:.1f} ms | {x['with_reasons_ms'] - x['without_reasons_ms']:.1f} ms |")
lines += ["", "Per genre (share of the genre on the top-8):", "",
          f"| genre | popularity | models/shop | chosen calibration |", "|---|---|---|---|"]
for g in sorted(s0["facet_response"]["per_facet"]):
    lines.append(f"| {g} | {popularity['shelf']['facet_response']['per_facet'][g]:.3f} | {s0['facet_response']['per_facet'][g]:.3f} | {s1['facet_response']['per_facet'][g]:.3f} |")
if "cold_start" in r:
    c = r["cold_start"]
    lines += ["", coldstart_report.quality_line(c)]
b = r["best_text_ndcg@10_ml100k"]
lines += ["", f"Best text mode's test NDCG@10 on ml-100k: {b['value']:.4f} ({b['model']}; {b['source']}).",
          "", r["second_dataset"]["line"] if r["second_dataset"] else "A second dataset is not measured yet."]
open("reports/quality.md", "w").write("\n".join(lines) + "\n")
