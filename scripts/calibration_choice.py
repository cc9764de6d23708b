"""The calibration setting a report picks, on validation only (issue 23): the smallest validation
C_KL@10 among the settings whose validation list NDCG@10 stays >= 0.98 x the uncalibrated
model's. Used by scripts/quality_report.py (ml-100k) and scripts/second_dataset_report.py."""

RULE = "smallest validation C_KL@10 with validation list NDCG@10 >= 0.98 x the uncalibrated model's, over λ and the kept head"


def choose(plain, calibrated):
    """`plain`: the uncalibrated model's report entry; `calibrated`: the entries of its calibrated
    settings (named "... (calibrated, λ L, head H)"). Returns (entry, λ, head), or the plain
    entry with λ 0 when no setting keeps the validation NDCG."""
    floor = 0.98 * plain["shelf"]["valid"]["list_ndcg@10"]
    ok = [m for m in calibrated if m["shelf"]["valid"]["list_ndcg@10"] >= floor]
    if not ok:
        return plain, 0.0, 0
    chosen = min(ok, key=lambda m: m["shelf"]["valid"]["miscalibration_ckl@10"])
    return chosen, float(chosen["name"].split("λ ")[1].split(",")[0]), int(chosen["name"].split("head ")[1].rstrip(")"))
