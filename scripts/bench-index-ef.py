#!/usr/bin/env python3
"""The smallest ef at which rankd and hnswlib each reach a recall@10 target on the validation queries
(queries-val.npy / truth-val.npy from scripts/bench-index-prep.py), so the head-to-head on the test queries
(scripts/bench-index-h2h.py … --hnswlib-ef) compares both at the same recall without choosing ef on them.
Recall is deterministic: one search per ef.

Usage: /tmp/venv-bench/bin/python scripts/bench-index-ef.py WORK RANKCTL [--snapshot DIR] [--target 0.95]
       [--efs 64,72,…]
"""
import argparse, subprocess

import hnswlib
import numpy as np

from benchlib import recall

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("rankctl")
    ap.add_argument("--snapshot")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--efs", default=",".join(str(e) for e in range(8, 33, 2)) + ","
                    + ",".join(str(e) for e in range(40, 257, 8)))
    args = ap.parse_args()
    work, efs = args.work, [int(e) for e in args.efs.split(",")]
    queries, truth = np.load(f"{work}/queries-val.npy"), np.load(f"{work}/truth-val.npy")
    source = (["--snapshot", args.snapshot] if args.snapshot else
              ["--items", f"{work}/items.npy", "--graph", f"{work}/graph-hybrid-m16-efc200.hnsw"])
    index = hnswlib.Index(space="ip", dim=queries.shape[1])
    index.load_index(f"{work}/hnswlib-m16-efc200.bin")
    index.set_num_threads(1)
    chosen = {}
    for ef in efs:
        if "rankd" not in chosen:
            subprocess.run([args.rankctl, "search"] + source + ["--queries", f"{work}/queries-val.npy", "--ef", str(ef),
                            "--out", f"{work}/ef.npy"], capture_output=True, check=True)
            r = recall(np.load(f"{work}/ef.npy"), truth)
            print(f"rankd   ef {ef:4d} recall@10 {r:.4f}", flush=True)
            if r >= args.target:
                chosen["rankd"] = ef
        if "hnswlib" not in chosen:
            index.set_ef(ef)
            r = recall(index.knn_query(queries, k=10, num_threads=1)[0], truth)
            print(f"hnswlib ef {ef:4d} recall@10 {r:.4f}", flush=True)
            if r >= args.target:
                chosen["hnswlib"] = ef
        if len(chosen) == 2:
            break
    print(f"chosen (validation recall@10 ≥ {args.target}): rankd ef {chosen.get('rankd')}, "
          f"hnswlib ef {chosen.get('hnswlib')}")

if __name__ == "__main__":
    main()
