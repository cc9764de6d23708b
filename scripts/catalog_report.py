"""Writes reports/catalog.json from the files scripts/bench-catalog.sh leaves under
target/bench-catalog/ (usage: catalog_report.py W [--cells-only]: with --cells-only, the
partitioned sizes replace those of the existing report and the rest is kept)."""
import gzip, json, os, platform, sys

W = sys.argv[1]
cells_only = "--cells-only" in sys.argv


def cells_part():
    """The partitioned sizes (100k, 1M synthetic) and ml-100k's NDCG with a partitioned index."""
    browser = json.load(open(os.path.join(W, "browser-cells.json")))
    sizes = []
    for b in browser["sizes"]:
        recall = json.load(open(os.path.join(W, b["name"], "recall.json")))
        sizes.append({
            "name": b["name"], "items": recall["items"], "vectors": "synthetic",
            "cells": recall["cells"], "nprobe": recall["nprobe"], "decoys": recall["decoys"],
            "first_visit_ms": b["first_visit_ms"], "first_visit_bytes_gzip": b["first_visit_bytes_gzip"],
            "later_visit_ms": b["later_visit_ms"], "recommend_cached_ms": b["recommend_cached_ms"],
            "recommend_cached_back_to_back_ms": b.get("recommend_cached_back_to_back_ms"),
            "recommend_fetch_ms": b["recommend_fetch_ms"], "shards_per_recommend": b["shards_per_recommend"],
            "recall@10": recall["recall@10"], "recall@100": recall["recall@100"],
            "recall_validation_sweep": recall["validation_sweep"], "index_build_seconds": recall["build_seconds"],
            "index_bytes": recall["index_bytes"], "personal": b["personal"], "index_note": b["index_note"],
            "foreign_requests": b["foreign_requests"],
        })
    ev = json.load(open(os.path.join(W, "eval-cells.json")))["models"][0]
    extra = {
        "ndcg@10_partitioned": ev["test"]["ndcg@10"],
        "partitioned_ml100k": {"cells": "auto (5)", "nprobe": 2, "test": {k: ev["test"][k] for k in ("ndcg@10", "ann_recall@10", "ann_recall@100")},
                               "valid": {k: ev["valid"][k] for k in ("ndcg@10", "ann_recall@10", "ann_recall@100")}},
        "shards_per_recommend": sizes[0]["shards_per_recommend"][0] if sizes and len(sizes[0]["shards_per_recommend"]) == 1 else None,
        "cells_browser": browser["browser"],
    }
    return sizes, extra


def full():
    native = [json.loads(l) for l in open(os.path.join(W, "native.jsonl"))]
    browser = json.load(open(os.path.join(W, "browser.json")))
    exact = json.load(open(os.path.join(W, "eval-exact.json")))["models"][0]["test"]["ndcg@10"]
    indexed = json.load(open(os.path.join(W, "eval-index.json")))["models"][0]["test"]["ndcg@10"]
    def index_bytes(name):
        d = os.path.join(W, name, "shop", "index")
        files = [os.path.join(d, f) for f in os.listdir(d)]
        raw = sum(os.path.getsize(f) for f in files)
        gz = sum(len(gzip.compress(open(f, "rb").read(), 9)) for f in files)
        return raw, gz
    sizes = []
    for b in browser["sizes"]:
        rounds = [n for n in native if n["name"] == b["name"]]
        entry = {k: b[k] for k in ("name", "items", "first_visit_ms", "first_visit_bytes_gzip", "later_visit_ms",
                                   "recommend_cached_ms", "from_index", "embedded_first_visit", "index_note")}
        entry["vectors"] = "real"
        entry["recommend_fetch_ms"] = None  # no shards: an unpartitioned index is fetched whole
        entry["recall@10"] = entry["recall@100"] = 1.0 if b["from_index"] else None  # exact ranking over the index
        if rounds:
            items = b["items"]
            entry["embed_items_per_s"] = [items / r["embed_s"] for r in rounds]
            entry["index_items_per_s"] = [items / r["index_s"] for r in rounds]
            entry["index_vs_embed_throughput"] = sum(r["embed_s"] for r in rounds) / sum(r["index_s"] for r in rounds)
            entry["index_bytes"], entry["index_bytes_gzip"] = index_bytes(b["name"])
        sizes.append(entry)
    big = next(s for s in sizes if s["name"] == "synthetic-20k")
    report = {
        "command": "./build.sh bench-catalog",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (the project's development machine), no GPU",
        "browser": browser["browser"],
        "sizes": sizes,
        "index_vs_embed_throughput": big["index_vs_embed_throughput"],
        "ndcg@10_index": indexed, "ndcg@10_exact_f32": exact, "ndcg@10_ratio": indexed / exact,
        "foreign_requests": sum(len(b["foreign_requests"]) for b in browser["sizes"]),
    }
    return report


if cells_only:
    report = json.load(open("reports/catalog.json"))
    report["sizes"] = [s for s in report["sizes"] if s.get("vectors") != "synthetic"]
else:
    report = full()
sizes, extra = cells_part()
report["sizes"] += sizes
report.update(extra)
report.pop("not_measured", None)
report["foreign_requests"] = sum(len(s.get("foreign_requests", [])) for s in report["sizes"])
tmp = "reports/catalog.json.partial"
json.dump(report, open(tmp, "w"), indent=2)
os.replace(tmp, "reports/catalog.json")
print(json.dumps({k: v for k, v in report.items() if k != "sizes"}, indent=2))
for s in report["sizes"]:
    print(json.dumps({k: s.get(k) for k in ("name", "items", "first_visit_ms", "first_visit_bytes_gzip", "later_visit_ms",
                                             "recommend_cached_ms", "recommend_fetch_ms", "recall@10", "recall@100")}))
