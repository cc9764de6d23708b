#!/usr/bin/env python3
"""Turns a RecBole ml-100k dataset folder into the demo shop's catalog (docs/design.md, Contracts contract).

    python3 tests/tools/shop_catalog.py data/ml-100k www/catalog/ml-100k.json

Each film becomes {"id", "title", "category", "text", "year", "genres", "popularity",
"display"?}. The
contract fields are chosen so that the encoder text of the catalog item (title, category,
description joined by ". ") equals the text `ranklet train` builds from the .item file
("Toy Story. Animation Children's Comedy. 1995"): the recommender then sees in the browser
exactly the texts it was trained on. `genres`, `year`, `popularity` (ratings in the dataset)
and `display` (the title as shoppers read it: "The Shining" for "Shining, The") are fields the
encoder ignores. Written atomically.
"""
import collections
import json
import os
import re
import sys

# ml-100k writes "Shining, The"; shoppers read "The Shining".
ARTICLE = re.compile(r"^(.*), (The|A|An|La|Le|Les|Il|Das|Der|Die|El)$")


def main(folder, out):
    name = os.path.basename(os.path.normpath(folder))
    with open(os.path.join(folder, f"{name}.inter"), encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        col = [h.split(":")[0] for h in header].index("item_id")
        counts = collections.Counter(line.rstrip("\n").split("\t")[col] for line in f if line.strip())
    items = []
    with open(os.path.join(folder, f"{name}.item"), encoding="utf-8") as f:
        fields = [h.split(":")[0] for h in f.readline().rstrip("\n").split("\t")]
        for n, line in enumerate(f, start=2):
            row = dict(zip(fields, line.rstrip("\n").split("\t")))
            title = row.get("movie_title", "").strip()
            if not row.get("item_id") or not title:
                sys.exit(f"{folder}/{name}.item line {n}: no item_id or movie_title")
            genres = row.get("class", "").split()
            year = row.get("release_year", "").strip()
            item = {"id": row["item_id"], "title": title}
            m = ARTICLE.match(title)
            if m:
                item["display"] = f"{m.group(2)} {m.group(1)}"
            if genres:
                item["category"] = " ".join(genres)
            if year:
                item["text"] = year
                item["year"] = int(year) if year.isdigit() else year
            item["genres"] = genres
            item["popularity"] = counts.get(row["item_id"], 0)
            items.append(item)
    tmp = out + ".partial"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(items, f, ensure_ascii=False, separators=(",", ":"))
    os.replace(tmp, out)
    print(f"{out}: {len(items)} items", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
