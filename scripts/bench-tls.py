#!/usr/bin/env python3
"""TLS cost benchmark: the same Rank request over TLS and over cleartext HTTP/2, same run, same
snapshot, interleaved and repeated; prints markdown tables of medians.

    .venv/bin/python scripts/bench-tls.py --rankd .build-loadtest-root/release/rankd \
        --snapshot var/demo/snapshot [--loadtest LoadTests/.build-loadtest/release/loadtest] \
        [--repeats 5] [--seconds 8] [--handshakes 1000]

Two rankd processes serve the snapshot, one in cleartext and one with TLS (a P-256 certificate from
scripts/test-pki.sh); only one is loaded at a time. Per repeat and per server:

- h2load `-c8 -m16` (and `-c1 -m1`) with the Rank request of bench-rank.py (user u_0, k 20, pool
  300, MMR): req/s, p50/p99 from `--log-file`, server CPU µs per call from /proc;
- with --loadtest, the load harness closed loop over 8 connections × 16 calls (its --tls flags);
- handshakes: N sequential connections, each opened, set up (TCP, or TCP + TLS 1.3 with ALPN h2,
  or that with a client certificate for mutual TLS) and read until the server's first HTTP/2
  frame: client wall time per connection and server CPU per connection.

Throughput cost = 1 - TLS req/s ÷ cleartext req/s, the median of the per-repeat pairs."""

import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import cpu_seconds, free_port, load_average, rank_request_body, wait_for_port, wait_until_ok

ROOT = Path(__file__).resolve().parents[1]
PATH = "/ranking.v1.Ranker/Rank"


