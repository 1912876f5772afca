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

With --live the traffic is live updates instead (the write-ahead log of issue 16): two writers send
UpdateItems batches concurrently (so group commits happen), each batch removing 2-6 items no earlier
batch touched; a third deletes users, one fresh user per DeleteUser; a Rank client runs beside them.
After each restart, read back through Rank (pins report "item removed"; a deleted user is ranked as
unknown):

  1. every item of every acknowledged batch is removed, and every deleted user acknowledged in the
     round just killed (and a sample of earlier ones) is ranked as unknown;
  2. every batch that was sent is applied whole or not at all (a batch cut by the kill may be there
     or not, never in part);
  3. items and users no call named are untouched (a sample).
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


def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def field(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def fields(payload):
    """(field, value) pairs of a protobuf message: ints for varints, bytes for length-delimited."""
    i, out = 0, []
    while i < len(payload):
        key, i = read_varint(payload, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(payload, i)
        elif wire == 2:
            length, i = read_varint(payload, i)
            value, i = payload[i:i + length], i + length
        elif wire == 5:
            value, i = payload[i:i + 4], i + 4
        elif wire == 1:
            value, i = payload[i:i + 8], i + 8
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, value))
    return out


def read_varint(payload, i):
    value, shift = 0, 0
    while True:
        b = payload[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


STRATEGY_POPULAR = 4


class LiveTraffic:
    """UpdateItems / DeleteUser traffic and the read-back checks of --live (see the module doc)."""

    def __init__(self, soak, items, users):
        self.soak, self.items, self.users = soak, items, users
        self.lock = threading.Lock()
        self.next_item = 0
        self.next_user = 0
        self.batches = []  # (items, acknowledged) of every batch sent
        self.deleted = []  # (user, acknowledged, round) of every DeleteUser sent
        self.exhausted = False
        self.metadata = (("authorization", "Bearer soak-token"),)

    def channel(self):
        return grpc.insecure_channel(f"127.0.0.1:{self.soak.port}")

    def updater(self, stop):
        channel = self.channel()
        update = channel.unary_unary("/ranking.v1.SnapshotAdmin/UpdateItems", request_serializer=None,
                                     response_deserializer=None)
        while not stop.is_set():
            with self.lock:
                size = self.soak.rng.randint(2, 6)
                if self.next_item + size > self.items:
                    self.exhausted = True
                    break
                ids = [f"sku-{n}" for n in range(self.next_item, self.next_item + size)]
                self.next_item += size
                batch = [ids, False, self.soak.round]
                self.batches.append(batch)
            request = b"".join(field(2, field(1, i.encode()) + field_varint(6, 1)) for i in ids)
            try:
                response = dict(fields(update(request, timeout=5, metadata=self.metadata)))
                if response.get(1) == len(ids):
                    batch[1] = True
                    self.soak.stats["update_batches_acked"] += 1
                else:
                    self.soak.stats["update_batches_unexpected"] = self.soak.stats.get("update_batches_unexpected", 0) + 1
            except grpc.RpcError as error:
                key = f"update_{error.code().name.lower()}"
                self.soak.stats[key] = self.soak.stats.get(key, 0) + 1
            # Paced so that 200 rounds fit in the item pool; two writers still often overlap (group commits).
            stop.wait(self.soak.rng.uniform(0.01, 0.06))
        channel.close()

    def deleter(self, stop):
        channel = self.channel()
        delete = channel.unary_unary("/ranking.v1.SnapshotAdmin/DeleteUser", request_serializer=None,
                                     response_deserializer=None)
        while not stop.is_set():
            with self.lock:
                if self.next_user >= self.users // 2:  # the upper half stays for the "untouched" sample
                    break
                user = f"u_{self.next_user}"
                self.next_user += 1
                entry = [user, False, self.soak.round]
                self.deleted.append(entry)
            try:
                delete(field(1, user.encode()), timeout=5, metadata=self.metadata)
                entry[1] = True
                self.soak.stats["deletions_acked"] += 1
            except grpc.RpcError:
                pass
            stop.wait(self.soak.rng.uniform(0.02, 0.08))
        channel.close()

    def removed(self, rank, ids):
        """The subset of `ids` that rankd reports removed (pins dropped with "item removed")."""
        out = set()
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            request = (field_varint(2, len(chunk)) + field_varint(4, max(300, len(chunk)))
                       + b"".join(field(8, field(1, i.encode()) + field_varint(2, n)) for n, i in enumerate(chunk)))
            for number, value in fields(rank(request, timeout=30)):
                if number == 9:
                    pin = dict(fields(value))
                    if pin.get(3) == b"item removed":
                        out.add(pin[1].decode())
        return out

    def strategy(self, rank, user):
        response = dict(fields(rank(field(1, user.encode()) + field_varint(2, 5), timeout=10)))
        return response.get(3, 0)

    def check(self, rank, round_number):
        """Every batch of the last three rounds and 300 older ones; all of them every 25 rounds and at
        the end (a full read-back costs one 1000-pin Rank call per 1000 items)."""
        problems = []
        full = round_number % 25 == 0 or round_number == self.soak.args.kills
        recent = [b for b in self.batches if b[2] >= round_number - 2]
        older = [b for b in self.batches if b[2] < round_number - 2]
        batches = self.batches if full else recent + self.soak.rng.sample(older, min(300, len(older)))
        sent = [i for ids, _, _ in batches for i in ids]
        untouched = [f"sku-{n}" for n in range(self.next_item, min(self.items, self.next_item + 50))]
        removed = self.removed(rank, sent + untouched)
        for ids, acked, _ in batches:
            count = sum(1 for i in ids if i in removed)
            if acked and count != len(ids):
                problems.append(f"acknowledged batch {ids[0]}..{ids[-1]}: {count} of {len(ids)} items removed")
            elif 0 < count < len(ids):
                problems.append(f"batch {ids[0]}..{ids[-1]} half-applied: {count} of {len(ids)} items removed")
        for i in untouched:
            if i in removed:
                problems.append(f"{i} removed but no batch named it")
        recent = [d for d in self.deleted if d[1] and d[2] == round_number]
        older = [d for d in self.deleted if d[1] and d[2] != round_number]
        sample = recent + self.soak.rng.sample(older, min(20, len(older)))
        for user, _, _ in sample:
            if self.strategy(rank, user) != STRATEGY_POPULAR:
                problems.append(f"acknowledged deletion of {user} not in effect")
        for n in self.soak.rng.sample(range(self.users // 2, self.users), 5):
            if self.strategy(rank, f"u_{n}") == STRATEGY_POPULAR:
                problems.append(f"u_{n} ranked as unknown but never deleted")
        self.soak.stats["full_read_backs"] = self.soak.stats.get("full_read_backs", 0) + full
        return problems


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
        self.round = 0
        self.live = None
        if args.live:
            self.stats = {"update_batches_acked": 0, "deletions_acked": 0, "ranks_ok": 0, "ranks_failed": 0}

    def run(self, command, timeout=60):
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=self.env)

    def prepare(self):
        # Private copies of the binaries: a rebuild while the soak runs must not swap them mid-run.
        for name in ("rankd", "rankctl"):
            copy = self.work / name
            shutil.copy2(getattr(self.args, name), copy)
            setattr(self.args, name, str(copy))
        base = self.work / "base"
        users, items = (self.args.live_users, self.args.live_items) if self.args.live else (200, 1000)
        # --live: no graph (a debug build takes minutes for 60k items); Rank then scans exactly.
        self.run([self.args.rankctl, "synth", "--out", str(self.work / "in"), "--snapshot", str(base),
                  "--users", str(users), "--items", str(items), "--dim", "16", "--categories", "5", "--quiet",
                  *(["--no-index"] if self.args.live else [])], timeout=600)
        if self.args.live:
            self.live = LiveTraffic(self, items, users)
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
            if served and self.live:
                channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
                rank = channel.unary_unary("/ranking.v1.Ranker/Rank", request_serializer=None,
                                           response_deserializer=None)
                try:
                    problems += self.live.check(rank, round_number)
                except grpc.RpcError as error:
                    problems.append(f"read-back failed: {error.code().name} {error.details()}")
                channel.close()
            elif served:
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
            self.round = round_number
            if not self.start():
                self.bad.append(f"round {round_number}: rankd did not start")
                break
            stop = threading.Event()
            traffic = ((self.live.updater, self.live.updater, self.live.deleter, self.ranker) if self.live
                       else (self.publisher, self.operator, self.ranker))
            threads = [threading.Thread(target=t, args=(stop,), daemon=True) for t in traffic]
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
            if self.live and self.live.exhausted:
                print(f"all {self.live.items} items used after {round_number} kills: stopping", flush=True)
                break
        # A last full pass: every acknowledged version verifies.
        for version in self.acked:
            verify = self.run([self.args.rankctl, "verify", str(self.root / version)])
            if verify.returncode != 0:
                self.bad.append(f"final: acknowledged version {version} fails verify")
        summary = {"kills": round_number, "bad_states": len(self.bad), "seconds": round(time.monotonic() - started),
                   **({"batches_sent": len(self.live.batches), "deletions_sent": len(self.live.deleted)} if self.live
                      else {"versions_acknowledged": len(self.acked)}), **self.stats}
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
    parser.add_argument("--live", action="store_true",
                        help="live-update traffic (UpdateItems, DeleteUser: the write-ahead log) instead of publishes")
    parser.add_argument("--live-items", type=int, default=60000,
                        help="--live: catalogue size (each batch removes items no batch named before; ~200 per kill)")
    parser.add_argument("--live-users", type=int, default=20000, help="--live: users (half may be deleted)")
    args = parser.parse_args()
    sys.exit(Soak(args).soak())


if __name__ == "__main__":
    main()
