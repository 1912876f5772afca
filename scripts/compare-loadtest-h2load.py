#!/usr/bin/env python3
"""Validates LoadTests' closed loop against h2load (issue 8): the same rankd, the same request, the
same concurrency (C connections, one call in flight each). Prints, per workload and C, both tools'
req/s and mean latency and how far loadtest is from h2load, as a markdown table.

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

Statistics. On a small shared machine one run of one tool varies by ±15-25% from the next, and the
machine drifts over minutes, so the tools are compared in pairs: each repeat runs both back to back
(the order alternates between repeats) and yields one ratio loadtest ÷ h2load; the table shows the
median of those paired ratios (Δ) and their interquartile range. With the default 10 repeats
the 2nd and 9th smallest ratios bound the median with 98% confidence (binomial, no assumption
about the distribution); that interval is printed too.

Mean latency. loadtest's closed-loop mean is the time a caller waits for each call, from handing
the request to the client until its result arrives, so it equals C ÷ throughput (Little's law).
h2load logs each request from the moment nghttp2 serialises its HEADERS frame, which it does on
the loop iteration after the previous response; with several connections on its one thread the
time a request waits there behind the others is not in its log. The table shows h2load's logged
mean and its caller's-view mean C ÷ throughput, and loadtest's mean against both.

`--pool-logs RUN.log ...` reads the per-repeat lines of earlier runs (this script's stderr) and
prints the pooled medians of the paired ratios with their distribution-free 96% intervals.

Also prints each client's CPU per call (user + system, getrusage of the child process, start-up
and warm-up included) ÷ (req/s × (seconds + warm-up)), the same estimate for both tools."""

import argparse
import math
import re
import statistics
import sys
import tempfile
from pathlib import Path

from benchlib import (GRPC_TIMEOUT_HEADER, free_port, h2load, load_average, loadtest_closed_loop,
                      rank_body_and_scenario, running_rankd, wait_until_ok)

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {"echo": "/rankd.testing.v1.Echo/Unary", "rank": "/ranking.v1.Ranker/Rank"}
WARMUP_SECONDS = 1


def cpu_us_per_call(run, seconds):
    return 1e6 * run["cpu_s"] / max(run["rps"] * (seconds + WARMUP_SECONDS), 1)


def median_interval(values, confidence=0.95):
    """(low, high, coverage): order statistics X(j) and X(n+1-j) that contain the median with at
    least `confidence` (distribution-free, from the binomial), or the extremes if n is too small."""
    xs, n = sorted(values), len(values)
    j = 1
    while j < n // 2 and 1 - 2 * sum(math.comb(n, i) for i in range(j + 1)) / 2 ** n >= confidence:
        j += 1
    coverage = 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2 ** n
    return xs[j - 1], xs[n - j], coverage


def quartiles(values):
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return q[0], q[2]


def percent(ratio):
    return f"{100 * (ratio - 1):+.0f}%"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rankd", default=str(ROOT / ".build-loadtest-root/release/rankd"))
    parser.add_argument("--loadtest", default=str(ROOT / "LoadTests/.build-loadtest/release/loadtest"))
    parser.add_argument("--snapshot", default=str(ROOT / "var/demo/snapshot"))
    parser.add_argument("--workloads", default="echo,rank")
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--pin", action="store_true")
    parser.add_argument("--pool-logs", nargs="+", metavar="LOG",
                        help="pool the per-repeat lines of earlier runs' stderr instead of measuring")
    parser.add_argument("--h2load-grpc-timeout", default=GRPC_TIMEOUT_HEADER, metavar="VALUE",
                        help="grpc-timeout header h2load sends (default: what loadtest sends; '' for none)")
    args = parser.parse_args()
    if args.pool_logs:
        return print_pooled(args.pool_logs)
    for path in (args.rankd, args.loadtest):
        if not Path(path).is_file():
            raise SystemExit(f"{path} not found: build it with `make loadtest-build` (or pass --rankd/--loadtest)")
    if not Path(args.snapshot, "manifest.json").is_file():
        raise SystemExit(f"no snapshot at {args.snapshot}: `make loadtest` creates var/demo (or pass --snapshot)")
    workloads = args.workloads.split(",")
    if not set(workloads) <= set(WORKLOADS):
        raise SystemExit(f"--workloads: choose from {', '.join(WORKLOADS)}")
    h2_headers = (f"grpc-timeout: {args.h2load_grpc_timeout}",) if args.h2load_grpc_timeout else ()
    load_before = load_average()

    with tempfile.TemporaryDirectory() as workdir:
        rank_body, rank_scenario = rank_body_and_scenario(workdir)
        echo_body = Path(workdir) / "echo.bin"
        echo_body.write_bytes(b"\x00\x00\x00\x00\x00")
        bodies = {"echo": (str(echo_body), None), "rank": (rank_body, rank_scenario)}
        port = free_port()
        results = {}
        with running_rankd(args.rankd, port, "--snapshot", args.snapshot, pin=args.pin):
            wait_until_ok(port, WORKLOADS["rank"], rank_body)  # the snapshot is active: no error replies timed
            for repeat in range(args.repeats):
                for workload in workloads:
                    body, scenario = bodies[workload]
                    for c in (int(x) for x in args.concurrency.split(",")):
                        def run_h2load():
                            return h2load(port, WORKLOADS[workload], c, 1, args.seconds, body, warmup=WARMUP_SECONDS,
                                          cpu=1 if args.pin else None, headers=h2_headers)

                        def run_loadtest():
                            return loadtest_closed_loop(args.loadtest, port, c, args.seconds, workdir, scenario,
                                                        warmup=WARMUP_SECONDS, pin=args.pin)

                        # Alternate which tool goes first, so neither always runs on a warmer server.
                        if repeat % 2 == 0:
                            h2, lt = run_h2load(), run_loadtest()
                        else:
                            lt, h2 = run_loadtest(), run_h2load()
                        results.setdefault((workload, c), []).append((h2, lt))
                        print(f"# {workload} C={c}: h2load {h2['rps']:.0f} req/s mean {h2['mean_us']:.0f} us "
                              f"cpu {cpu_us_per_call(h2, args.seconds):.1f} us/call | loadtest {lt['rps']:.0f} req/s "
                              f"mean {lt['mean_us']:.0f} us cpu {cpu_us_per_call(lt, args.seconds):.1f} us/call | "
                              f"ratio {lt['rps'] / h2['rps']:.3f}", file=sys.stderr, flush=True)
        load_after = load_average()
    print_table(results, args, load_before, load_after)


