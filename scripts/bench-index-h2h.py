#!/usr/bin/env python3
"""Head-to-head at one ef: rankd (`rankctl search`, one or more builds) vs hnswlib, interleaved for several rounds.

Runs after scripts/bench-index.py has built the graph, the hnswlib index and the queries in WORK. Each round runs
every rankctl binary over the 10k queries, then hnswlib's `knn_query` (1 thread); prints medians of wall QPS and of
queries per CPU-second (less sensitive to other processes sharing the cores).

Usage: .venv-bench/bin/python scripts/bench-index-h2h.py var/bench-index/n100000-d64 16 9 RANKCTL [RANKCTL…]
"""
import statistics, subprocess, sys, time

import hnswlib
import numpy as np

def main():
    work, ef, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    binaries = sys.argv[4:]
    queries = np.load(f"{work}/queries-10000.npy")
    index = hnswlib.Index(space="ip", dim=queries.shape[1])
    index.load_index(f"{work}/hnswlib-m16-efc200.bin")
    index.set_num_threads(1)
    index.set_ef(ef)
    results = {b: [] for b in binaries + ["hnswlib"]}
    for _ in range(rounds):
        for b in binaries:
            out = subprocess.run([b, "search", "--items", f"{work}/items.npy",
                                  "--graph", f"{work}/graph-hybrid-m16-efc200.hnsw", "--queries",
                                  f"{work}/queries-10000.npy", "--ef", str(ef), "--out", f"{work}/h2h.npy"],
                                 capture_output=True, text=True, check=True).stdout
            kv = dict(x.split("=", 1) for x in out.split() if "=" in x)
            results[b].append((float(kv["qps"]), float(kv["cpu_qps"])))
        t, c = time.perf_counter(), time.process_time()
        index.knn_query(queries, k=10, num_threads=1)
        results["hnswlib"].append((len(queries) / (time.perf_counter() - t), len(queries) / (time.process_time() - c)))
    for name, runs in results.items():
        print(f"{name:40s} wall qps median {statistics.median(r[0] for r in runs):9.0f}  "
              f"cpu qps median {statistics.median(r[1] for r in runs):9.0f} max {max(r[1] for r in runs):9.0f}")

if __name__ == "__main__":
    main()
