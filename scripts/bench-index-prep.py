#!/usr/bin/env python3
"""Prepares a head-to-head work folder (scripts/bench-index-h2h.py) from existing data instead of `rankctl synth`:
items.npy (a symlink), queries-N.npy (the first N rows of a query .npy held out from the items, e.g. a snapshot's
users), truth-N.npy (numpy's exact top 10 by inner product) and hnswlib-m16-efc200.bin (hnswlib 0.8.0, the
calls of bench-index.py: M 16, efConstruction 200, seed 42, 2 build threads). rankd's side is a snapshot built from
the same items (`rankctl search --snapshot`), so no second graph is built.

With V > 0, also queries-val.npy / truth-val.npy: the next V query rows after the first N, a validation set on which
scripts/bench-index-ef.py picks each side's ef for a recall target, so the test queries never choose it.

Usage: /tmp/venv-bench/bin/python scripts/bench-index-prep.py ITEMS.npy QUERIES.npy WORK [N [V]]
"""
import os, sys, time

import numpy as np

from benchlib import exact_topk

def main():
    items_path, queries_path, work = sys.argv[1], sys.argv[2], sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 10_000
    v = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    os.makedirs(work, exist_ok=True)
    link = f"{work}/items.npy"
    if not os.path.exists(link):
        os.symlink(os.path.abspath(items_path), link)
    items = np.load(items_path, mmap_mode="r")
    queries = np.ascontiguousarray(np.load(queries_path, mmap_mode="r")[:n], dtype=np.float32)
    np.save(f"{work}/queries-{n}.npy", queries)
    truth_path = f"{work}/truth-{n}.npy"
    if not os.path.exists(truth_path):
        t = time.time()
        np.save(truth_path, exact_topk(np.ascontiguousarray(items, dtype=np.float32), queries, 10))
        print(f"ground truth (numpy): {time.time() - t:.1f} s", flush=True)
    if v > 0 and not os.path.exists(f"{work}/truth-val.npy"):
        held = np.ascontiguousarray(np.load(queries_path, mmap_mode="r")[n:n + v], dtype=np.float32)
        assert len(held) == v, f"{queries_path} has fewer than {n + v} rows"
        np.save(f"{work}/queries-val.npy", held)
        np.save(f"{work}/truth-val.npy", exact_topk(np.ascontiguousarray(items, dtype=np.float32), held, 10))
    hpath = f"{work}/hnswlib-m16-efc200.bin"
    if not os.path.exists(hpath):
        import hnswlib
        index = hnswlib.Index(space="ip", dim=items.shape[1])
        index.init_index(max_elements=len(items), M=16, ef_construction=200, random_seed=42)
        index.set_num_threads(2)
        t, c = time.time(), time.process_time()
        index.add_items(np.ascontiguousarray(items, dtype=np.float32), np.arange(len(items)))
        print(f"hnswlib build: {time.time() - t:.1f} s wall, {time.process_time() - c:.1f} s CPU on 2 threads",
              flush=True)
        index.save_index(hpath)

if __name__ == "__main__":
    main()
