#!/usr/bin/env python3
"""End-to-end Rank benchmark (issue 6): a release rankd serving SNAPSHOT, driven by h2load with one
gRPC-framed RankRequest (k, candidate pool and method as given; the user is SNAPSHOT's first user
unless --user names another), in three phases:

  1. -c1 -m1 for --seconds: one call at a time, the latency floor;
  2. saturation (-c4 -m8 by default) for --seconds: the measured maximum throughput;
  3. --load (default 0.7) of that maximum, paced with h2load --rps over 8 connections, one call
     in flight each.

Repeated --repeats times (phases interleaved); prints a markdown table of medians, with the server's
CPU µs per call from /proc/PID/stat. Needs the interop venv (grpc_tools) to encode the request:

    .venv/bin/python scripts/bench-rank.py --rankd .build/release/rankd --snapshot var/demo/snapshot

h2load paces --rps from each connection's own clock and measures from the actual send, so phase 3
is not coordinated-omission-corrected; LoadTests' `loadtest --rate` is (docs/LOADTEST.md)."""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import cpu_seconds, free_port, h2load, rank_request_body, stop_process, wait_for_port, wait_until_ok

ROOT = Path(__file__).resolve().parents[1]
PATH = "/ranking.v1.Ranker/Rank"


def first_user(snapshot):
    manifest = json.loads((Path(snapshot) / "manifest.json").read_text())
    return manifest.get("sampleUserId") or "u_0"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rankd", default=str(ROOT / ".build/release/rankd"))
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--user", default=None)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--pool", type=int, default=300)
    parser.add_argument("--method", default="mmr", choices=["none", "mmr", "dpp"])
    parser.add_argument("--category", action="append", default=[],
                        help="include only items of this category (repeatable): a filtered Rank call")
    parser.add_argument("--brand", action="append", default=[], help="include only items of this brand (repeatable)")
    parser.add_argument("--in-stock", action="store_true", help="only items in stock")
    parser.add_argument("--max-price", type=float, default=None, help="only items priced at most this")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--saturate", default="4x8", help="CLIENTSxSTREAMS for the maximum-throughput phase")
    parser.add_argument("--load", type=float, default=0.7, help="share of the maximum for the paced phase")
    args = parser.parse_args()
    args.user = args.user or first_user(args.snapshot)
    sat_clients, sat_streams = (int(x) for x in args.saturate.split("x"))

    with tempfile.TemporaryDirectory() as workdir:
        body = rank_request_body(workdir, args.user, args.k, args.pool, args.method, args.category, args.brand,
                                 args.in_stock, args.max_price)
        port = free_port()
        rankd = subprocess.Popen([args.rankd, "--listen", f"127.0.0.1:{port}", "--snapshot", args.snapshot,
                                  "--log-level", "warning"])
        try:
            wait_for_port(port, rankd)
            # The snapshot must be active and the request valid: h2load would time error replies as successes.
            wait_until_ok(port, PATH, body)
            results = {}

            def record(name, run, before, after):
                run["cpu_us"] = (after - before) * 1e6 / max(run["requests"], 1)
                results.setdefault(name, []).append(run)
                print(f"# {name}: {run['rps']:.0f} req/s p50 {run['p50_us']} p99 {run['p99_us']} us "
                      f"failed {run['failed']} cpu {run['cpu_us']:.0f} us/call", file=sys.stderr, flush=True)

            for _ in range(args.repeats):
                for name, clients, streams in [("-c1 -m1", 1, 1), (f"-c{sat_clients} -m{sat_streams}", sat_clients,
                                                                    sat_streams)]:
                    before = cpu_seconds(rankd.pid)
                    run = h2load(port, PATH, clients, streams, args.seconds, body)
                    record(name, run, before, cpu_seconds(rankd.pid))
                maximum = results[f"-c{sat_clients} -m{sat_streams}"][-1]["rps"]
                before = cpu_seconds(rankd.pid)
                run = h2load(port, PATH, 8, 1, args.seconds, body, rps_per_client=args.load * maximum / 8)
                run["target"] = args.load * maximum
                record(f"{args.load:.0%} of max (-c8 -m1 --rps)", run, before, cpu_seconds(rankd.pid))

            print(f"\nRank k={args.k} pool={args.pool} method={args.method} user={args.user}, "
                  f"{args.repeats} repeats × {args.seconds} s, medians\n")
            print("| h2load | req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | failed | server CPU µs/call |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for name, runs in results.items():
                med = lambda key: statistics.median(r[key] for r in runs)
                print(f"| {name} | {med('rps'):,.0f} | {med('p50_us'):,.0f} | {med('p90_us'):,.0f} | "
                      f"{med('p99_us'):,.0f} | {med('p999_us'):,.0f} | {med('max_us'):,.0f} | "
                      f"{sum(r['failed'] for r in runs)} | {med('cpu_us'):.0f} |")
        finally:
            stop_process(rankd)


if __name__ == "__main__":
    main()
