#!/usr/bin/env python3
"""Retrieval benchmark: rankd's HNSW (`rankctl search`, release build) vs hnswlib, same data, same run.

Data: `rankctl synth` items (clustered by category, log-normal norms) as the index and its users as queries.
Reports recall@10 vs single-thread QPS for an ef sweep (median of --repeats runs; qps = per wall second, cpu_qps =
per CPU second of the searching process, which moves far less when other processes share the cores), filtered search at 10%/1%/0.1%
selectivity, build time, index size, exact-scan throughput and allocations per search (via scripts/alloc-count.c).

Usage: .venv-bench/bin/python scripts/bench-index.py --rankctl .build-index/release/rankctl --n 1000000
       (--rankctl may be repeated as LABEL=PATH, e.g. baseline=… haswell=…: every binary searches the same graph,
       built once by the first, so per-evaluation speed of differently compiled builds is compared in one run)
"""
import argparse, json, os, statistics, subprocess, sys, time

import numpy as np

from benchlib import exact_topk, recall

def run(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return out.stdout

def parse(line_text, prefix=None):
    for line in line_text.splitlines():
        if prefix is None or line.startswith(prefix):
            if "=" in line:
                return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    raise RuntimeError("no result line in: " + line_text)

def load_npy(path):
    return np.load(path, mmap_mode="r")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rankctl", required=True, action="append")
    ap.add_argument("--ip-space", default="hybrid")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--efs", default="16,32,64,128,256")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", default="var/bench-index")
    ap.add_argument("--skip-hnswlib", action="store_true")
    ap.add_argument("--filter-queries", type=int, default=1000)
    args = ap.parse_args()
    efs = [int(e) for e in args.efs.split(",")]
    binaries = [(b.split("=", 1) if "=" in b else ["rankd", b]) for b in args.rankctl]
    rankctl = binaries[0][1]
    work = os.path.join(args.work, f"n{args.n}-d{args.dim}")
    os.makedirs(work, exist_ok=True)
    items_path, queries_path = f"{work}/items.npy", f"{work}/users.npy"
    if not os.path.exists(items_path):
        run([rankctl, "synth", "--out", work, "--items", str(args.n), "--users", str(args.queries),
             "--dim", str(args.dim)])
    items = np.ascontiguousarray(load_npy(items_path), dtype=np.float32)
    queries = np.ascontiguousarray(load_npy(queries_path), dtype=np.float32)[: args.queries]
    qpath = f"{work}/queries-{len(queries)}.npy"
    np.save(qpath, queries)
    norms = np.linalg.norm(items, axis=1)
    print(f"data: {items.shape} items (norm p5/p50/p95 {np.percentile(norms, 5):.2f}/{np.median(norms):.2f}/"
          f"{np.percentile(norms, 95):.2f}), {queries.shape[0]} queries", flush=True)

    # Categories for filters, independent of the vectors: 1 → 10%, 2 → 1%, 3 → 0.1%, 0 → the rest.
    rng = np.random.default_rng(7)
    u = rng.random(len(items))
    cats = np.zeros(len(items), dtype=np.int64)
    cats[u < 0.111] = 1
    cats[u < 0.011] = 2
    cats[u < 0.001] = 3
    cat_path = f"{work}/categories.npy"
    np.save(cat_path, cats)

    gt_path = f"{work}/truth-{len(queries)}.npy"
    if os.path.exists(gt_path):
        truth = np.load(gt_path)
    else:
        t = time.time()
        truth = exact_topk(items, queries, 10)
        np.save(gt_path, truth)
        print(f"ground truth (numpy) {time.time() - t:.1f}s", flush=True)
    results = {"n": args.n, "dim": args.dim, "queries": len(queries), "m": args.m, "efc": args.efc}

    # rankd build (first search call builds and saves the graph).
    graph = f"{work}/graph-{args.ip_space}-m{args.m}-efc{args.efc}.hnsw"
    common = [rankctl, "search", "--items", items_path, "--graph", graph, "--k", "10", "--ip-space", args.ip_space,
              "--m", str(args.m), "--ef-construction", str(args.efc), "--build-threads", "2"]
    fq_build = f"{work}/queries-1000.npy"
    np.save(fq_build, queries[:1000])
    if not os.path.exists(graph):
        out = run(common + ["--ef", "16", "--queries", fq_build, "--out", f"{work}/out.npy"])
        b = parse(out, "build")
        results["rankd_build_seconds"] = float(b["seconds"])
        print(f"rankd build: {b['seconds']} s on 2 threads, {int(b['bytes']) / 2**20:.1f} MiB", flush=True)
    results["rankd_index_bytes"] = os.path.getsize(graph)

    def rankd_search(ef, extra=(), repeats=args.repeats, env=None, truth_=truth, q=qpath, binary=rankctl):
        qps, cpu_qps, last = [], [], None
        for _ in range(repeats):
            last = parse(run([binary] + common[1:] + ["--ef", str(ef), "--out", f"{work}/out.npy", "--queries", q]
                             + list(extra), env=env), "queries")
            qps.append(float(last["qps"]))
            cpu_qps.append(float(last["cpu_qps"]))
        found = np.load(f"{work}/out.npy")
        last["cpu_qps_median"] = statistics.median(cpu_qps)
        return statistics.median(qps), recall(found, truth_), last

    index = None
    if not args.skip_hnswlib:
        import hnswlib
        hpath = f"{work}/hnswlib-m{args.m}-efc{args.efc}.bin"
        index = hnswlib.Index(space="ip", dim=args.dim)
        if os.path.exists(hpath):
            index.load_index(hpath, max_elements=len(items))
        else:
            index.init_index(max_elements=len(items), M=args.m, ef_construction=args.efc, random_seed=42)
            index.set_num_threads(2)
            t = time.time()
            index.add_items(items, np.arange(len(items)))
            results["hnswlib_build_seconds"] = time.time() - t
            print(f"hnswlib build: {results['hnswlib_build_seconds']:.1f} s on 2 threads", flush=True)
            index.save_index(hpath)
        results["hnswlib_index_bytes"] = os.path.getsize(hpath)
        index.set_num_threads(1)
        results["hnswlib"] = []

    # The sweep interleaves the contenders per ef, so load from other processes hits them alike.
    for label, _ in binaries:
        results[label] = []
    for ef in efs:
        for label, binary in binaries:
            qps, r, last = rankd_search(ef, binary=binary)
            results[label].append({"ef": ef, "qps": qps, "cpu_qps": last["cpu_qps_median"], "recall": r,
                                   "scored": float(last["scored_per_query"])})
            print(f"{label:8s} ef={ef:4d} recall@10={r:.4f} qps={qps:9.1f} cpu_qps={last['cpu_qps_median']:9.1f} "
                  f"scored/query={last['scored_per_query']}", flush=True)
        if index is not None:
            index.set_ef(ef)
            times, cpu = [], []
            for _ in range(args.repeats):
                t, c = time.perf_counter(), time.process_time()
                labels, _ = index.knn_query(queries, k=10, num_threads=1)
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            qps, cpu_qps = len(queries) / statistics.median(times), len(queries) / statistics.median(cpu)
            r = recall(labels, truth)
            results["hnswlib"].append({"ef": ef, "qps": qps, "cpu_qps": cpu_qps, "recall": r})
            print(f"hnswlib  ef={ef:4d} recall@10={r:.4f} qps={qps:9.1f} cpu_qps={cpu_qps:9.1f}", flush=True)

    # Filtered: recall against the filtered oracle on the first 1000 queries.
    fq = queries[:args.filter_queries]
    fq_path = f"{work}/queries-{len(fq)}.npy"
    np.save(fq_path, fq)
    results["filtered"] = []
    # --filter-queries 0 skips the filtered runs.
    for cat, label in [(1, "10%"), (2, "1%"), (3, "0.1%")] if len(fq) else []:
        mask = cats == cat
        ftruth = exact_topk(items, fq, 10, mask)
        for mode, extra in [("estimate", []), ("walk-only", ["--no-estimate"])]:
            # The forced walk at 1% / 0.1% visits most of the graph: one repeat is enough for its recall and QPS.
            qps, r, last = rankd_search(64, ["--categories", cat_path, "--filter-category", str(cat)] + extra,
                                        truth_=ftruth, q=fq_path, repeats=args.repeats if not extra else 1)
            found = np.load(f"{work}/out.npy")
            leaked = int(np.sum((found >= 0) & ~mask[np.clip(found, 0, None)]))
            results["filtered"].append({"selectivity": label, "mode": mode, "qps": qps, "recall": r,
                                        "cpu_qps": last["cpu_qps_median"], "scored": float(last["scored_per_query"]),
                                        "paths": last["paths"], "failing_rows_returned": leaked})
            print(f"filter {label:5s} {mode:9s} ef=64 recall@10={r:.4f} qps={qps:9.1f} "
                  f"cpu_qps={last['cpu_qps_median']:9.1f} scored/query={last['scored_per_query']} "
                  f"paths={last['paths']} failing_returned={leaked}", flush=True)

    # Exact scan throughput (all rows, no filter), on 200 queries.
    eq_path = f"{work}/queries-200.npy"
    np.save(eq_path, queries[:200])
    _, r, last = rankd_search(64, ["--exact"], truth_=truth[:200], q=eq_path)
    results["exact"] = {"qps": float(last["qps"]), "gbps": float(last["scan_gbps"]), "recall": r}
    buf = np.ones(256 * 2**20 // 4, dtype=np.float32)
    t = time.perf_counter()
    for _ in range(5):
        buf.sum()
    results["numpy_sum_gbps"] = 5 * buf.nbytes / (time.perf_counter() - t) / 1e9
    print(f"exact scan: {last['scan_gbps']} GB/s ({last['qps']} qps, recall {r:.4f}); "
          f"numpy sum over 256 MiB (1 thread read bandwidth proxy): {results['numpy_sum_gbps']:.2f} GB/s", flush=True)

    # Allocations per search in steady state (malloc shim, counted over the timed loop).
    shim = f"{work}/alloc-count.so"
    here = os.path.dirname(os.path.abspath(__file__))
    run(["cc", "-O2", "-shared", "-fPIC", "-o", shim, os.path.join(here, "alloc-count.c"), "-ldl"])
    env = dict(os.environ, LD_PRELOAD=os.path.abspath(shim))
    _, _, last = rankd_search(64, repeats=1, env=env)
    results["allocations_timed_loop"] = int(last["allocations"])
    print(f"allocations during {last['queries']} searches (ef=64, 1 thread, incl. first-use scratch growth): "
          f"{last['allocations']}", flush=True)
    with open(f"{work}/results.json", "w") as f:
        json.dump(results, f, indent=1)

if __name__ == "__main__":
    main()
