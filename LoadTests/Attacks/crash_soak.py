"""Crash soak: SIGKILL rankd at random moments while publishes, activations, rollbacks and Rank
traffic run, then restart it and check what a crash may never leave behind.

  python crash_soak.py --rankd BIN --rankctl BIN [--kills 200] [--kill-rate 0.8] [--seed 1]

rankd serves a snapshot root (--snapshot-root) with retention off. Each round starts rankd, runs
three clients against it (a publisher uploading a new version, half of them with --activate; an
operator activating and rolling back acknowledged versions; a Rank client) and kills rankd with
SIGKILL after an exponentially distributed time (rate --kill-rate per second, as Qdrant's crasher
does: any moment of any operation is a candidate). After each restart:

  1. rankd comes up serving, on the version `.active` names, and Rank answers from that version;
  2. that version passes `rankctl verify` (checksums, structure, graph);
  3. every version directory in the root is complete (has its manifest: nothing half-written is
     visible), and every publish rankd acknowledged (rankctl exited 0) is present and complete.

Any violation is a bad state; the run fails if there is one. A kill cannot test fsync: the page cache
survives SIGKILL, so this checks ordering and atomicity (rename-last, manifest-last), not power loss.
Versions are copies of one small synthetic snapshot that differ in their manifest's version, so a
publish is cheap and hundreds fit in a few MB.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_request(user):
    user = user.encode()
    return bytes([0x0A, len(user)]) + user + bytes([0x10, 5])


def response_version(payload):
    """snapshot_version (field 2 of RankResponse) from the raw response bytes."""
    i = 0
    while i < len(payload):
        key = payload[i]
        i += 1
        field, wire = key >> 3, key & 7
        if wire == 0:
            while payload[i] & 0x80:
                i += 1
            i += 1
        elif wire == 2:
            length, shift = 0, 0
            while True:
                b = payload[i]
                i += 1
                length |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            if field == 2:
                return payload[i:i + length].decode()
            i += length
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            return None
    return None


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = Path(tempfile.mkdtemp(prefix="rankd-soak-"))
        self.root = self.work / "root"
        self.token = self.work / "token"
        self.token.write_text("soak-token\n")
        self.env = dict(os.environ, RANKD_ADMIN_TOKEN="soak-token")
        self.acked = []  # versions whose publish rankd acknowledged
        self.next_version = 0
        self.bad = []
        self.stats = {"publishes_acked": 0, "publish_attempts": 0, "activations_acked": 0, "rollbacks_acked": 0,
                      "ranks_ok": 0, "ranks_failed": 0}

    def run(self, command, timeout=60):
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=self.env)

    def prepare(self):
        # Private copies of the binaries: a rebuild while the soak runs must not swap them mid-run.
        for name in ("rankd", "rankctl"):
            copy = self.work / name
            shutil.copy2(getattr(self.args, name), copy)
            setattr(self.args, name, str(copy))
        base = self.work / "base"
        self.run([self.args.rankctl, "synth", "--out", str(self.work / "in"), "--snapshot", str(base),
                  "--users", "200", "--items", "1000", "--dim", "16", "--categories", "5", "--quiet"], timeout=600)
        self.base = base
        self.versions = self.work / "versions"
        self.versions.mkdir()
        # The root starts with one version so rankd serves from the first round.
        first = self.make_version()
        self.root.mkdir()
        shutil.copytree(first, self.root / first.name)
        self.acked.append(first.name)

    def make_version(self):
        name = f"v{self.next_version:05d}"
        self.next_version += 1
        target = self.versions / name
        shutil.copytree(self.base, target)
        manifest = json.loads((target / "manifest.json").read_text())
        manifest["snapshotVersion"] = name
        (target / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return target

    def start(self):
        self.port = free_port()
        self.log = open(self.work / "rankd.log", "ab")
        self.proc = subprocess.Popen(
            [self.args.rankd, "--listen", f"127.0.0.1:{self.port}", "--snapshot-root", str(self.root),
             "--admin-token-file", str(self.token), "--retain", "1000000", "--log-level", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    # ---- traffic while rankd runs --------------------------------------------------------------

    def publisher(self, stop):
        while not stop.is_set():
            version = self.make_version()
            activate = self.rng.random() < 0.5
            self.stats["publish_attempts"] += 1
            command = [self.args.rankctl, "publish", str(version), "--server", f"127.0.0.1:{self.port}", "--quiet"]
            result = self.run(command + (["--activate"] if activate else []), timeout=60)
            if result.returncode == 0:
                self.acked.append(version.name)
                self.stats["publishes_acked"] += 1
            shutil.rmtree(version, ignore_errors=True)

    def operator(self, stop):
        while not stop.wait(self.rng.uniform(0.05, 0.3)):
            server = ["--server", f"127.0.0.1:{self.port}"]
            if self.rng.random() < 0.7 and self.acked:
                version = self.rng.choice(self.acked[-20:])
                if self.run([self.args.rankctl, "activate", version, *server]).returncode == 0:
                    self.stats["activations_acked"] += 1
            elif self.run([self.args.rankctl, "rollback", *server]).returncode == 0:
                self.stats["rollbacks_acked"] += 1

    def ranker(self, stop):
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        rank = channel.unary_unary("/ranking.v1.Ranker/Rank", request_serializer=None, response_deserializer=None)
        i = 0
        while not stop.is_set():
            try:
                rank(rank_request(f"u_{i % 200}"), timeout=2)
                self.stats["ranks_ok"] += 1
            except grpc.RpcError:
                self.stats["ranks_failed"] += 1
                time.sleep(0.01)
            i += 1
        channel.close()

    # ---- checks after a restart ----------------------------------------------------------------

    def check(self, round_number):
        problems = []
        if not self.start():
            return [f"rankd did not come back: {(self.work / 'rankd.log').read_text()[-2000:]}"]
        try:
            active_file = self.root / ".active"
            active = json.loads(active_file.read_text())["version"] if active_file.exists() else None
            channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
            rank = channel.unary_unary("/ranking.v1.Ranker/Rank", request_serializer=None,
                                       response_deserializer=None)
            served = None
            for _ in range(100):
                try:
                    served = response_version(rank(rank_request("u_1"), timeout=5))
                    break
                except grpc.RpcError:
                    time.sleep(0.05)
            channel.close()
            if served is None:
                problems.append("rankd serves no snapshot after restart")
            elif active is not None and served != active:
                problems.append(f"serves {served} but .active names {active}")
            if served:
                verify = self.run([self.args.rankctl, "verify", str(self.root / served)])
                if verify.returncode != 0:
                    problems.append(f"active version {served} fails verify: {verify.stdout}{verify.stderr}")
            for entry in self.root.iterdir():
                if entry.name.startswith("."):
                    continue
                if not (entry / "manifest.json").exists():
                    problems.append(f"half-written version visible: {entry.name} has no manifest")
            for version in self.acked:
                if not (self.root / version / "manifest.json").exists():
                    problems.append(f"acknowledged publish {version} is missing")
        finally:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
        return [f"round {round_number}: {p}" for p in problems]

    def soak(self):
        self.prepare()
        started = time.monotonic()
        for round_number in range(1, self.args.kills + 1):
            if not self.start():
                self.bad.append(f"round {round_number}: rankd did not start")
                break
            stop = threading.Event()
            threads = [threading.Thread(target=t, args=(stop,), daemon=True)
                       for t in (self.publisher, self.operator, self.ranker)]
            for thread in threads:
                thread.start()
            time.sleep(min(self.rng.expovariate(self.args.kill_rate), 5.0))
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.log.close()
            stop.set()
            for thread in threads:
                thread.join(timeout=70)
            self.bad += self.check(round_number)
            if round_number % 20 == 0 or self.bad:
                print(f"kills {round_number}/{self.args.kills}, bad states {len(self.bad)}, "
                      f"{time.monotonic() - started:.0f} s, {self.stats}", flush=True)
            if self.bad and not self.args.keep_going:
                break
        # A last full pass: every acknowledged version verifies.
        for version in self.acked:
            verify = self.run([self.args.rankctl, "verify", str(self.root / version)])
            if verify.returncode != 0:
                self.bad.append(f"final: acknowledged version {version} fails verify")
        summary = {"kills": round_number, "bad_states": len(self.bad), "seconds": round(time.monotonic() - started),
                   "versions_acknowledged": len(self.acked), **self.stats}
        print(json.dumps(summary))
        for problem in self.bad[:20]:
            print("BAD:", problem)
        if self.bad:
            print(f"work directory kept: {self.work}")
            return 1
        shutil.rmtree(self.work, ignore_errors=True)
        return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rankd", required=True)
    parser.add_argument("--rankctl", required=True)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--kill-rate", type=float, default=0.8, help="kill probability per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-going", action="store_true", help="continue after a bad state")
    args = parser.parse_args()
    sys.exit(Soak(args).soak())


if __name__ == "__main__":
    main()
