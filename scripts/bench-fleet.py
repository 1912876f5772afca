#!/usr/bin/env python3
"""Rank through nginx (issue 20): the cost of the balancer on one machine. Starts 3 release rankd
replicas on SNAPSHOT and nginx running deploy/nginx/rankd.conf (the shipped file, only the replica
lines, listen port and log path replaced: Tests/Fleet/conftest.py's NginxProcess) with 1, 2 and 3
of them as upstreams, and drives each target with h2load sending one gRPC-framed RankRequest (as
scripts/bench-rank.py does):

  -c1 -m1       one call at a time: the latency the balancer adds to a lone call;
  -cC -mS       saturation (--saturate, default 4x8): the maximum throughput.

Targets are interleaved within each repeat (direct to one replica, then nginx with 1, 2, 3
upstreams); the table has medians over --repeats, the ratio of each nginx row's req/s to the direct
row's, the p50/p99 it adds, and the CPU µs nginx and the replicas spent per call. The request carries
no x-user-id, so nginx spreads calls by request id over the upstreams. All processes share this
machine's cores: the rows measure the balancer's overhead, not scaling.

    make release && .venv/bin/python scripts/bench-fleet.py --snapshot var/demo/snapshot
"""

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import (cpu_seconds, free_port, load_average, percentile, rank_request_body, stop_process,
                      wait_for_port, wait_until_ok)

ROOT = Path(__file__).resolve().parents[1]
PATH = "/ranking.v1.Ranker/Rank"


