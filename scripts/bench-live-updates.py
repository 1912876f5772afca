#!/usr/bin/env python3
"""Live-update numbers for docs/BENCHMARKS.md ("Live updates"), against a release rankd on a snapshot
root holding one snapshot:

1. UpdateItems throughput: THREADS clients send 1,000-item batches back to back (stock and price
   changes, pre-serialised) for --throughput-seconds; items acknowledged per second, batch latency.
2. Rank p99 with and without updates, same run: LoadTests' `loadtest` drives the scenario open loop at
   --rate; runs alternate without updates and with updates paced at --update-rate (batches of 1,000),
   --repeats times each; the medians and their ratio.
3. DeleteUser acknowledgement → first Rank that treats the user as unknown: for --deletes known users,
   Rank until the strategy is POPULAR after the acknowledgement; the time from the acknowledgement to
   that response, quiet and while updates stream. Likewise for 100 removals of the most popular item:
   acknowledgement → first Rank without it.

  scripts/bench-live-updates.py --rankd BIN/rankd --loadtest LoadTests/.build-loadtest/release/loadtest \\
      --snapshot var/demo/snapshot --items var/demo/input/items.jsonl --users var/demo/input/users.txt \\
      --scenario LoadTests/scenarios/rank-demo.json
Run it under `flock /tmp/rankd-bench.lock` so no other benchmark shares the machine.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, free_port, load_average, percentile, stop_process, wait_for_port  # noqa: E402

TOKEN = "bench-live-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


def stubs(work):
    from grpc_tools import protoc

    out = work / "gen"
    out.mkdir()
    protos = ["ranking/v1/ranker.proto", "ranking/v1/admin.proto"]
    if protoc.main(["protoc", f"-I{ROOT / 'Protos'}", f"--python_out={out}", *protos]) != 0:
        raise SystemExit("protoc failed")
    for directory in [out, out / "ranking", out / "ranking" / "v1"]:
        (directory / "__init__.py").touch()
    sys.path.insert(0, str(out))
    from ranking.v1 import admin_pb2, ranker_pb2

    return admin_pb2, ranker_pb2


def batches(admin_pb2, item_ids, count, size=1000):
    """`count` serialised UpdateItemsRequests of `size` items each, cycling over the catalogue."""
    out = []
    position = 0
    for b in range(count):
        request = admin_pb2.UpdateItemsRequest()
        for j in range(size):
            item = request.items.add()
            item.item_id = item_ids[position % len(item_ids)]
            position += 1
            item.stock = admin_pb2.STOCK_OUT if (b + j) % 3 == 0 else admin_pb2.STOCK_IN
            item.price.value = 5 + (b * 7 + j) % 400
        out.append(request.SerializeToString())
    return out


class Updater:
    """Sends pre-serialised batches on `threads` threads, back to back or paced to `rate` items/s."""

    def __init__(self, channel, payloads, threads, rate=None):
        self.call = channel.unary_unary("/ranking.v1.SnapshotAdmin/UpdateItems")
        self.payloads = payloads
        self.threads = threads
        self.rate = rate
        self.stop = threading.Event()
        self.latencies = []
        self.items = 0
        self.errors = 0
        self.lock = threading.Lock()

    def run(self, index):
        period = None if self.rate is None else self.threads * 1000 / self.rate
        next_due = time.monotonic()
        b = index
        while not self.stop.is_set():
            if period is not None:
                next_due += period
            started = time.monotonic()
            try:
                self.call(self.payloads[b % len(self.payloads)], metadata=AUTH, timeout=30)
                with self.lock:
                    self.latencies.append(time.monotonic() - started)
                    self.items += 1000
            except Exception:  # noqa: BLE001 — counted, the run goes on
                with self.lock:
                    self.errors += 1
            b += self.threads
            if period is not None:
                delay = next_due - time.monotonic()
                if delay > 0:
                    self.stop.wait(delay)

    def __enter__(self):
        self.started = time.monotonic()
        self.workers = [threading.Thread(target=self.run, args=(i,)) for i in range(self.threads)]
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        for worker in self.workers:
            worker.join()
        self.elapsed = time.monotonic() - self.started

    def summary(self):
        values = sorted(self.latencies)
        return {"items_per_s": self.items / self.elapsed, "batches": len(values), "errors": self.errors,
                "batch_ms_p50": percentile(values, 0.5) * 1000, "batch_ms_p99": percentile(values, 0.99) * 1000}


def loadtest(args, port, report):
    subprocess.run([str(Path(args.loadtest).resolve()), "--target", f"127.0.0.1:{port}", "--rate", str(args.rate), "--duration",
                    f"{args.duration}s", "--warmup", "2s", "--scenario", str(Path(args.scenario).resolve()),
                    "--json", str(report), "--quiet"], check=True, cwd=Path(args.scenario).resolve().parent,
                   stdout=subprocess.DEVNULL)
    data = json.loads(report.read_text())
    latency = data["latency"]
    return latency["p99"], latency["p50"], data["achievedRate"], sum(latency.get("errors", {}).values())


def deletions(ranker_pb2, channel, users, count):
    """Per known user: ms from DeleteUser's acknowledgement to the first Rank response that is POPULAR,
    and how many Rank calls it took."""
    rank = channel.unary_unary("/ranking.v1.Ranker/Rank", request_serializer=ranker_pb2.RankRequest.SerializeToString,
                               response_deserializer=ranker_pb2.RankResponse.FromString)
    delete = channel.unary_unary("/ranking.v1.SnapshotAdmin/DeleteUser")
    from ranking.v1 import admin_pb2

    times, calls = [], []
    for user in users:
        if len(times) == count:
            break
        if rank(ranker_pb2.RankRequest(user_id=user, k=10), timeout=10).strategy != ranker_pb2.STRATEGY_PERSONALIZED:
            continue
        delete(admin_pb2.DeleteUserRequest(user_id=user).SerializeToString(), metadata=AUTH, timeout=10)
        acknowledged = time.monotonic()
        n = 0
        while True:
            n += 1
            if rank(ranker_pb2.RankRequest(user_id=user, k=10), timeout=10).strategy == ranker_pb2.STRATEGY_POPULAR:
                break
        times.append((time.monotonic() - acknowledged) * 1000)
        calls.append(n)
    values = sorted(times)
    return {"users": len(values), "ms_p50": percentile(values, 0.5), "ms_p99": percentile(values, 0.99),
            "ms_max": values[-1], "first_rank_already_unknown": sum(1 for n in calls if n == 1)}


def removals(ranker_pb2, admin_pb2, channel, count):
    """Per removal of the most popular item still served: ms from UpdateItems' acknowledgement to the
    first Rank response without it, and how many Rank calls it took."""
    rank = channel.unary_unary("/ranking.v1.Ranker/Rank", request_serializer=ranker_pb2.RankRequest.SerializeToString,
                               response_deserializer=ranker_pb2.RankResponse.FromString)
    update = channel.unary_unary("/ranking.v1.SnapshotAdmin/UpdateItems")
    request = ranker_pb2.RankRequest(user_id="cold-start-visitor", k=10)
    request.diversity.method = ranker_pb2.DIVERSITY_METHOD_NONE
    times, calls = [], []
    for _ in range(count):
        top = rank(request, timeout=10).items[0].item_id
        removal = admin_pb2.UpdateItemsRequest()
        removal.items.add(item_id=top, removed=True)
        update(removal.SerializeToString(), metadata=AUTH, timeout=10)
        acknowledged = time.monotonic()
        n = 0
        while True:
            n += 1
            if top not in [item.item_id for item in rank(request, timeout=10).items]:
                break
        times.append((time.monotonic() - acknowledged) * 1000)
        calls.append(n)
    values = sorted(times)
    return {"removals": len(values), "ms_p50": percentile(values, 0.5), "ms_p99": percentile(values, 0.99),
            "ms_max": values[-1], "first_rank_already_without": sum(1 for n in calls if n == 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rankd", required=True)
    parser.add_argument("--loadtest", required=True)
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--items", required=True, help="the snapshot's items.jsonl (for item ids)")
    parser.add_argument("--users", required=True, help="the snapshot's users.txt")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--rate", type=int, default=500, help="Rank calls per second (open loop)")
    parser.add_argument("--duration", type=int, default=15, help="seconds per loadtest run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--update-rate", type=int, default=50_000, help="items/s while Rank is measured")
    parser.add_argument("--throughput-threads", type=int, default=4)
    parser.add_argument("--throughput-seconds", type=int, default=10)
    parser.add_argument("--deletes", type=int, default=200)
    args = parser.parse_args()

    import grpc

    work = Path(tempfile.mkdtemp(prefix="bench-live-"))
    port = free_port()
    proc = None
    try:
        admin_pb2, ranker_pb2 = stubs(work)
        root = work / "root"
        root.mkdir()
        version = json.loads((Path(args.snapshot) / "manifest.json").read_text())["snapshotVersion"]
        shutil.copytree(args.snapshot, root / version)
        (work / "token").write_text(TOKEN)
        proc = subprocess.Popen([args.rankd, "--listen", f"127.0.0.1:{port}", "--snapshot-root", str(root),
                                 "--admin-token-file", str(work / "token"), "--log-level", "warning"])
        wait_for_port(port, proc)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        ranker = channel.unary_unary("/ranking.v1.Ranker/Rank")
        while True:
            try:
                ranker(ranker_pb2.RankRequest(user_id="x", k=1).SerializeToString(), timeout=10)
                break
            except grpc.RpcError:
                time.sleep(0.1)
        item_ids = [json.loads(line)["id"] for line in Path(args.items).read_text().splitlines()]
        payloads = batches(admin_pb2, item_ids, 64)
        print(f"load average at start: {load_average()}; snapshot {version}: {len(item_ids)} items")

        with Updater(channel, payloads, args.throughput_threads) as updater:
            time.sleep(args.throughput_seconds)
        throughput = updater.summary()
        print(f"UpdateItems throughput ({args.throughput_threads} clients, batches of 1000, "
              f"{args.throughput_seconds} s): {throughput['items_per_s']:.0f} items/s, "
              f"batch p50 {throughput['batch_ms_p50']:.1f} ms p99 {throughput['batch_ms_p99']:.1f} ms, "
              f"{throughput['errors']} errors")

        without, with_updates, rates = [], [], []
        for repeat in range(args.repeats):
            p99, p50, achieved, errors = loadtest(args, port, work / f"quiet-{repeat}.json")
            without.append(p99)
            print(f"  run {repeat + 1}: no updates   Rank p50 {p50} µs p99 {p99} µs at {achieved:.0f}/s, {errors} errors")
            with Updater(channel, payloads, 2, rate=args.update_rate) as updater:
                p99, p50, achieved, errors = loadtest(args, port, work / f"busy-{repeat}.json")
            with_updates.append(p99)
            rates.append(updater.summary()["items_per_s"])
            print(f"  run {repeat + 1}: with updates Rank p50 {p50} µs p99 {p99} µs at {achieved:.0f}/s, {errors} "
                  f"errors; updates {rates[-1]:.0f} items/s")
        ratio = statistics.median(with_updates) / statistics.median(without)
        print(f"Rank p99 median: {statistics.median(without)} µs without, {statistics.median(with_updates)} µs with "
              f"{statistics.median(rates):.0f} updates/s: ratio {ratio:.2f}")

        quiet = deletions(ranker_pb2, channel, Path(args.users).read_text().split()[1000:], args.deletes)
        print(f"DeleteUser ack → first unknown Rank (quiet): {quiet}")
        with Updater(channel, payloads, 2, rate=args.update_rate):
            busy = deletions(ranker_pb2, channel, Path(args.users).read_text().split()[5000:], args.deletes)
        print(f"DeleteUser ack → first unknown Rank (updates streaming): {busy}")
        print(f"UpdateItems removal ack → first Rank without the item: {removals(ranker_pb2, admin_pb2, channel, 100)}")
        print(f"load average at end: {load_average()}")
        channel.close()
    finally:
        if proc:
            stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
