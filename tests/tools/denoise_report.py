"""Assembles reports/denoise.json from the `ranklet train --report` files of ./build.sh report-denoise.

Usage: python3 tests/tools/denoise_report.py RUN_DIR OUT.json
"""
import json
import os
import sys


def fig(d, name):
    m = json.load(open(os.path.join(d, name + ".json")))["models"][0]
    return {
        "ndcg@10": m["test"]["ndcg@10"],
        "recall@10": m["test"]["recall@10"],
        "ndcg@10_masked": m["test_masked"]["ndcg@10"],
        "valid_ndcg@10": m["valid"]["ndcg@10"],
        "epochs": m["epochs"],
        "best_epoch": m["best_epoch"],
        "epoch_seconds": round(m["epoch_seconds"], 1),
        "signals": m["config"].get("signals", {}),
    }


def main(d, out):
    variants = ["plain", "clsd", "dumn", "full"]
    report = {
        "command": "./build.sh report-denoise",
        "dataset": "ml-100k",
        "protocol": "leave-one-out; noise = random clicks (uniform over the catalog, seed 7) "
        "inserted into each user's training events, round(fraction x training events) per "
        "user; validation and test targets stay clean, the noise stays in the histories",
        "model": "inductive on the teacher's text vectors, hidden 64, inner 128, 4 experts; "
        "AdamW 1e-3, batch 64, at most 25 epochs, patience 4 on validation NDCG@10",
        "clean": {v: fig(d, "clean-" + v) for v in variants},
    }
    report["clean"]["ndcg@10"] = report["clean"]["plain"]["ndcg@10"]
    for n in ("0.2", "0.4"):
        block = {v: fig(d, f"noise{n}-{v}") for v in variants}
        clean = report["clean"]["ndcg@10"]
        plain, full = block["plain"]["ndcg@10"], block["full"]["ndcg@10"]
        cost = clean - plain
        block["noise_cost"] = cost
        block["recovered_fraction"] = (full - plain) / cost if cost > 0 else None
        report[f"noise_{n}"] = block
    abl = {v: fig(d, f"noise0.2-{v}") for v in ("plain", "types", "memory", "dumn", "clsd", "full")}
    report["ablation_noise_0.2"] = [
        {"variant": v, "what": w, "ndcg@10": abl[v]["ndcg@10"]}
        for v, w in [
            ("plain", "no signals"),
            ("types", "behaviour-type embedding only"),
            ("memory", "DUMN purification + memory + gate, no type embedding"),
            ("dumn", "type embedding + DUMN"),
            ("clsd", "CLSD confidences only"),
            ("full", "type embedding + DUMN + CLSD"),
        ]
    ]
    # Run-to-run spread (seeds 2020, 2021, 2022): plain and full, clean and at 20 % noise;
    # DUMN clean. The targets are read on these seed means, single runs move by ±0.01.
    def spread_of(variant, name):
        runs = [fig(d, f"{name}-{variant}")["ndcg@10"]]
        runs += [fig(d, f"seed{s}-{name}-{variant}")["ndcg@10"] for s in (2021, 2022)]
        mean = sum(runs) / len(runs)
        sd = (sum((x - mean) ** 2 for x in runs) / (len(runs) - 1)) ** 0.5
        return {"seeds": [2020, 2021, 2022], "ndcg@10": runs, "mean": mean, "std": sd}

    spread = {
        v: {level: spread_of(v, name) for level, name in levels}
        for v, levels in (
            ("plain", (("clean", "clean"), ("noise_0.2", "noise0.2"))),
            ("full", (("clean", "clean"), ("noise_0.2", "noise0.2"))),
            ("dumn", (("clean", "clean"),)),
        )
    }
    report["seed_spread"] = spread
    report["plain_seed_spread"] = spread["plain"]
    c = report["clean"]
    rec = report["noise_0.2"]["recovered_fraction"]
    mean = lambda v, level: spread[v][level]["mean"]
    cost = mean("plain", "clean") - mean("plain", "noise_0.2")
    report["targets"] = {
        "recovered_at_0.2": rec,
        "recovered_at_0.2_met": rec is not None and rec >= 0.5,
        "noise_cost_at_0.2_seed_mean": cost,
        "full_minus_plain_at_0.2_seed_mean": mean("full", "noise_0.2") - mean("plain", "noise_0.2"),
        "recovered_at_0.2_seed_mean": (mean("full", "noise_0.2") - mean("plain", "noise_0.2")) / cost
        if cost > 0 else None,
        "recovered_at_0.2_seed_mean_note": None if cost > 0 else
        "20 % noise costs the plain model nothing on the seed means: there is nothing to recover",
        # The target read on seed means: the full model at 20 % noise at least as far above the
        # noisy plain model as half of what the noise cost it (all of it, when that is ≤ 0).
        "recovered_at_0.2_met_seed_mean": mean("full", "noise_0.2")
        >= mean("plain", "noise_0.2") + 0.5 * max(cost, 0.0),
        "full_at_0.2_minus_plain_clean_seed_mean": mean("full", "noise_0.2") - mean("plain", "clean"),
        "recovered_at_0.4": report["noise_0.4"]["recovered_fraction"],
        "explicit_feedback_clean_delta": c["dumn"]["ndcg@10"] - c["plain"]["ndcg@10"],
        "explicit_feedback_clean_delta_seed_mean": mean("dumn", "clean") - mean("plain", "clean"),
        "explicit_feedback_never_lowers_clean": c["dumn"]["ndcg@10"] >= c["plain"]["ndcg@10"]
        and c["full"]["ndcg@10"] >= c["clsd"]["ndcg@10"],
    }
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    os.replace(tmp, out)
    print(json.dumps(report["targets"], indent=2))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
