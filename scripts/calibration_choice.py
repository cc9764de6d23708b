"""The calibration setting a report picks, on validation only (issue 23): the smallest validation
C_KL@10 among the settings whose validation list NDCG@10 stays >= 0.98 x the uncalibrated
model's. Used by scripts/quality_report.py (ml-100k) and scripts/second_dataset_report.py."""

import re

RULE = "smallest validation C_KL@10 with validation list NDCG@10 >= 0.98 x the uncalibrated model's, over the settings tried"


def setting(name):
    """(λ, head, decay) of an entry named "... (calibrated, λ L, head H[, decay D])"."""
    m = re.search(r"λ ([0-9.]+), head ([0-9]+)(?:, decay ([0-9.]+))?\)", name)
    return float(m.group(1)), int(m.group(2)), float(m.group(3) or 1.0)


def choose(plain, calibrated):
    """`plain`: the uncalibrated model's report entry; `calibrated`: the entries of its calibrated
    settings (named "... (calibrated, λ L, head H[, decay D])"). Returns (entry, λ, head, decay),
    or the plain entry with λ 0 when no setting keeps the validation NDCG."""
    floor = 0.98 * plain["shelf"]["valid"]["list_ndcg@10"]
    ok = [m for m in calibrated if m["shelf"]["valid"]["list_ndcg@10"] >= floor]
    if not ok:
        return plain, 0.0, 0, 1.0
    chosen = min(ok, key=lambda m: m["shelf"]["valid"]["miscalibration_ckl@10"])
    return (chosen, *setting(chosen["name"]))
