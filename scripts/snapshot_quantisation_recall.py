#!/usr/bin/env python3
"""Recall cost of f16/i8 vector storage, measured on the stored snapshot files themselves.

For Q user rows, computes the exact top-k items by inner product with the f32 snapshot's vectors
(ground truth) and with the f16 / i8 snapshot's decoded vectors, and reports recall@k and file
sizes. Exact search on both sides isolates the storage error from any ANN error.

usage: snapshot_quantisation_recall.py F32_SNAPSHOT OTHER_SNAPSHOT... [--queries 500] [--k 10]

Reads item_vectors.vec / user_vectors.vec per docs/SNAPSHOT_FORMAT.md (kind 1: p0 rows,
p1 dimension, p2 type 0 f32 / 1 f16 / 2 i8, p3 stride; one section at offset 128).
"""
import argparse
import json
import os
import struct

import numpy as np


def load_vectors(path):
    with open(path, "rb") as f:
        header = f.read(128)
    assert header[:8] == b"RNKDSNAP", path
    rows, dim, code, stride = struct.unpack_from("<4Q", header, 32)
    offset, length = struct.unpack_from("<2Q", header, 64)
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=(rows, stride))
    if code == 0:
        return np.ascontiguousarray(raw[:, : 4 * dim]).view("<f4").astype(np.float32)
    if code == 1:
        return np.ascontiguousarray(raw[:, : 2 * dim]).view("<f2").astype(np.float32)
    scale = np.ascontiguousarray(raw[:, :4]).view("<f4").astype(np.float32)
    q = np.ascontiguousarray(raw[:, 4 : 4 + dim]).view(np.int8).astype(np.float32)
    return q * scale


def top_k(users, items, k):
    scores = users @ items.T
    part = np.argpartition(-scores, k, axis=1)[:, :k]
    return [set(row) for row in part]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("baseline")
    parser.add_argument("others", nargs="+")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    users = load_vectors(os.path.join(args.baseline, "user_vectors.vec"))[: args.queries]
    base_items = load_vectors(os.path.join(args.baseline, "item_vectors.vec"))
    truth = top_k(users, base_items, args.k)
    for snapshot in [args.baseline] + args.others:
        manifest = json.load(open(os.path.join(snapshot, "manifest.json")))
        items = load_vectors(os.path.join(snapshot, "item_vectors.vec"))
        # Queries come from the same snapshot: serving would quantise the user vector too.
        queries = load_vectors(os.path.join(snapshot, "user_vectors.vec"))[: args.queries]
        found = top_k(queries, items, args.k)
        recall = np.mean([len(a & b) / args.k for a, b in zip(truth, found)])
        size = os.path.getsize(os.path.join(snapshot, "item_vectors.vec"))
        print(f"{manifest['vectorType']}: item_vectors.vec {size / 2**20:.1f} MiB, "
              f"recall@{args.k} vs f32 exact = {recall:.4f} ({args.queries} queries, {len(items)} items)")


if __name__ == "__main__":
    main()