def h2load(url, clients, streams, seconds, body, warmup=1):
    """One h2load run; returns succeeded requests, failures, rps, p50/p99 µs (from --log-file)."""
    with tempfile.NamedTemporaryFile(suffix=".log", delete=False) as log:
        log_path = log.name
    cmd = ["h2load", "-c", str(clients), "-m", str(streams), "-D", str(seconds), "--warm-up-time", str(warmup),
           "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", body, "--log-file", log_path, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    latencies = sorted(int(parts[2]) for parts in (line.split() for line in open(log_path)) if len(parts) >= 3
                       and parts[1] == "200")
    os.unlink(log_path)
    succeeded = failed = 0
    for line in out.splitlines():
        if line.startswith("requests:"):
            fields = dict((part.split()[1], int(part.split()[0])) for part in line.split(":", 1)[1].split(","))
            succeeded, failed = fields.get("succeeded", 0), fields.get("failed", 0) + fields.get("errored", 0)
    pick = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else float("nan")
    return {"requests": succeeded, "failed": failed, "rps": succeeded / seconds, "p50_us": pick(0.5),
            "p99_us": pick(0.99)}


def loadtest(binary, port, tls_args, seconds, scenario, workdir):
    """The harness's closed loop: 8 connections, 128 calls in flight (h2load's -c8 -m16)."""
    report = Path(workdir) / "loadtest.json"
    subprocess.run([binary, "--target", f"127.0.0.1:{port}", "--concurrency", "128", "--connections", "8",
                    "--duration", f"{seconds}s", "--warmup", "1s", "--quiet", "--json", str(report),
                    "--scenario", scenario, *tls_args], check=True, stdout=subprocess.DEVNULL)
    data = json.loads(report.read_text())
    latency = data["latency"]
    return {"requests": int(data["achievedRate"] * seconds), "failed": sum(latency["errors"].values()),
            "rps": data["achievedRate"], "p50_us": latency["p50"], "p99_us": latency["p99"]}


def handshakes(port, count, context):
    """`count` sequential connections until the server's first HTTP/2 frame; returns the median
    client wall time per connection in µs."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is None:
                raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                first = raw.recv(9)
            else:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                    first = tls.recv(9)
            assert len(first) >= 4 and first[3] == 0x04, f"expected SETTINGS, got {first!r}"
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rankd", default=str(ROOT / ".build-loadtest-root/release/rankd"))
    parser.add_argument("--snapshot", default=str(ROOT / "var/demo/snapshot"))
    parser.add_argument("--loadtest", help="also drive the load harness (its --tls flags)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--handshakes", type=int, default=1000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rankd-bench-tls-"))
    pki = work / "pki"
    subprocess.run([str(ROOT / "scripts/test-pki.sh"), str(pki)], check=True, capture_output=True)
    body = rank_request_body(work, "u_0", k=20, pool=300, method="mmr")
    users = work / "users.txt"
    users.write_text("u_0\n")
    scenario = work / "rank.json"
    scenario.write_text(json.dumps({"name": "rank-one-request", "seed": 1, "poolSize": 1, "requests": [
        {"weight": 1, "rank": {"usersFile": str(users), "k": 20, "candidatePool": 300,
                               "diversity": {"method": "mmr"}}}]}))

    tls_flags = ["--tls-cert", str(pki / "server.crt"), "--tls-key", str(pki / "server.key")]
    servers = {}
    for name, flags in [("plaintext", []), ("tls", tls_flags),
                        ("mutual-tls", tls_flags + ["--tls-client-ca", str(pki / "ca.crt")])]:
        port = free_port()
        proc = subprocess.Popen([args.rankd, "--listen", f"127.0.0.1:{port}", "--snapshot", args.snapshot,
                                 "--log-level", "warning", *flags])
        servers[name] = (port, proc)
    try:
        for name, (port, proc) in servers.items():
            wait_for_port(port, proc)
        wait_until_ok(servers["plaintext"][0], PATH, body)
        time.sleep(1.0)  # the TLS servers load the same snapshot; give them as long
        client = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        client.set_alpn_protocols(["h2"])
        mutual = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        mutual.set_alpn_protocols(["h2"])
        mutual.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
        harness_tls = ["--ca", str(pki / "ca.crt")]
        print(f"# load average before: {load_average()}", file=sys.stderr)

        results = {}
        for repeat in range(args.repeats):
            for name in ["plaintext", "tls"] if repeat % 2 == 0 else ["tls", "plaintext"]:
                port, proc = servers[name]
                url = f"{'https' if name == 'tls' else 'http'}://127.0.0.1:{port}{PATH}"
                runs = [(f"h2load -c{c} -m{m}", lambda c=c, m=m: h2load(url, c, m, args.seconds, body))
                        for c, m in [(8, 16), (1, 1)]]
                if args.loadtest:
                    runs.append(("loadtest 8 conn × 16", lambda: loadtest(
                        args.loadtest, port, harness_tls if name == "tls" else [], args.seconds, str(scenario),
                        work)))
                for label, run in runs:
                    before = cpu_seconds(proc.pid)
                    result = run()
                    result["cpu_us"] = (cpu_seconds(proc.pid) - before) * 1e6 / max(result["requests"], 1)
                    results.setdefault((label, name), []).append(result)
                    print(f"# repeat {repeat + 1} {name} {label}: {result['rps']:,.0f} req/s p50 {result['p50_us']} "
                          f"p99 {result['p99_us']} µs, server CPU {result['cpu_us']:.1f} µs/call, "
                          f"failed {result['failed']}", file=sys.stderr, flush=True)
            for name, context in [("plaintext", None), ("tls", client), ("mutual-tls", mutual)]:
                port, proc = servers[name]
                before = cpu_seconds(proc.pid)
                wall = handshakes(port, args.handshakes, context)
                cpu = (cpu_seconds(proc.pid) - before) * 1e6 / args.handshakes
                results.setdefault(("connections", name), []).append({"wall_us": wall, "cpu_us": cpu})
                print(f"# repeat {repeat + 1} {name} connection setup: {wall:.0f} µs client wall, "
                      f"{cpu:.0f} µs server CPU", file=sys.stderr, flush=True)
        print(f"# load average after: {load_average()}", file=sys.stderr)

        med = lambda runs, key: statistics.median(r[key] for r in runs)
        print("| load | transport | req/s | p50 µs | p99 µs | server CPU µs/call | failed |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for label in dict.fromkeys(label for label, name in results if label != "connections"):
            for name in ["plaintext", "tls"]:
                runs = results[(label, name)]
                print(f"| {label} | {name} | {med(runs, 'rps'):,.0f} | {med(runs, 'p50_us'):,.0f} | "
                      f"{med(runs, 'p99_us'):,.0f} | {med(runs, 'cpu_us'):.1f} | {sum(r['failed'] for r in runs)} |")
        print()
        for label in dict.fromkeys(label for label, name in results if label != "connections"):
            costs = [1 - t["rps"] / p["rps"] for p, t in zip(results[(label, "plaintext")], results[(label, "tls")])]
            p99 = [t["p99_us"] / p["p99_us"] for p, t in zip(results[(label, "plaintext")], results[(label, "tls")])]
            print(f"{label}: TLS throughput cost {statistics.median(costs):+.1%} (per repeat: "
                  f"{', '.join(f'{c:+.1%}' for c in costs)}); p99 TLS/plaintext {statistics.median(p99):.2f}x")
        print()
        print("| connection set-up (until the server's SETTINGS) | client wall µs | server CPU µs |")
        print("|---|---:|---:|")
        for name in ["plaintext", "tls", "mutual-tls"]:
            runs = results[("connections", name)]
            print(f"| {name} | {med(runs, 'wall_us'):,.0f} | {med(runs, 'cpu_us'):,.0f} |")
    finally:
        for port, proc in servers.values():
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
