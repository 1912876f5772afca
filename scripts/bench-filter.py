#!/usr/bin/env python3
"""Filtered retrieval sweep: recall and single-thread speed of every search path at each filter selectivity.

For each selectivity (a random category, independent of the vectors) and each k, runs `rankctl search` on the same
snapshot and queries as:
  - planned:  what the engine does — the posting list is given (`--posting`), the cost model picks the path;
  - walk:     the filtered graph walk, forced (`--no-estimate`), at each --efs;
  - scan:     the exact scan over the posting list (`--exact --posting`);
  - value:    with --catalogue, the category's own value index (`--value-index`: its quantised scan, or its graph
              walk), when the snapshot has one (docs/INDEX.md "Attribute subgraphs");
and prints recall@k against a numpy oracle, queries per CPU-second and rows scored per query. The cost model in
HNSWIndex is calibrated from these rows (docs/INDEX.md "Filters").

Usage: python scripts/bench-filter.py --rankctl .build/release/rankctl --snapshot DIR --items ITEMS.npy \
           --queries USERS.npy [--nq 200] [--selectivities 0.2,0.1,0.05,0.025,0.01,0.001] [--k 10,300]
       [--catalogue ITEMS.jsonl --categories category-0,category-4]  (the snapshot's own categories)
       [--modes planned,walk,scan,value]
       ITEMS.npy (and ITEMS.jsonl) must hold the snapshot's items in row order (the input of `rankctl build`).
"""
import argparse, json, os, subprocess, sys, tempfile

import numpy as np

from benchlib import exact_topk, recall


def parse_line(text):
    for line in text.splitlines():
        if line.startswith("queries="):
            return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    raise RuntimeError("no result line in: " + text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rankctl", required=True)
    ap.add_argument("--snapshot", required=True)
    ap.add_argument("--items", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--nq", type=int, default=200)
    ap.add_argument("--selectivities", default="0.2,0.1,0.05,0.025,0.01,0.001")
    ap.add_argument("--k", default="10,300")
    ap.add_argument("--efs", default="64,256,1024")
    ap.add_argument("--ef", type=int, default=64, help="ef of the planned search (the engine's efSearch)")
    ap.add_argument("--modes", default="planned,walk,scan,value", help="which runs to make (value: with --catalogue; "
                    "partitions: the snapshot's partitions at each --probes)")
    ap.add_argument("--probes", default="20000", help="passing rows a partitions run sees (docs/INDEX.md \"Partitions\")")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--catalogue", help="the snapshot's items.jsonl: filter on its own categories (correlated with "
                    "the vectors) instead of random ones")
    ap.add_argument("--categories", default="category-0,category-1,category-4,category-20,category-97",
                    help="with --catalogue: the categories to filter on")
    args = ap.parse_args()

    items = np.ascontiguousarray(np.load(args.items, mmap_mode="r"), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(args.queries, mmap_mode="r")[: args.nq], dtype=np.float32)
    work = tempfile.mkdtemp(prefix="bench-filter-")
    qpath = os.path.join(work, "queries.npy")
    np.save(qpath, queries)
    rng = np.random.default_rng(args.seed)
    u = rng.random(len(items))
    print(f"{len(items)} items x {items.shape[1]}, {len(queries)} queries, work dir {work}", flush=True)
    print("| selectivity | k | mode | ef / probe rows | path | recall | cpu QPS | rows scored/query |")
    print("|---|---|---|---|---|---|---|---|")
    filters = []  # (label, mask, extra rankctl arguments)
    if args.catalogue:
        names = args.categories.split(",")
        column = []
        with open(args.catalogue) as f:
            for line in f:
                column.append(json.loads(line).get("category"))
        column = np.array(column, dtype=object)
        for name in names:
            mask = column == name
            filters.append((f"{name} ({mask.mean():.2%})", mask, ["--filter-category", name]))
    else:
        for s in [float(x) for x in args.selectivities.split(",")]:
            mask = u < s
            cpath = os.path.join(work, f"cat-{s}.npy")
            np.save(cpath, mask.astype(np.int32))
            filters.append((f"{s:g}", mask, ["--categories", cpath, "--filter-category", "1"]))
    for label, mask, filter_args in filters:
        for k in [int(x) for x in args.k.split(",")]:
            truth = exact_topk(items, queries, k, mask)
            runs = [("planned", args.ef, ["--posting"])]
            runs += [("walk", ef, ["--no-estimate"]) for ef in [int(x) for x in args.efs.split(",")] if ef >= k]
            runs += [("scan", 0, ["--exact", "--posting"])]
            if args.catalogue:
                runs += [("value", args.ef, ["--value-index"])]
            runs += [("partitions", p, ["--probe-rows", str(p)]) for p in [int(x) for x in args.probes.split(",")]]
            modes = set(args.modes.split(","))
            for mode, ef, extra in runs:
                if mode not in modes:
                    continue
                out = os.path.join(work, "out.npy")
                cmd = [args.rankctl, "search", "--snapshot", args.snapshot, "--queries", qpath, "--k", str(k),
                       "--ef", str(max(ef, 1)), "--out", out] + filter_args + extra
                done = subprocess.run(cmd, capture_output=True, text=True)
                if mode == "value" and done.returncode != 0 and "has no value index" in done.stderr:
                    print(f"| {label} | {k} | value | {ef} | (no value index) | | | |", flush=True)
                    continue
                if done.returncode != 0:
                    sys.exit(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
                line = parse_line(done.stdout)
                found = np.load(out)
                leaked = int(np.sum((found >= 0) & ~mask[np.clip(found, 0, None)]))
                assert leaked == 0, f"{leaked} failing rows returned ({mode}, {label}, k={k})"
                print(f"| {label} | {k} | {mode} | {ef if ef else '—'} | {line['paths']} | {recall(found, truth):.3f} | "
                      f"{float(line['cpu_qps']):.0f} | {float(line['scored_per_query']):.0f} |", flush=True)


if __name__ == "__main__":
    main()
