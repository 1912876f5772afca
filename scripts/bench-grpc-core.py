#!/usr/bin/env python3
"""gRPC core benchmark: rankd vs Python grpcio on the same trivial unary method, driven by
h2load (nghttp2-client) in one run, interleaved, repeated; prints a markdown table of medians.

    .venv/bin/python scripts/bench-grpc-core.py --rankd .build/release/rankd [--repeats 3] [--seconds 10]

Latency percentiles come from `h2load --log-file` (one line per request); server CPU time per
request from /proc/PID/stat (utime+stime) before and after each run — the number that survives
h2load sharing the 2 cores with the server."""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import cpu_seconds, free_port, h2load, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
PATH = "/rankd.testing.v1.Echo/Unary"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rankd", default=str(ROOT / ".build/release/rankd"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()

    body = tempfile.NamedTemporaryFile(delete=False)
    body.write(b"\x00\x00\x00\x00\x00")  # one empty EchoRequest, uncompressed
    body.close()

    rankd_port, grpcio_port = free_port(), free_port()
    rankd = subprocess.Popen([args.rankd, "--listen", f"127.0.0.1:{rankd_port}", "--enable-test-services",
                              "--log-level", "warning"])
    grpcio = subprocess.Popen([sys.executable, str(ROOT / "scripts/grpcio_echo_server.py"), str(grpcio_port)],
                              stdout=subprocess.DEVNULL)
    try:
        wait_for_port(rankd_port, rankd)
        wait_for_port(grpcio_port, grpcio)
        results = {}
        for repeat in range(args.repeats):
            for clients, streams in [(1, 1), (8, 16)]:
                for name, port, proc in [("rankd", rankd_port, rankd), ("grpcio", grpcio_port, grpcio)]:
                    before = cpu_seconds(proc.pid)
                    run = h2load(port, PATH, clients, streams, args.seconds, body.name)
                    after = cpu_seconds(proc.pid)
                    # Warm-up requests are not in `requests` but their CPU is: a small overestimate.
                    run["cpu_us_per_req"] = (after - before) * 1e6 / max(run["requests"], 1)
                    results.setdefault((name, clients, streams), []).append(run)
                    print(f"# repeat {repeat + 1} {name} -c{clients} -m{streams}: {run['rps']:.0f} req/s "
                          f"p50 {run['p50_us']} us p99 {run['p99_us']} us cpu {run['cpu_us_per_req']:.1f} us/req",
                          file=sys.stderr, flush=True)
        print("| server | h2load | req/s | mean µs | p50 µs | p99 µs | server CPU µs/req |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for (name, clients, streams), runs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0] != "rankd")):
            med = lambda key: statistics.median(r[key] for r in runs)
            print(f"| {name} | -c{clients} -m{streams} | {med('rps'):,.0f} | {med('mean_us'):.0f} | "
                  f"{med('p50_us'):.0f} | {med('p99_us'):.0f} | {med('cpu_us_per_req'):.1f} |")
        for clients, streams in [(1, 1), (8, 16)]:
            ratio = statistics.median(r["rps"] for r in results[("rankd", clients, streams)]) / statistics.median(
                r["rps"] for r in results[("grpcio", clients, streams)])
            print(f"\nthroughput ratio rankd/grpcio at -c{clients} -m{streams}: {ratio:.1f}x")
    finally:
        for proc in (rankd, grpcio):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        os.unlink(body.name)


if __name__ == "__main__":
    main()
