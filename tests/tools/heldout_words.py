#!/usr/bin/env python3
"""Held-out cosine to the teacher, split by how many of a text's words no training text uses.

`ranklet distill --texts data/ml-100k` holds out 10 % of the distinct texts after a seeded
shuffle (src/cli/distill.rs); this script rebuilds that split (SplitMix64, seed 2020 ^ 0x5eed —
its mean cosine matches the report's `mean_cosine_to_teacher`), embeds the held-out texts with
the teacher and each student through `ranklet embed`, and prints the mean cosine per group.

usage: tests/tools/heldout_words.py [--bin target/release/ranklet] STUDENT_DIR...
"""
import argparse, collections, json, os, re, struct, subprocess, sys, tempfile

M = (1 << 64) - 1


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


class SplitMix:
    def __init__(self, state):
        self.state = state

    def next_f32(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        z ^= z >> 31
        return f32(float(z >> 40) / float(1 << 24))


def texts_of(item_file):
    rows = open(item_file, encoding="utf-8", errors="replace").read().splitlines()[1:]
    # RecBole ml-100k: title. genres. year (src/data/dataset.rs).
    return sorted({f"{p[1]}. {p[3]}. {p[2]}" for p in (r.split("\t") for r in rows)}, key=str.encode)


def split(texts, seed=2020, fraction=0.1):
    rng = SplitMix(seed ^ 0x5EED)
    texts = list(texts)
    for i in range(len(texts) - 1, 0, -1):
        j = min(int(f32(rng.next_f32() * f32(i + 1))), i)
        texts[i], texts[j] = texts[j], texts[i]
    n = min(max(round(len(texts) * fraction), 1), len(texts) - 2)
    return texts[:n], texts[n:]


def embed(binary, model, texts):
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "in.jsonl"), os.path.join(d, "out.jsonl")
        with open(src, "w") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": str(i), "text": t}) + "\n")
        subprocess.run([binary, "embed", "--model", model, "--input", src, "--output", out], check=True)
        rows = {json.loads(l)["id"]: json.loads(l)["embedding"] for l in open(out)}
    return [rows[str(i)] for i in range(len(texts))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/ranklet")
    ap.add_argument("--items", default="data/ml-100k/ml-100k.item")
    ap.add_argument("--teacher", default="models/teacher")
    ap.add_argument("students", nargs="+")
    a = ap.parse_args()
    valid, train = split(texts_of(a.items))
    words = lambda t: set(re.findall(r"\w+|[^\w\s]", t.lower()))
    seen = set().union(*(words(t) for t in train))
    group = [min(len(words(t) - seen), 2) for t in valid]
    teacher = embed(a.bin, a.teacher, valid)
    result = {"held_out": len(valid), "texts_per_group": dict(collections.Counter(group)), "models": {}}
    for s in a.students:
        vecs = embed(a.bin, s, valid)
        cos = [sum(x * y for x, y in zip(u, v)) for u, v in zip(teacher, vecs)]
        by = collections.defaultdict(list)
        for g, c in zip(group, cos):
            by[g].append(c)
        result["models"][s] = {
            "all": sum(cos) / len(cos),
            **{f"{g}{'+' if g == 2 else ''}_unseen_words": sum(v) / len(v) for g, v in sorted(by.items())},
        }
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