def fleet_support():
    spec = importlib.util.spec_from_file_location("fleet_support", ROOT / "Tests" / "Fleet" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def h2load_count(port, clients, streams, requests, body, workdir):
    """One h2load run of REQUESTS calls (-n), after a warm-up run of a tenth of them. benchlib.h2load's duration mode (-D) starts no request at all through nginx 1.22
    (h2load 1.52), so this counts requests and takes the rate from h2load's elapsed time."""
    log_path = Path(workdir) / "h2load.log"

    def command(count):
        return ["h2load", "-c", str(clients), "-m", str(streams), "-n", str(count), "-H", "content-type: application/grpc",
                "-H", "te: trailers", "-d", body, "--log-file", str(log_path), f"http://127.0.0.1:{port}{PATH}"]

    subprocess.run(command(max(requests // 10, clients * streams)), capture_output=True, check=True)  # warm-up
    log_path.unlink()  # h2load appends to an existing log: time this run's calls only
    out = subprocess.run(command(requests), capture_output=True, text=True, check=True).stdout
    seconds = succeeded = failed = 0
    for line in out.splitlines():
        if line.startswith("finished in"):
            value = line.split()[2].rstrip(",")
            seconds = float(value[:-2]) / 1000 if value.endswith("ms") else float(value[:-1])
        if line.startswith("requests:"):
            fields = dict((part.split()[1], int(part.split()[0])) for part in line.split(":", 1)[1].split(","))
            succeeded, failed = fields.get("succeeded", 0), fields.get("failed", 0) + fields.get("errored", 0)
            if failed:
                print(f"# {port}: {line}", file=sys.stderr)
    latencies = sorted(int(parts[2]) for parts in (line.split() for line in log_path.read_text().splitlines())
                       if len(parts) >= 3 and parts[1] == "200")
    return {"requests": succeeded, "failed": failed, "rps": succeeded / seconds if seconds else 0.0,
            "p50_us": percentile(latencies, 0.50), "p99_us": percentile(latencies, 0.99)}


def process_tree_cpu(pid):
    """CPU seconds of pid and its direct children (nginx: the master and its workers)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                total += cpu_seconds(int(child))
            except FileNotFoundError:
                pass
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rankd", default=str(ROOT / ".build/release/rankd"))
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--user", default=None)
    parser.add_argument("--requests", type=int, default=20000, help="calls per run at -c1 -m1 (x3 at saturation)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--saturate", default="4x8", help="CLIENTSxSTREAMS for the maximum-throughput phase")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write every run here")
    args = parser.parse_args()
    manifest = json.loads((Path(args.snapshot) / "manifest.json").read_text())
    user = args.user or manifest.get("sampleUserId") or "u_0"
    sat_clients, sat_streams = (int(x) for x in args.saturate.split("x"))
    support = fleet_support()

    with tempfile.TemporaryDirectory() as workdir:
        body = rank_request_body(workdir, user, 20, 300, "mmr", (), (), False, None)
        replicas, nginxes = [], {}
        try:
            for _ in range(3):
                port = free_port()
                proc = subprocess.Popen([args.rankd, "--listen", f"127.0.0.1:{port}", "--snapshot", args.snapshot,
                                         "--log-level", "warning"])
                replicas.append((port, proc))
                wait_for_port(port, proc)
                wait_until_ok(port, PATH, body)
            for count in (1, 2, 3):
                nginx = support.NginxProcess(Path(workdir) / f"nginx-{count}",
                                             [f"127.0.0.1:{port}" for port, _ in replicas[:count]],
                                             worker_processes=args.nginx_workers).start()
                nginxes[count] = nginx
                wait_until_ok(nginx.port, PATH, body)
            targets = [("direct", replicas[0][0], None)] + [
                (f"nginx, {n} replica{'s' if n > 1 else ''}", nginxes[n].port, nginxes[n]) for n in (1, 2, 3)]
            phases = [("-c1 -m1", 1, 1, args.requests),
                      (f"-c{sat_clients} -m{sat_streams}", sat_clients, sat_streams, 3 * args.requests)]
            results = {}
            print(f"# load average before: {load_average()}", file=sys.stderr)
            for _ in range(args.repeats):
                for phase, clients, streams, requests in phases:
                    for name, port, nginx in targets:
                        rankd_before = sum(cpu_seconds(proc.pid) for _, proc in replicas)
                        nginx_before = process_tree_cpu(nginx.proc.pid) if nginx else 0.0
                        run = h2load_count(port, clients, streams, requests, body, workdir)
                        calls = max(run["requests"], 1)
                        run["rankd_cpu_us"] = (sum(cpu_seconds(p.pid) for _, p in replicas) - rankd_before) * 1e6 / calls
                        run["nginx_cpu_us"] = ((process_tree_cpu(nginx.proc.pid) - nginx_before) * 1e6 / calls
                                               if nginx else 0.0)
                        results.setdefault((phase, name), []).append(run)
                        print(f"# {phase} {name}: {run['rps']:.0f} req/s p50 {run['p50_us']} p99 {run['p99_us']} us "
                              f"failed {run['failed']} nginx {run['nginx_cpu_us']:.0f} us/call", file=sys.stderr,
                              flush=True)
            print(f"# load average after: {load_average()}", file=sys.stderr)
            if args.json:
                Path(args.json).write_text(json.dumps({f"{p} | {n}": r for (p, n), r in results.items()}, indent=1))

            print(f"\nRank k=20 pool=300 mmr user={user}, {args.repeats} repeats of {args.requests} / {3 * args.requests} calls, medians; "
                  f"nginx worker_processes {args.nginx_workers}\n")
            print("| h2load | target | req/s | vs direct | p50 µs | p99 µs | added p50 µs | added p99 µs | failed "
                  "| nginx CPU µs/call | rankd CPU µs/call |")
            print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for phase, *_ in phases:
                direct = results[(phase, "direct")]
                med = lambda runs, key: statistics.median(r[key] for r in runs)
                for name, _, _ in targets:
                    runs = results[(phase, name)]
                    ratio = med(runs, "rps") / med(direct, "rps")
                    added50 = med(runs, "p50_us") - med(direct, "p50_us")
                    added99 = med(runs, "p99_us") - med(direct, "p99_us")
                    print(f"| {phase} | {name} | {med(runs, 'rps'):,.0f} | {ratio:.2f} | {med(runs, 'p50_us'):,.0f} | "
                          f"{med(runs, 'p99_us'):,.0f} | {'' if name == 'direct' else f'{added50:+,.0f}'} | "
                          f"{'' if name == 'direct' else f'{added99:+,.0f}'} | {sum(r['failed'] for r in runs)} | "
                          f"{med(runs, 'nginx_cpu_us'):.0f} | {med(runs, 'rankd_cpu_us'):.0f} |")
        finally:
            for nginx in nginxes.values():
                nginx.stop()
            for _, proc in replicas:
                stop_process(proc)


if __name__ == "__main__":
    main()
