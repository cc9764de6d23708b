"""A seeded synthetic product catalogue (JSONL) for the catalogue benchmarks: N items with a
title, a category list and a brand, deterministic for a (size, seed) pair.

Usage: python3 tests/tools/synthetic_catalog.py N OUT.jsonl [--seed 42]
"""
import argparse
import json
import os
import random

BRANDS = ["Acme", "Nordic", "Zenith", "Bodum", "Anker", "Philips", "Logi", "Kettler", "Orbit",
          "Lumen", "Harbor", "Pine", "Vega", "Atlas", "Mosaic", "Cobalt"]
ADJECTIVES = ["wireless", "stainless", "ergonomic", "compact", "portable", "rechargeable",
              "waterproof", "lightweight", "premium", "adjustable", "foldable", "vintage",
              "organic", "heavy-duty", "classic", "smart", "quiet", "large", "mini", "eco"]
CATEGORIES = {
    "Audio": ["headphones", "bluetooth speaker", "earbuds", "soundbar", "radio"],
    "Kitchen": ["coffee grinder", "kettle", "toaster", "blender", "water bottle", "mug"],
    "Office": ["office chair", "desk lamp", "monitor stand", "notebook", "keyboard", "mouse"],
    "Sport": ["running shoes", "yoga mat", "dumbbell", "bike helmet", "backpack"],
    "Home": ["throw pillow", "blanket", "vase", "picture frame", "candle", "rug"],
    "Phone": ["phone case", "charger", "usb cable", "power bank", "screen protector"],
    "Garden": ["hose", "planter", "pruning shears", "watering can", "garden gloves"],
    "Toys": ["puzzle", "building blocks", "plush bear", "board game", "kite"],
}
DETAILS = ["with USB-C charging", "for home and office", "in matte black", "2-pack", "30h battery",
           "BPA free", "size M", "1.5 L", "with carrying case", "for men and women", "gift set",
           "dishwasher safe", "noise cancelling", "extra large", "quick release", "in red",
           "in blue", "in oak", "set of 4", "travel size"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cats = sorted(CATEGORIES)
    tmp = args.out + ".partial"
    with open(tmp, "w") as f:
        for i in range(args.n):
            cat = cats[rng.randrange(len(cats))]
            noun = rng.choice(CATEGORIES[cat])
            words = [rng.choice(ADJECTIVES), noun] + rng.sample(DETAILS, rng.randint(1, 3))
            item = {"id": f"sku-{i:07d}", "title": " ".join(words), "category": [cat],
                    "brand": rng.choice(BRANDS), "popularity": int(1000 * rng.paretovariate(1.2)) % 100000}
            f.write(json.dumps(item) + "\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
