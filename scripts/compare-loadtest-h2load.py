#!/usr/bin/env python3
"""Validates LoadTests' closed loop against h2load (issue 8): the same rankd, the same request, the
same concurrency (C connections, one call in flight each), interleaved and repeated; prints req/s
and mean latency of both and their difference, as a markdown table of medians.

    make loadtest-build venv      # rankd, rankctl and loadtest as `make loadtest` builds them
    .venv/bin/python scripts/compare-loadtest-h2load.py [--pin]   # defaults: those binaries, var/demo/snapshot

(`make loadtest-compare` does both and creates the demo snapshot if absent.)

Workloads: `echo` (an empty rankd.testing.v1.Echo/Unary call: almost all the cost is the two
clients' and the protocol's) and `rank` (one RankRequest, k 20, pool 300, MMR, for the snapshot's
first user: the server's work dominates). --pin runs rankd on CPU 0 and both clients on CPU 1
(taskset), so a costlier client does not take cycles from the server.

Same request from both: the same body, and h2load also sends the `grpc-timeout` header that
loadtest sends for its default 10 s call deadline (rankd arms a deadline timer per call that has
one, so without it h2load's calls would cost the server less). Both warm up for 1 s, then measure.

Also prints each client's CPU per call (user + system, getrusage of the child process, start-up
and warm-up included) ÷ (req/s × (seconds + warm-up)), the same estimate for both tools."""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import (CALL_TIMEOUT, GRPC_TIMEOUT_HEADER, children_cpu_seconds, free_port, h2load, load_average,
                      rank_body_and_scenario, running_rankd, wait_until_ok)

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {"echo": "/rankd.testing.v1.Echo/Unary", "rank": "/ranking.v1.Ranker/Rank"}
WARMUP_SECONDS = 1


def loadtest(binary, port, concurrency, seconds, scenario, workdir, pin):
    report = Path(workdir) / "report.json"
    cmd = ([] if not pin else ["taskset", "-c", "1"]) + [
        binary, "--target", f"127.0.0.1:{port}", "--concurrency", str(concurrency), "--connections",
        str(concurrency), "--duration", f"{seconds}s", "--warmup", f"{WARMUP_SECONDS}s", "--timeout", CALL_TIMEOUT,
        "--quiet", "--json", str(report)]
    if scenario:
        cmd += ["--scenario", scenario]
    cpu_before = children_cpu_seconds()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    cpu_used = children_cpu_seconds() - cpu_before
    data = json.loads(report.read_text())
    return {"rps": data["achievedRate"], "mean_us": data["latency"]["mean"], "p50_us": data["latency"]["p50"],
            "p99_us": data["latency"]["p99"], "errors": sum(data["latency"]["errors"].values()), "cpu_s": cpu_used}


def cpu_us_per_call(run, seconds):
    return 1e6 * run["cpu_s"] / max(run["rps"] * (seconds + WARMUP_SECONDS), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rankd", default=str(ROOT / ".build-loadtest-root/release/rankd"))
    parser.add_argument("--loadtest", default=str(ROOT / "LoadTests/.build-loadtest/release/loadtest"))
    parser.add_argument("--snapshot", default=str(ROOT / "var/demo/snapshot"))
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pin", action="store_true")
    parser.add_argument("--h2load-grpc-timeout", default=GRPC_TIMEOUT_HEADER, metavar="VALUE",
                        help="grpc-timeout header h2load sends (default: what loadtest sends; '' for none)")
    args = parser.parse_args()
    for path in (args.rankd, args.loadtest):
        if not Path(path).is_file():
            raise SystemExit(f"{path} not found: build it with `make loadtest-build` (or pass --rankd/--loadtest)")
    if not Path(args.snapshot, "manifest.json").is_file():
        raise SystemExit(f"no snapshot at {args.snapshot}: `make loadtest` creates var/demo (or pass --snapshot)")
    h2_headers = (f"grpc-timeout: {args.h2load_grpc_timeout}",) if args.h2load_grpc_timeout else ()
    load_before = load_average()

    with tempfile.TemporaryDirectory() as workdir:
        rank_body, rank_scenario = rank_body_and_scenario(workdir)
        echo_body = Path(workdir) / "echo.bin"
        echo_body.write_bytes(b"\x00\x00\x00\x00\x00")
        port = free_port()
        results = {}
        with running_rankd(args.rankd, port, "--snapshot", args.snapshot, pin=args.pin):
            wait_until_ok(port, WORKLOADS["rank"], rank_body)  # the snapshot is active: no error replies timed
            for _ in range(args.repeats):
                for workload, body, scenario in [("echo", str(echo_body), None), ("rank", rank_body, rank_scenario)]:
                    for c in (int(x) for x in args.concurrency.split(",")):
                        h2 = h2load(port, WORKLOADS[workload], c, 1, args.seconds, body, warmup=WARMUP_SECONDS,
                                    cpu=1 if args.pin else None, headers=h2_headers)
                        lt = loadtest(args.loadtest, port, c, args.seconds, scenario, workdir, args.pin)
                        results.setdefault((workload, c), []).append((h2, lt))
                        print(f"# {workload} C={c}: h2load {h2['rps']:.0f} req/s mean {h2['mean_us']:.0f} us "
                              f"cpu {cpu_us_per_call(h2, args.seconds):.1f} us/call | loadtest {lt['rps']:.0f} req/s "
                              f"mean {lt['mean_us']:.0f} us cpu {cpu_us_per_call(lt, args.seconds):.1f} us/call",
                              file=sys.stderr, flush=True)
        load_after = load_average()
        print(f"\n{'pinned (rankd CPU 0, client CPU 1)' if args.pin else 'not pinned'}, "
              f"{args.repeats} interleaved repeats × {args.seconds} s, medians; h2load grpc-timeout: "
              f"{args.h2load_grpc_timeout or 'none'}; load average before {load_before}, "
              f"after {load_after}\n")
        print("| workload | C | h2load req/s | loadtest req/s | Δ | h2load mean µs | loadtest mean µs | Δ "
              "| h2load CPU µs/call | loadtest CPU µs/call |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for (workload, c), runs in results.items():
            h2_rps = statistics.median(h["rps"] for h, _ in runs)
            lt_rps = statistics.median(l["rps"] for _, l in runs)
            h2_mean = statistics.median(h["mean_us"] for h, _ in runs)
            lt_mean = statistics.median(l["mean_us"] for _, l in runs)
            h2_cpu = statistics.median(cpu_us_per_call(h, args.seconds) for h, _ in runs)
            lt_cpu = statistics.median(cpu_us_per_call(l, args.seconds) for _, l in runs)
            print(f"| {workload} | {c} | {h2_rps:,.0f} | {lt_rps:,.0f} | {100 * (lt_rps / h2_rps - 1):+.0f}% | "
                  f"{h2_mean:,.0f} | {lt_mean:,.0f} | {100 * (lt_mean / h2_mean - 1):+.0f}% | "
                  f"{h2_cpu:.1f} | {lt_cpu:.1f} |")


if __name__ == "__main__":
    main()