def print_table(results, args, load_before, load_after):
    coverage = None
    print(f"\n{'pinned (rankd CPU 0, client CPU 1)' if args.pin else 'not pinned'}, "
          f"{args.repeats} paired repeats × {args.seconds} s (+{WARMUP_SECONDS} s warm-up), order alternating; "
          f"h2load grpc-timeout: {args.h2load_grpc_timeout or 'none'}; load average before {load_before}, "
          f"after {load_after}\n")
    print("| workload | C | h2load req/s | loadtest req/s | **Δ req/s** (IQR; median interval) | h2load mean µs: "
          "logged / C÷req/s | loadtest mean µs | Δ mean vs logged | **Δ mean vs C÷req/s** | "
          "mean × req/s h2load logged / loadtest | CPU µs/call h2load / loadtest |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---|---|")
    for (workload, c), runs in results.items():
        rps_ratios = [lt["rps"] / h2["rps"] for h2, lt in runs]
        logged_ratios = [lt["mean_us"] / h2["mean_us"] for h2, lt in runs]
        little_ratios = [lt["mean_us"] / (1e6 * c / h2["rps"]) for h2, lt in runs]
        q1, q3 = quartiles(rps_ratios)
        low, high, coverage = median_interval(rps_ratios)
        h2_rps = statistics.median(h["rps"] for h, _ in runs)
        lt_rps = statistics.median(l["rps"] for _, l in runs)
        h2_mean = statistics.median(h["mean_us"] for h, _ in runs)
        h2_little = statistics.median(1e6 * c / h["rps"] for h, _ in runs)
        lt_mean = statistics.median(l["mean_us"] for _, l in runs)
        # Little's law: a closed loop has C calls in flight, so mean × throughput = C when the mean
        # covers the whole time a call is in the system.
        h2_in_flight = statistics.median(h["mean_us"] * h["rps"] / 1e6 for h, _ in runs)
        lt_in_flight = statistics.median(l["mean_us"] * l["rps"] / 1e6 for _, l in runs)
        h2_cpu = statistics.median(cpu_us_per_call(h, args.seconds) for h, _ in runs)
        lt_cpu = statistics.median(cpu_us_per_call(l, args.seconds) for _, l in runs)
        print(f"| {workload} | {c} | {h2_rps:,.0f} | {lt_rps:,.0f} | **{percent(statistics.median(rps_ratios))}** "
              f"({percent(q1)}…{percent(q3)}; {percent(low)}…{percent(high)}) | {h2_mean:,.0f} / {h2_little:,.0f} | "
              f"{lt_mean:,.0f} | {percent(statistics.median(logged_ratios))} | "
              f"**{percent(statistics.median(little_ratios))}** | {h2_in_flight:.2f} / {lt_in_flight:.2f} (C = {c}) | "
              f"{h2_cpu:.1f} / {lt_cpu:.1f} |")
    if coverage is not None:
        print(f"\nΔ: median of the paired ratios loadtest ÷ h2load; IQR: their quartiles; median interval: "
              f"contains the true median ratio with {100 * coverage:.0f}% confidence. mean × req/s: the calls in "
              f"flight that the logged latencies account for (Little's law); a closed loop has C.")


REPEAT_LINE = re.compile(r"# (\w+) C=(\d+): h2load (\d+) req/s mean (\d+) us .*\| loadtest (\d+) req/s mean (\d+) us")


def print_pooled(logs):
    """Pooled paired ratios from the `# workload C=…` lines of earlier runs (means rounded to 1 µs)."""
    pairs = {}
    for log in logs:
        for line in Path(log).read_text().splitlines():
            if match := REPEAT_LINE.match(line):
                workload, c, h_rps, h_mean, l_rps, l_mean = match.groups()
                c, h_rps, h_mean, l_rps, l_mean = map(int, (c, h_rps, h_mean, l_rps, l_mean))
                pairs.setdefault((workload, c), []).append(
                    (l_rps / h_rps, l_mean / (1e6 * c / h_rps), l_mean / h_mean))
    if not pairs:
        raise SystemExit("no '# workload C=…' lines in " + ", ".join(logs))
    print("| workload | C | pairs | Δ req/s | Δ mean vs C÷req/s | Δ mean vs logged |")
    print("|---|---:|---:|---|---|---|")
    for (workload, c), rows in pairs.items():
        cells = []
        for column in range(3):
            values = [row[column] for row in rows]
            low, high, _ = median_interval(values)
            cells.append(f"{100 * (statistics.median(values) - 1):+.1f}% ({percent(low)}…{percent(high)})")
        print(f"| {workload} | {c} | {len(rows)} | " + " | ".join(cells) + " |")
    print("\nMedians of the paired ratios loadtest ÷ h2load; in brackets the interval that contains the "
          "median with ≥ 95% confidence (distribution-free).")


if __name__ == "__main__":
    main()
