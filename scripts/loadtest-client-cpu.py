#!/usr/bin/env python3
"""Client CPU per call of one or more loadtest binaries (and h2load), side by side: the same rankd,
the same request, closed loop with C connections and one call in flight each, interleaved and
repeated; prints medians as a markdown table. CPU per call is robust to a busy machine where
latency and throughput are not: compare builds of the harness with it.

    .venv/bin/python scripts/loadtest-client-cpu.py --workload echo \\
        /tmp/loadtest-before LoadTests/.build-loadtest/release/loadtest

CPU is user + system time of the client process (getrusage of the waited-for child), start-up,
connection set-up and report included, divided by every call it made: loadtest's `generator.sent`
(warm-up included), h2load's completed calls (run without warm-up so that all calls count)."""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from benchlib import (GRPC_TIMEOUT_HEADER, free_port, h2load, load_average, loadtest_closed_loop,
                      rank_body_and_scenario, running_rankd, wait_until_ok)

ROOT = Path(__file__).resolve().parents[1]
PATHS = {"echo": "/rankd.testing.v1.Echo/Unary", "rank": "/ranking.v1.Ranker/Rank"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("loadtest", nargs="+", help="loadtest binaries to compare")
    parser.add_argument("--rankd", default=str(ROOT / ".build-loadtest-root/release/rankd"))
    parser.add_argument("--snapshot", default=str(ROOT / "var/demo/snapshot"), help="needed for --workload rank")
    parser.add_argument("--workload", choices=sorted(PATHS), default="echo")
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pin", action="store_true", help="rankd on CPU 0, clients on CPU 1")
    parser.add_argument("--no-h2load", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        if args.workload == "rank":
            body, scenario = rank_body_and_scenario(workdir)
        else:
            body, scenario = str(Path(workdir) / "echo.bin"), None
            Path(body).write_bytes(b"\x00\x00\x00\x00\x00")
        port = free_port()
        load_before = load_average()
        results = {}
        with running_rankd(args.rankd, port, *(["--snapshot", args.snapshot] if args.workload == "rank" else []),
                           pin=args.pin):
            wait_until_ok(port, PATHS[args.workload], body)  # Rank: the snapshot is active
            for _ in range(args.repeats):
                for c in (int(x) for x in args.concurrency.split(",")):
                    for binary in args.loadtest:
                        run = loadtest_closed_loop(binary, port, c, args.seconds, workdir, scenario, pin=args.pin)
                        run["cpu_us"] = 1e6 * run["cpu_s"] / max(run["sent"], 1)
                        results.setdefault((c, binary), []).append(run)
                        print(f"# C={c} {binary}: {run['cpu_us']:.1f} us/call, {run['rps']:.0f} req/s",
                              file=sys.stderr, flush=True)
                    if not args.no_h2load:
                        h2 = h2load(port, PATHS[args.workload], c, 1, args.seconds, body, warmup=0,
                                    cpu=1 if args.pin else None, headers=(f"grpc-timeout: {GRPC_TIMEOUT_HEADER}",))
                        run = {"cpu_us": 1e6 * h2["cpu_s"] / max(h2["requests"], 1), "rps": h2["rps"],
                               "mean_us": h2["mean_us"]}
                        results.setdefault((c, "h2load"), []).append(run)
                        print(f"# C={c} h2load: {run['cpu_us']:.1f} us/call, {run['rps']:.0f} req/s",
                              file=sys.stderr, flush=True)
        load_after = load_average()
        print(f"\n{args.workload}, {'pinned' if args.pin else 'not pinned'}, {args.repeats} interleaved repeats × "
              f"{args.seconds} s, medians; load average before {load_before}, after {load_after}\n")
        print("| C | client | CPU µs/call | req/s | mean µs |")
        print("|---:|---|---:|---:|---:|")
        for (c, client), runs in results.items():
            print(f"| {c} | {client} | {statistics.median(r['cpu_us'] for r in runs):.1f} | "
                  f"{statistics.median(r['rps'] for r in runs):,.0f} | "
                  f"{statistics.median(r['mean_us'] for r in runs):,.0f} |")


if __name__ == "__main__":
    main()
