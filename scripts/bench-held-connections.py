"""Rank latency while many idle client connections are held open (what a server behind thousands of
edge clients, each keeping a connection, looks like), for one or more rankd builds side by side.

For each round and each variant: a quiet run of the bystander (LoadTests/Attacks/bystander.py: one
grpcio channel, Rank calls on an open schedule), then `--held` raw HTTP/2 connections (preface and
SETTINGS, then nothing, from 125 loopback addresses so the per-address limits do not refuse them)
are opened and kept, and the bystander runs again; then they are closed. Rounds alternate the
variants; the report is the median p50/p99 per variant and state, and rankd's CPU.

  python scripts/bench-held-connections.py --rankctl BIN LABEL=RANKD_BIN [LABEL=RANKD_BIN ...]
      [--held 8000] [--rounds 3] [--seconds 8] [--rate 500]
"""

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from benchlib import cpu_seconds, free_port, running_rankd

HERE = Path(__file__).resolve().parent
ATTACKS = HERE.parent / "LoadTests" / "Attacks"
sys.path.insert(0, str(ATTACKS))
import h2raw  # noqa: E402


def bystander(port, seconds, rate):
    out = subprocess.run([sys.executable, str(ATTACKS / "bystander.py"), "--target", f"127.0.0.1:{port}",
                          "--seconds", str(seconds), "--rate", str(rate)],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def hold(port, count):
    conns = []
    for i in range(count):
        h2raw.SOURCE_ADDRESS = f"127.0.1.{1 + i % 125}"
        conns.append(h2raw.Connection(port, timeout=10))
    return conns


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", metavar="LABEL=RANKD_BIN")
    parser.add_argument("--rankctl", required=True)
    parser.add_argument("--held", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    work = Path(tempfile.mkdtemp(prefix="rankd-held-"))
    subprocess.run([args.rankctl, "synth", "--out", str(work / "in"), "--snapshot", str(work / "snap"),
                    "--users", "500", "--items", "3000", "--dim", "32", "--categories", "10", "--quiet"],
                   check=True, capture_output=True, timeout=600)
    servers = {}
    results = {}
    with contextlib.ExitStack() as stack:  # stops every rankd started, whatever happens
        for spec in args.variants:
            label, _, binary = spec.partition("=")
            port = free_port()
            proc = stack.enter_context(
                running_rankd(binary, port, "--snapshot", str(work / "snap"), "--idle-timeout", "3600"))
            servers[label] = (port, proc)
            results[label] = {"quiet": [], "held": [], "cpu_quiet": [], "cpu_held": []}
        for round_ in range(args.rounds):
            for label, (port, proc) in servers.items():
                cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
                quiet = bystander(port, args.seconds, args.rate)
                results[label]["cpu_quiet"].append((cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - wall0))
                conns = hold(port, args.held)
                time.sleep(1)
                cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
                held = bystander(port, args.seconds, args.rate)
                results[label]["cpu_held"].append((cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - wall0))
                for conn in conns:
                    conn.close()
                results[label]["quiet"].append(quiet)
                results[label]["held"].append(held)
                print(f"round {round_ + 1} [{label}] quiet p50 {quiet['p50_ms']:.3f} p99 {quiet['p99_ms']:.3f} ms; "
                      f"{args.held} held: p50 {held['p50_ms']:.3f} p99 {held['p99_ms']:.3f} ms", flush=True)
                time.sleep(2)
    print(f"\nmedians over {args.rounds} rounds, {args.rate:g} Rank calls/s, {args.held} idle connections held:")
    for label, r in results.items():
        q50, q99 = median([x["p50_ms"] for x in r["quiet"]]), median([x["p99_ms"] for x in r["quiet"]])
        h50, h99 = median([x["p50_ms"] for x in r["held"]]), median([x["p99_ms"] for x in r["held"]])
        print(f"[{label}] quiet p50 {q50:.3f} p99 {q99:.3f} ms (rankd {median(r['cpu_quiet']):.3f} cores) | "
              f"held p50 {h50:.3f} p99 {h99:.3f} ms (rankd {median(r['cpu_held']):.3f} cores) | "
              f"p99 held/quiet {h99 / q99:.2f}x")


if __name__ == "__main__":
    main()
