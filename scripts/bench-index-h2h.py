#!/usr/bin/env python3
"""Head-to-head at one ef: rankd (`rankctl search`, one or more builds) vs hnswlib, interleaved for several rounds.

Runs after scripts/bench-index.py (or scripts/bench-index-prep.py) has built the graph (or names a snapshot), the
hnswlib index and the queries in WORK. Each round runs every rankctl binary over the 10k queries, then hnswlib's
`knn_query` (1 thread); prints recall@10 and the medians of wall QPS and of queries per CPU-second (less sensitive to
other processes sharing the cores), and each contender's ratio to hnswlib.

A binary is PATH or LABEL=PATH, optionally followed by `+ENV=VALUE` settings for its process (e.g.
`portable-swift=.build-portable/release/rankctl+RANKD_KERNELS=portable` keeps the Swift kernels) and `+--FLAG`
arguments to its search (e.g. `+--quantised-walk`).

Usage: .venv-bench/bin/python scripts/bench-index-h2h.py var/bench-index/n100000-d64 16 9 RANKCTL [RANKCTL…]
       [--snapshot DIR] [--hnswlib-ef EF]
"""
import argparse, os, statistics, subprocess, time

import hnswlib
import numpy as np

from benchlib import recall

def parse_binary(spec):
    parts = spec.split("+")
    label, path = parts[0].split("=", 1) if "=" in parts[0] else (parts[0], parts[0])
    env, flags = dict(os.environ), []
    for extra in parts[1:]:
        if extra.startswith("--"):
            flags.append(extra)
        else:
            key, value = extra.split("=", 1)
            env[key] = value
    return label, path, env, flags

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("ef", type=int)
    ap.add_argument("rounds", type=int)
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--snapshot", help="search this snapshot's vectors and graph instead of WORK's items and graph")
    ap.add_argument("--hnswlib-ef", type=int, help="hnswlib's ef (default: the same ef)")
    args = ap.parse_args()
    work = args.work
    queries = np.load(f"{work}/queries-10000.npy")
    truth = np.load(f"{work}/truth-10000.npy")
    index = hnswlib.Index(space="ip", dim=queries.shape[1])
    index.load_index(f"{work}/hnswlib-m16-efc200.bin")
    index.set_num_threads(1)
    index.set_ef(args.hnswlib_ef or args.ef)
    source = (["--snapshot", args.snapshot] if args.snapshot else
              ["--items", f"{work}/items.npy", "--graph", f"{work}/graph-hybrid-m16-efc200.hnsw"])
    contenders = [parse_binary(b) for b in args.binaries]
    results = {label: [] for label, _, _, _ in contenders}
    results["hnswlib"] = []
    recalls, kernels = {}, {}
    for _ in range(args.rounds):
        for label, path, env, flags in contenders:
            out = subprocess.run([path, "search"] + source + ["--queries", f"{work}/queries-10000.npy",
                                  "--ef", str(args.ef), "--out", f"{work}/h2h.npy"] + flags,
                                 capture_output=True, text=True, check=True, env=env).stdout
            kv = dict(x.split("=", 1) for x in out.split() if "=" in x)
            results[label].append((float(kv["qps"]), float(kv["cpu_qps"])))
            kernels[label] = kv.get("kernels", "?")
            if label not in recalls:
                recalls[label] = recall(np.load(f"{work}/h2h.npy"), truth)
        t, c = time.perf_counter(), time.process_time()
        labels, _ = index.knn_query(queries, k=10, num_threads=1)
        results["hnswlib"].append((len(queries) / (time.perf_counter() - t), len(queries) / (time.process_time() - c)))
        recalls.setdefault("hnswlib", recall(labels, truth))
    base = statistics.median(r[1] for r in results["hnswlib"])
    base_wall = statistics.median(r[0] for r in results["hnswlib"])
    for name, runs in results.items():
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"{name:16s} recall@10 {recalls[name]:.4f} kernels {kernels.get(name, '-'):6s} "
              f"wall qps median {wall:9.0f}  cpu qps median {cpu:9.0f} max {max(r[1] for r in runs):9.0f}  "
              f"ratio cpu {cpu / base:5.3f} wall {wall / base_wall:5.3f}", flush=True)

if __name__ == "__main__":
    main()
