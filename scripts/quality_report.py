"""reports/quality.json + .md from `ranklet eval --shelf-response` runs merged in reports/quality.json
(scripts/report-quality.sh writes them), the browser bench's recommend() timings with and without
reasons (argv[1]; without it, the timings reports/quality.json already holds are kept),
reports/coldstart.json (./build.sh report-coldstart) and reports/ml-100k.json.
Run alone, it rewrites the report from what those files hold."""
import json, math, os, random, sys
import calibration_choice, coldstart_report
r = json.load(open("reports/quality.json"))
bench = json.load(open(sys.argv[1])) if len(sys.argv) > 1 else None
models = r["models"]
plain = next(m for m in models if m["name"] == "models/shop")
popularity = next(m for m in models if m["name"] == "popularity")
calibrated = [m for m in models if m["name"].startswith("models/shop (calibrated")]
# The setting: chosen on the validation users of models/shop's recipe's models pooled, where
# ./build.sh report-calibration-seeds has measured its grid on them (one model's validation users
# move the choice by its noise); else on models/shop's alone.
alone = calibration_choice.choose(plain, calibrated)
chosen, lam, head, decay = alone
rule = calibration_choice.RULE
# ./build.sh report-calibration-seeds's figures, when measured (read once).
seeds_report = json.load(open("reports/calibration-seeds.json")) if os.path.exists("reports/calibration-seeds.json") else None
if seeds_report:
    grid = seeds_report.get("shop_recipe_grid") or {}
    c = grid.get("chosen")
    at = [m for m in calibrated if c and calibration_choice.setting(m["name"]) == (c["lambda"], c["head"], c["decay"])]
    if at:
        chosen, lam, head, decay = at[0], c["lambda"], c["head"], c["decay"]
        rule = (f"{calibration_choice.RULE}, on the validation means of models/shop's recipe's {len(grid['seeds'])} trained models "
                f"(seeds {', '.join(str(x) for x in grid['seeds'])}; reports/calibration-seeds.md)")
