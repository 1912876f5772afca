#!/usr/bin/env python3
"""Related vs Rank latency on one snapshot (issue 22): starts a release rankd on --snapshot, then
calls Ranker/Rank and Ranker/Related alternately, one at a time on one grpcio channel, and prints
p50/p99 of each twice: client-observed over loopback (grpcio's overhead included), and server-side
from rankd's access log (`--access-log-every 1`: `us` is decode → engine → encode, per call).

    .venv/bin/python scripts/bench-related.py --rankd .build/release/rankd --snapshot /work/big/snap
"""

import argparse
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))
from conftest import free_port, wait_until_ranking  # noqa: E402  (also generates the stubs)

import grpc  # noqa: E402
from ranking.v1 import ranker_pb2 as pb  # noqa: E402
from ranking.v1 import ranker_pb2_grpc as rpc  # noqa: E402


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rankd", required=True)
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--items", type=int, default=1_000_000, help="item ids are sku-0 … sku-(N-1)")
    parser.add_argument("--users", type=int, default=1_000_000, help="user ids are u_0 … u_(N-1)")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    log_path = Path(f"/tmp/bench-related-{port}.log")
    log = open(log_path, "w")
    server = subprocess.Popen([args.rankd, "--listen", f"127.0.0.1:{port}", "--snapshot", args.snapshot,
                               "--access-log-every", "1"], stderr=log, stdout=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        wait_until_ranking(channel, timeout=120)
        stub = rpc.RankerStub(channel)
        rng = random.Random(22)
        mmr = pb.Diversity(method=pb.DIVERSITY_METHOD_MMR)

        def rank():
            stub.Rank(pb.RankRequest(user_id=f"u_{rng.randrange(args.users)}", k=args.k, diversity=mmr), timeout=5)

        def related():
            seeds = [f"sku-{rng.randrange(args.items)}" for _ in range(rng.choice([1, 1, 2, 3]))]
            stub.Related(pb.RelatedRequest(seed_item_ids=seeds, rules=pb.RankRequest(k=args.k, diversity=mmr)),
                         timeout=5)

        for _ in range(300):
            rank()
            related()
        times = {"Rank": [], "Related": []}
        for _ in range(args.calls):
            for name, call in (("Rank", rank), ("Related", related)):
                started = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - started) * 1e6)
        for name, values in times.items():
            print(f"{name:8} client-observed  calls {len(values)}  p50 {percentile(values, 50):8.0f} µs  "
                  f"p99 {percentile(values, 99):8.0f} µs")
        channel.close()
        log.flush()
        lines = log_path.read_text().splitlines()
        for name in times:
            # The measured calls are the last `calls` of each method in the log (after the warm-up).
            server_side = [int(line.split(" us=")[1].split()[0]) for line in lines
                           if f"method=/ranking.v1.Ranker/{name} " in line and " us=" in line][-args.calls:]
            print(f"{name:8} server-side      calls {len(server_side)}  p50 {percentile(server_side, 50):8.0f} µs  "
                  f"p99 {percentile(server_side, 99):8.0f} µs")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