s0, s1 = plain["shelf"], chosen["shelf"]
r["calibration"] = {
    "rule": rule,
    "models_shop_alone": {"lambda": alone[1], "head": alone[2], "decay": alone[3]},
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
if bench is not None:
    recs = bench["detail"]["recommender"][0]["recommend"]
    r["reasons_cost_browser"] = [{"candidates": x["candidates"], "history": x["history"], "with_reasons_ms": x["median_ms"],
                                  "without_reasons_ms": x["without_reasons_median_ms"], "runs": x["runs"]} for x in recs]
    r["browser"] = bench["browser"]
elif "reasons_cost_browser" not in r:
    sys.exit("reports/quality.json has no browser timings of the reasons: pass the browser bench's JSON")
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
    if seeds_report is None:
        return None
    x = seeds_report
    st = x["setting"]
    if (st["lambda"], st["head"], st["decay"]) != (float(lam), int(head), float(decay)):
        return None  # measured for another choice: run ./build.sh report-calibration-seeds again
    return {k: x[k] for k in ("shop_recipe", "coldstart_models", "shop_recipe_grid") if x.get(k)}


def pooled_pick(grid):
    """The grid row of the setting chosen on the validation of several models pooled, if any."""
    c = grid["chosen"]
    return None if c is None else next(r for r in grid["settings"] if (r["lambda"], r["head"], r["decay"]) == (c["lambda"], c["head"], c["decay"]))


# The chosen setting on other trained models (./build.sh report-calibration-seeds), when measured
# for this choice.
groups = across_models()
if groups:
    r["calibration"]["across_models"] = {
        k: {**{m: {"mean": g[m]["mean"], "stdev": g[m]["stdev"]} for m in ("test_list_ndcg@10_ratio", "valid_list_ndcg@10_ratio", "test_ckl@10_ratio")},
            "seeds": g["seeds"], "setting": g.get("setting")} for k, g in groups.items() if k != "shop_recipe_grid"}
    # The headline ratios' seed means (one model's ratio moves by more than the target's margin).
    sr = groups.get("shop_recipe")
    if sr and sr.get("setting", {}).get("lambda", lam) == float(lam) and sr.get("setting", {}).get("head", head) == int(head):
        over = {"seeds": sr["seeds"], "source": "reports/calibration-seeds.json (models/shop's recipe)"}
        r["ndcg@10"]["ratio_over_seeds"] = {**{k: sr["test_list_ndcg@10_ratio"][k] for k in ("mean", "stdev")}, **over}
        r["miscalibration"]["ratio_over_seeds"] = {**{k: sr["test_ckl@10_ratio"][k] for k in ("mean", "stdev")}, **over}
    if "shop_recipe_grid" in groups and pooled_pick(groups["shop_recipe_grid"]):
        p = pooled_pick(groups["shop_recipe_grid"])
        r["calibration"]["across_models"]["pooled_validation_choice"] = {
            "seeds": groups["shop_recipe_grid"]["seeds"], "rule": groups["shop_recipe_grid"]["rule"],
            **{k: p[k] for k in ("lambda", "head", "decay", "valid_list_ndcg@10_ratio", "test_list_ndcg@10_ratio", "test_ckl@10_ratio")}}
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


def alone_line():
    """What models/shop's validation users alone pick, where the pooled choice differs."""
    m, l, h, d = alone
    if m is chosen or m is plain:
        return []
    t, v = m["shelf"], m["shelf"]["valid"]
    return [f"models/shop's validation users alone pick λ {l:g}, head {h}, decay {d:g} (validation list NDCG@10 "
            f"{v['list_ndcg@10'] / s0['valid']['list_ndcg@10']:.3f}×; test {t['list_ndcg@10'] / s0['list_ndcg@10']:.3f}×, "
            f"C_KL@10 {t['miscalibration_ckl@10'] / s0['miscalibration_ckl@10']:.2f}×): one model's validation users move the choice "
            "by their noise, so the setting is chosen on the recipe's models pooled.", ""]


def at_line(g):
    """Where a group's figures were kept from an earlier choice's setting, which one."""
    st = g.get("setting")
    if not st or (st["lambda"], st["head"], st["decay"]) == (float(lam), int(head), float(decay)):
        return ""
    return f" (measured at λ {st['lambda']:g}, head {st['head']}, the setting chosen before; their models were not re-run)"


def seeds_line():
    """The same setting on other trained models (reports/calibration-seeds.json), when measured."""
    x = groups
    if x is None:
        return []
    f = lambda s: f"{s['mean']:.3f} ± {s['stdev']:.3f}"
    said = {"shop_recipe": "models/shop's recipe trained with seeds", "coldstart_models": "report-coldstart's models (hidden 300, 8 experts, the teacher's vectors), seeds"}
    parts = [f"{said[k]} {', '.join(str(s) for s in g['seeds'])}: test list NDCG@10 {f(g['test_list_ndcg@10_ratio'])}× "
             f"(validation {f(g['valid_list_ndcg@10_ratio'])}×), test C_KL@10 {f(g['test_ckl@10_ratio'])}×" + at_line(g)
             for k, g in x.items() if k in said]
    pooled = []
    if "shop_recipe_grid" in x and pooled_pick(x["shop_recipe_grid"]):
        p, seeds = pooled_pick(x["shop_recipe_grid"]), x["shop_recipe_grid"]["seeds"]
        pooled = [f"Chosen by the same rule on the validation users of models/shop's recipe's {len(seeds)} models pooled "
                  f"(seeds {', '.join(str(s) for s in seeds)}; a 16-setting grid at decay 1), the setting is λ {p['lambda']:g}, head {p['head']}: "
                  f"validation list NDCG@10 {f(p['valid_list_ndcg@10_ratio'])}×, test {f(p['test_list_ndcg@10_ratio'])}×, "
                  f"test C_KL@10 {f(p['test_ckl@10_ratio'])}×."]
    return ["The same setting on other trained models ([calibration-seeds.md](calibration-seeds.md), mean ± spread): "
            + "; ".join(parts) + "." + "".join(" " + x for x in pooled), ""]


c, u = r["calibration"]["test"], r["calibration"]["uncalibrated_test"]
f = r["faithfulness"]
lines += ["", f"Chosen λ {lam}, head {head}, decay {decay}: test C_KL@10 {u['miscalibration_ckl@10']:.4f} → {c['miscalibration_ckl@10']:.4f} "
          f"({c['miscalibration_ckl@10'] / u['miscalibration_ckl@10']:.2f}×; target ≤ 0.5×), list NDCG@10 {u['list_ndcg@10']:.4f} → "
          f"{c['list_ndcg@10']:.4f} ({c['list_ndcg@10'] / u['list_ndcg@10']:.3f}× on test, "
          f"{s1['valid']['list_ndcg@10'] / s0['valid']['list_ndcg@10']:.3f}× on validation; target ≥ 0.98×), genre response {u['genre_response']:.3f} → "
          f"{c['genre_response']:.3f} (target ≥ 0.5)." + ("" if bootstrap is None else
          f" Paired bootstrap over the {len(s0['test_target_positions'])} test users (2 000 resamples): the test ratio's 95 % interval is "
          f"{bootstrap['ci95'][0]:.3f}–{bootstrap['ci95'][1]:.3f}, and {bootstrap['share_at_least_0.98']:.0%} of the resamples reach 0.98×."), "",
          *alone_line(), *seeds_line(), *decay_line(), "",
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
