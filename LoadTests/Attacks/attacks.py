"""Protocol attacks against a running rankd (loopback, bounded, self-stopping).

Each attack runs for a fixed time while a well-behaved client (bystander.py, its own process and
connection) sends Rank calls at a steady rate. For each attack the table gives how the attacker
was cut off (GOAWAY / RST_STREAM / gRPC status / close) and after how long, rankd's peak RSS while
it ran, and the bystander's p99 against a quiet run of the same length.

  python attacks.py --rankd BIN --rankctl BIN [--quick] [--only a,b] [--seconds S] [--rounds N] [--json FILE]
  python attacks.py --rankd BIN --rankctl BIN --variant before=OLD_BIN --variant after="NEW_BIN --flag" ...

--quick (what `make test` runs) uses short runs and fewer idle connections and checks cut-off and
memory only: a wall-clock p99 bound does not gate CI on a shared machine. The full run
(`make attack-test`) also requires the bystander's p99 within 2x of quiet: each attack runs --rounds
times (default 3), each attacked run right after a quiet run of its own, and the ratio is the median
attacked p99 over the median of all quiet runs (the quiet p99 alone moves 2-3x between minutes on a
shared VM, so one quiet baseline at the start decides nothing). --variant runs several rankd builds
or settings side by side, each its own server, alternating within every round. See docs/SECURITY.md.

The attacker is its own process (this script with --child), connecting from its own loopback
address (--attacker-address, default 127.0.0.2; the distributed idle-connection attack uses 125
addresses from 127.0.1.1), so rankd's per-address limits see it as one client and the bystander
(127.0.0.1) as another. Its CPU is capped at --attacker-cpu of one core (default 0.5; 0: no cap):
on a 2-core box an uncapped Python attacker takes a core from rankd and the bystander, and the run
then measures the client, not the server. Each attack reports the attacker's, rankd's and the
bystander's CPU so that this can be checked. --pin 0:1 runs rankd and the bystander on CPU 0 and the
attacker on CPU 1 (on loopback the kernel's work for its sockets runs on the sender's CPU): the nearest
one machine gets to an attacker on another host.
"""

import argparse
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h2raw
from h2raw import (CONTINUATION, END_HEADERS, END_STREAM, HEADERS, PING, RST_STREAM, SETTINGS, Connection, frame,
                   grpc_message, rank_request, request_headers)

HERE = Path(__file__).resolve().parent
# rankd runs with short limits so the timed attacks end within seconds (defaults: 300, 10, 30 s).
IDLE_TIMEOUT = 2  # --idle-timeout: a connection with no open stream
HANDSHAKE_TIMEOUT = 2  # --handshake-timeout: the preface and SETTINGS, and each request's header block
STALL_TIMEOUT = 2  # --stall-timeout: open streams that make no progress
MAX_CONNECTIONS = 10_000  # rankd's default connection limit (not overridden here)
# Attacks cut off by a timeout run at least this long (the connection sweep checks every timeout / 4).
TIMED_ATTACK_SECONDS = 2 * max(IDLE_TIMEOUT, HANDSHAKE_TIMEOUT, STALL_TIMEOUT) + 2
TIMED_ATTACKS = {"zero-window", "slowloris", "idle-connections"}
# The quick run stops an attack once this many connections were cut off, and gives the timed
# attacks up to QUICK_TIMED_LIMIT seconds: on a busy machine a cut-off can come late, and the quick
# run checks that it comes, not how fast.
STOP_AFTER = None
QUICK_TIMED_LIMIT = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RSSSampler(threading.Thread):
    """Samples rankd's resident set every 20 ms; `peak` is the largest seen since `reset()`."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def rss(self):
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return 0
        return 0

    def reset(self):
        self.peak = self.rss()

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)


BYSTANDER_RATE = 50


def process_cpu(pid):
    """User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


# --pin: the CPUs rankd and the bystander run on, and the attacker's (None: no pinning).
SERVER_CPUS = None
ATTACKER_CPUS = None


def pinned(cpus):
    """A preexec_fn that pins the child to `cpus` (None: leaves it alone)."""
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def bystander(port, seconds):
    return subprocess.Popen([sys.executable, str(HERE / "bystander.py"), "--target", f"127.0.0.1:{port}",
                             "--seconds", str(seconds), "--rate", str(BYSTANDER_RATE)],
                            stdout=subprocess.PIPE, text=True, preexec_fn=pinned(SERVER_CPUS))


def bystander_result(proc):
    out, _ = proc.communicate(timeout=120)
    return json.loads(out.strip().splitlines()[-1])


# ---- attacks: each runs until `until` (time.monotonic()) and returns a dict with
# cut_off_s (seconds from the start of an attacking connection to the server ending it, median
# over the connections, None if never), outcome (what the server sent) and ok.

def per_connection(port, until, attack, expect):
    """Runs `attack(conn) -> outcome` on fresh connections until time is up (or, with STOP_AFTER
    set, once that many connections were cut off)."""
    cut_offs, outcomes = [], {}
    while time.monotonic() < until and not (STOP_AFTER and len(cut_offs) >= STOP_AFTER):
        started = time.monotonic()
        try:
            conn = Connection(port)
        except (ConnectionResetError, BrokenPipeError):
            outcomes[REFUSED] = outcomes.get(REFUSED, 0) + 1
            continue
        except OSError as error:
            name = f"connect failed: {error.__class__.__name__}"
            outcomes[name] = outcomes.get(name, 0) + 1
            time.sleep(0.05)
            continue
        try:
            outcome = attack(conn, until)
        except OSError:  # the server stopped reading or closed: see what it sent
            conn.read_until(lambda c: c.closed, 2)
            outcome = describe(conn)
        if outcome is not None:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome != REFUSED:
                cut_offs.append(time.monotonic() - started)
        conn.close()
    cut_offs.sort()
    median = cut_offs[len(cut_offs) // 2] if cut_offs else None
    # Cut off the expected way at least once; every other connection the same way or refused at accept.
    ok = any(expect(o) for o in outcomes) and all(expect(o) or o == REFUSED for o in outcomes)
    return {"cut_off_s": median, "connections": len(cut_offs), "refused": outcomes.get(REFUSED, 0),
            "outcome": outcomes, "ok": ok}


REFUSED = "refused at accept"


def describe(conn):
    if conn.closed and conn.received_bytes == 0 and not conn.goaway:
        return REFUSED  # reset before the server sent even its SETTINGS: per-address limits
    if conn.goaway:
        return f"GOAWAY {conn.goaway[1]}"
    if conn.statuses:
        codes = sorted({s for s, _ in conn.statuses.values()})
        return "grpc-status " + ",".join(map(str, codes))
    if conn.resets:
        return "RST_STREAM " + ",".join(sorted(set(conn.resets.values())))
    return "closed" if conn.closed else None


def rapid_reset(port, until):
    def attack(conn, until):
        stream = 1
        while time.monotonic() < until:
            batch = b""
            for _ in range(50):
                batch += conn.headers(stream, request_headers()) + frame(RST_STREAM, 0, stream, struct.pack(">I", 8))
                stream += 2
            conn.send(batch)
            conn.read(timeout=0)
            if conn.goaway or conn.closed:
                conn.read_until(lambda c: c.closed, 1)
                return describe(conn)
        return None
    return per_connection(port, until, attack, lambda o: o == "GOAWAY ENHANCE_YOUR_CALM")


def continuation_flood(port, until):
    def attack(conn, until):
        conn.send(conn.headers(1, request_headers(), end_headers=False))
        literal = b"\x00\x06x-junk" + bytes([0x7F]) + hpack_length(4000 - 127) + b"a" * 4000
        payload = literal * 4
        while time.monotonic() < until:
            conn.send(frame(CONTINUATION, 0, 1, payload) * 8)
            conn.read(timeout=0)
            if conn.goaway or conn.closed:
                conn.read_until(lambda c: c.closed, 1)
                return describe(conn)
        return None
    return per_connection(port, until, attack, lambda o: o.startswith("GOAWAY") or o == "closed")


def hpack_length(rest):
    """The continuation bytes of an HPACK integer whose 7-bit prefix is full (RFC 7541 §5.1)."""
    out = b""
    while rest >= 128:
        out += bytes([(rest & 0x7F) | 0x80])
        rest >>= 7
    return out + bytes([rest])


def hpack_bomb(port, until):
    """One 4 KB header inserted into the dynamic table, then referenced 4000 times by a one-byte
    index in each request: 16 MB of decoded header list per ~4 KB on the wire."""
    def attack(conn, until):
        stream = 1
        plain = conn.encoder.encode(request_headers())
        insert = b"\x40\x06x-bomb" + bytes([0x7F]) + hpack_length(4000 - 127) + b"b" * 4000
        block = plain + insert + bytes([0x80 | 62]) * 4000
        while time.monotonic() < until:
            conn.send(frame(HEADERS, END_HEADERS | END_STREAM, stream, block))
            conn.read(timeout=0.05)
            if conn.goaway or conn.closed or conn.statuses or conn.resets:
                conn.read_until(lambda c: c.closed, 0.5)
                return describe(conn)
            stream += 2
            # After the first block the entry is indexed: later blocks re-insert nothing new.
            block = plain + bytes([0x80 | 62]) * 4000
        return None
    return per_connection(port, until, attack,
                          lambda o: o in ("grpc-status 8", "GOAWAY COMPRESSION_ERROR", "GOAWAY ENHANCE_YOUR_CALM"))


def oversized_headers(port, until):
    """A 1 MB header value in a HEADERS frame and 64 CONTINUATION frames."""
    def attack(conn, until):
        block = conn.encoder.encode(request_headers()) + b"\x00\x07x-large" + bytes([0x7F]) + hpack_length(
            (1 << 20) - 127) + b"c" * (1 << 20)
        pieces = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        data = frame(HEADERS, END_STREAM, 1, pieces[0])
        for index, piece in enumerate(pieces[1:]):
            data += frame(CONTINUATION, END_HEADERS if index == len(pieces) - 2 else 0, 1, piece)
        conn.send(data)
        conn.read_until(lambda c: c.goaway or c.closed or c.statuses or c.resets, 5)
        return describe(conn)
    return per_connection(port, until, attack, lambda o: o.startswith("GOAWAY") or o in ("grpc-status 8", "closed"))


def control_flood(kind):
    def run(port, until):
        def attack(conn, until):
            unit = (frame(PING, 0, 0, b"12345678") if kind == "ping"
                    else frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 65535)))
            batch = unit * 500
            # The attacker never reads: the server's ACKs pile up on its side.
            while time.monotonic() < until:
                conn.send(batch)
            return None
        return per_connection(port, until, attack, lambda o: o == "GOAWAY ENHANCE_YOUR_CALM" or o == "closed")
    return run


def control_flood_reading(kind):
    """The same flood from a client that does read its ACKs: rate-limited, not queue-limited."""
    def run(port, until):
        def attack(conn, until):
            unit = (frame(PING, 0, 0, b"12345678") if kind == "ping"
                    else frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 65535)))
            batch = unit * 100
            while time.monotonic() < until:
                conn.send(batch)
                conn.read(timeout=0)
                if conn.goaway or conn.closed:
                    conn.read_until(lambda c: c.closed, 1)
                    return describe(conn)
            return None
        return per_connection(port, until, attack, lambda o: o == "GOAWAY ENHANCE_YOUR_CALM")
    return run


def zero_window(port, until):
    """Opens a zero stream window, asks for 100 Rank responses, and never reads a byte."""
    def attack(conn, until):
        conn.sock.close()
        conn.sock = h2raw.connect("127.0.0.1", port)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        data = h2raw.PREFACE + h2raw.settings([(4, 0)])
        for i in range(100):
            stream = 1 + 2 * i
            data += conn.headers(stream, request_headers()) + frame(0, END_STREAM, stream, grpc_message(rank_request()))
        conn.send(data)
        started = time.monotonic()
        # Not reading: only notice when the server closes (a send fails or a peek sees EOF).
        while time.monotonic() < until:
            time.sleep(0.1)
            try:
                conn.sock.setblocking(False)
                peek = conn.sock.recv(1, socket.MSG_PEEK)
                conn.sock.setblocking(True)
                if peek == b"":
                    return "closed"
            except BlockingIOError:
                conn.sock.setblocking(True)
            except (ConnectionResetError, OSError):
                return "closed"
            # Once data is waiting, read everything to see whether a GOAWAY/close ended it.
            if time.monotonic() - started > STALL_TIMEOUT + 1:
                conn.read_until(lambda c: c.closed or c.goaway, 0.5)
                if conn.goaway or conn.closed:
                    conn.read_until(lambda c: c.closed, 1)
                    return describe(conn)
        return None
    return per_connection(port, until, attack, lambda o: o.startswith("GOAWAY") or o == "closed")


def slowloris(count, byte_interval):
    """`count` connections each sending its first request's HEADERS one byte at a time."""
    def run(port, until):
        conns = []
        for _ in range(count):
            try:
                conn = Connection(port)
                conn.pending = conn.headers(1, request_headers())
                conn.started = time.monotonic()
                conns.append(conn)
            except OSError:
                break
        cut = {}
        while time.monotonic() < until and len(cut) < len(conns):
            for conn in conns:
                if conn in cut:
                    continue
                try:
                    if conn.pending:
                        conn.send(conn.pending[:1])
                        conn.pending = conn.pending[1:]
                    conn.read(timeout=0)
                except OSError:
                    conn.closed = True
                if conn.closed or conn.goaway:
                    cut[conn] = (time.monotonic() - conn.started, describe(conn))
            time.sleep(byte_interval)
        for conn in conns:
            conn.close()
        times = sorted(t for t, _ in cut.values())
        outcomes = {}
        for _, outcome in cut.values():
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if len(cut) < len(conns):
            outcomes["still open at the end"] = len(conns) - len(cut)
        return {"cut_off_s": times[len(times) // 2] if times else None, "connections": len(conns),
                "outcome": outcomes, "ok": len(conns) > 0 and len(cut) == len(conns)}
    return run


IDLE_ADDRESSES = 125


def idle_connections(count):
    """`count` connections that send the preface and SETTINGS, then nothing: a distributed attack,
    from IDLE_ADDRESSES loopback addresses (127.0.1.1, ...), each within the per-address limits, so
    the global connection limit and the idle timeout are what must hold."""
    def run(port, until):
        conns, refused = [], 0
        started = time.monotonic()
        for i in range(count):
            h2raw.SOURCE_ADDRESS = f"127.0.1.{1 + i % IDLE_ADDRESSES}"
            try:
                conns.append(Connection(port, timeout=10))
            except OSError:
                refused += 1
        opened = time.monotonic() - started
        cut = {}
        # Opening thousands of connections can take longer than the attack's time: every one of
        # them still gets the whole idle timeout (and the sweep period) to be closed.
        until = max(until, time.monotonic() + 2 * IDLE_TIMEOUT + 3)
        while time.monotonic() < until and len(cut) < len(conns):
            for conn in conns:
                if conn not in cut:
                    conn.read(timeout=0)
                    if conn.closed:
                        cut[conn] = time.monotonic() - started
            time.sleep(0.2)
        goaways = sum(1 for c in conns if c.goaway and c.goaway[1] == "NO_ERROR")
        # Closed before a byte came back: refused at the global connection limit (the bystander holds one).
        at_limit = sum(1 for c in conns if c in cut and not c.goaway and c.received_bytes == 0)
        for conn in conns:
            conn.close()
        times = sorted(cut.values())
        outcome = {f"GOAWAY NO_ERROR then closed (idle timeout {IDLE_TIMEOUT} s)": goaways}
        if at_limit:
            outcome[f"closed at accept (limit of {MAX_CONNECTIONS} connections)"] = at_limit
        if len(cut) < len(conns):
            outcome["still open at the end"] = len(conns) - len(cut)
        if refused:
            outcome["connect refused"] = refused
        return {"cut_off_s": times[len(times) // 2] if times else None, "connections": len(conns),
                "open_seconds": round(opened, 1), "outcome": outcome,
                "ok": len(conns) >= count * 0.99 and len(cut) == len(conns) and goaways + at_limit == len(conns)
                and at_limit <= max(0, count - MAX_CONNECTIONS + 1)}
    return run


def connection_flood(port, until):
    """One address opens connections as fast as it can and keeps them (preface and SETTINGS, then
    nothing). The per-address limits must refuse all but a burst and the refill rate at accept."""
    held, refused, opened = [], 0, 0
    while time.monotonic() < until:
        try:
            conn = Connection(port, timeout=2)
        except (ConnectionResetError, BrokenPipeError):
            refused += 1
            continue
        except OSError:
            time.sleep(0.01)
            continue
        opened += 1
        held.append(conn)
        # Every 50 connections, drop the ones the server reset (bounded file descriptors here).
        if len(held) % 50 == 0:
            for c in held:
                c.read(timeout=0)
            refused += sum(1 for c in held if describe(c) == REFUSED)
            held = [c for c in held if describe(c) != REFUSED]
    time.sleep(0.2)
    for c in held:
        c.read(timeout=0.01)
    refused += sum(1 for c in held if describe(c) == REFUSED)
    admitted = sum(1 for c in held if describe(c) != REFUSED)
    for c in held:
        c.close()
    return {"cut_off_s": None, "connections": admitted + refused, "refused": refused,
            "outcome": {"admitted": admitted, REFUSED: refused}, "ok": refused > 0}


def message_abuse(port, until):
    """Alternates a message whose prefix announces 100 MB and one cut off before its end."""
    def attack(conn, until):
        stream, seen = 1, set()
        while time.monotonic() < until and len(seen) < 2:
            conn.send(conn.headers(stream, request_headers())
                      + frame(0, END_STREAM, stream, grpc_message(b"x" * 16000, declared=100 << 20)))
            conn.send(conn.headers(stream + 2, request_headers())
                      + frame(0, END_STREAM, stream + 2, grpc_message(rank_request(), declared=500)))
            if not conn.read_until(lambda c: stream in c.statuses and stream + 2 in c.statuses, 10):
                return describe(conn) if conn.closed or conn.goaway else None  # slow, not refused
            seen = {conn.statuses[stream][0], conn.statuses[stream + 2][0]}
            stream += 4
        if not seen:
            return None  # time ran out before the first pair was answered: not a cut-off
        return "grpc-status " + ",".join(str(s) for s in sorted(seen))
    return per_connection(port, until, attack, lambda o: o == "grpc-status 3,8")


ATTACKS = {
    "rapid-reset": rapid_reset,
    "continuation-flood": continuation_flood,
    "hpack-bomb": hpack_bomb,
    "oversized-headers": oversized_headers,
    "settings-flood": control_flood("settings"),
    "ping-flood": control_flood("ping"),
    "settings-flood-reading": control_flood_reading("settings"),
    "ping-flood-reading": control_flood_reading("ping"),
    "zero-window": zero_window,
    "slowloris": None,  # sized by --quick
    "idle-connections": None,
    "oversized-truncated-messages": message_abuse,
    "connection-flood": connection_flood,
}


class Server:
    """One rankd under test (a variant: a binary and its extra flags) on a loopback port of its own."""

    def __init__(self, label, binary, extra, snapshot, work):
        self.label, self.binary = label, binary
        self.port = free_port()
        self.log_path = work / f"rankd-{label}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{self.port}", "--snapshot", str(snapshot),
             "--idle-timeout", str(IDLE_TIMEOUT), "--handshake-timeout", str(HANDSHAKE_TIMEOUT),
             "--stall-timeout", str(STALL_TIMEOUT), "--log-level", "error", *extra.split()],
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=pinned(SERVER_CPUS))
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"rankd ({label}) did not start: {self.log_path.read_text()}")
                time.sleep(0.1)
        self.sampler = RSSSampler(self.proc.pid)
        self.sampler.start()
        self.sampler.reset()

    def stop(self):
        self.sampler.running = False
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Control:
    """The control: the bystander calls the first variant's server while the attacker hits another rankd
    (same binary, idle otherwise). What the bystander loses then is the machine's share (the attacker's
    and the other rankd's CPU on the same cores), not anything its server does for the attacker."""

    def __init__(self, base, decoy):
        self.label, self.binary = "control", base.binary
        self.port, self.proc, self.sampler = base.port, base.proc, base.sampler
        self.attack_target = decoy

    def stop(self):
        self.attack_target.stop()


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def quiet_run(server, seconds, label):
    rankd_cpu0, wall0 = process_cpu(server.proc.pid), time.monotonic()
    quiet = bystander_result(bystander(server.port, seconds))
    quiet["peak_rss_mb"] = round(server.sampler.peak / 2**20, 1)
    quiet["rankd_cpu_share"] = round((process_cpu(server.proc.pid) - rankd_cpu0) / (time.monotonic() - wall0), 2)
    print(f"[{server.label}] {label}: p50 {quiet['p50_ms']:.2f} ms, p99 {quiet['p99_ms']:.2f} ms, "
          f"{quiet['calls']} calls, RSS {quiet['peak_rss_mb']} MB, rankd CPU {quiet['rankd_cpu_share']}", flush=True)
    return quiet


def attack_run(server, name, args, seconds, idle, rss_baseline):
    target = getattr(server, "attack_target", server)  # the server the attacker hits (the control: another)
    target.sampler.reset()
    length = max(seconds, TIMED_ATTACK_SECONDS) if name in TIMED_ATTACKS else seconds
    limit = QUICK_TIMED_LIMIT if args.quick and name in TIMED_ATTACKS else length
    proc = bystander(server.port, length + 1)
    time.sleep(0.5)  # the bystander connects and warms up first
    rankd_cpu0, wall0 = process_cpu(target.proc.pid), time.monotonic()
    child = subprocess.run(
        [sys.executable, __file__, "--rankd", server.binary, "--rankctl", args.rankctl, "--child", name,
         "--port", str(target.port), "--limit", str(limit), "--seconds", str(seconds),
         "--attacker-cpu", str(args.attacker_cpu), "--attacker-address", args.attacker_address,
         "--idle", str(idle), *(["--quick"] if args.quick else [])],
        capture_output=True, text=True, timeout=limit + 120, preexec_fn=pinned(ATTACKER_CPUS))
    rankd_cpu = process_cpu(target.proc.pid) - rankd_cpu0
    wall = time.monotonic() - wall0
    try:
        result = json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"cut_off_s": None, "outcome": {"attacker failed": child.stderr[-500:]}, "ok": False}
    result["rankd_cpu_share"] = round(rankd_cpu / wall, 2)
    if "attacker_cpu_s" in result:
        result["attacker_cpu_share"] = round(result["attacker_cpu_s"] / max(result["attacker_wall_s"], 0.01), 2)
    side = bystander_result(proc)
    result["bystander_cpu_s"] = side.get("cpu_s")
    result["peak_rss_mb"] = round(target.sampler.peak / 2**20, 1)
    result["bystander_p99_ms"] = side["p99_ms"]
    result["bystander_errors"] = side["errors"]
    if target.proc.poll() is not None:
        result["ok"] = False
        result["outcome"]["rankd exited"] = target.proc.returncode
    if result["peak_rss_mb"] > rss_baseline + 512:
        result["ok"] = False
        result["memory"] = "unbounded"
    if side["errors"]:
        result["ok"] = False
    cut = f"{result['cut_off_s']:.3f} s" if result["cut_off_s"] is not None else "never"
    print(f"[{server.label}] {'ok  ' if result['ok'] else 'FAIL'} {name:28s} cut off {cut:>9s}  {result['outcome']}  "
          f"RSS {result['peak_rss_mb']} MB  bystander p99 {side['p99_ms']:.2f} ms"
          f"{'  errors ' + str(side['errors']) if side['errors'] else ''}  "
          f"CPU: rankd {result['rankd_cpu_share']}, attacker {result.get('attacker_cpu_share')} cores", flush=True)
    time.sleep(0.5)
    return result


def summarise(runs, quiet_p99):
    """One attack's rounds on one variant: medians of the per-round numbers, outcomes summed."""
    outcome = {}
    for run in runs:
        for key, count in run["outcome"].items():
            if isinstance(count, int):
                outcome[key] = outcome.get(key, 0) + count
    p99 = median(r["bystander_p99_ms"] for r in runs)
    return {"rounds": len(runs), "ok": all(r["ok"] for r in runs), "outcome": outcome,
            "cut_off_s": median(r["cut_off_s"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "bystander_p99_ms": p99, "bystander_p99_runs_ms": [r["bystander_p99_ms"] for r in runs],
            "p99_ratio": round(p99 / quiet_p99, 2) if p99 and quiet_p99 else None,
            "rankd_cpu_share": median(r["rankd_cpu_share"] for r in runs),
            "attacker_cpu_share": median(r.get("attacker_cpu_share") for r in runs),
            "runs": runs}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rankd", required=True)
    parser.add_argument("--rankctl", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--idle", type=int, default=None, help="idle connections (default 10000, quick 1000)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--bystander-rate", type=float, default=200.0,
                        help="the bystander's Rank calls per second (open schedule; keep it well within what "
                             "one Python process can send on a busy machine)")
    parser.add_argument("--attacker-cpu", type=float, default=0.5,
                        help="the attacker's CPU cap, in cores (0: none)")
    parser.add_argument("--attacker-address", default="127.0.0.2")
    parser.add_argument("--rankd-args", default="", help="extra rankd flags (e.g. to turn a limit off)")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=BIN[ FLAGS]",
                        help="compare rankd builds or settings side by side, each on its own server: "
                             "'before=/tmp/rankd', 'shared=/tmp/rankd --shared-accept-loop' (repeat; default: "
                             "--rankd with --rankd-args)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of (quiet run, attacked run) per attack and variant, alternating; the p99 "
                             "ratio is the median attacked p99 over the median of all the variant's quiet runs "
                             "(default 3; quick: 1 and no quiet runs between attacks)")
    parser.add_argument("--control", action="store_true",
                        help="also run a control: the bystander on the first variant's server while the attacker "
                             "hits a second rankd, so the machine's share of the bystander's loss shows apart")
    parser.add_argument("--pin", default=None, metavar="SERVER_CPUS:ATTACKER_CPUS",
                        help="pin rankd and the bystander to some CPUs and the attacker (with the kernel's work for "
                             "its sockets, which runs on the sender's CPU on loopback) to others, e.g. 0:1 — the "
                             "nearest this one machine gets to an attacker on another host")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global STOP_AFTER, BYSTANDER_RATE, SERVER_CPUS, ATTACKER_CPUS
    if args.pin:
        server, _, attacker = args.pin.partition(":")
        SERVER_CPUS = {int(c) for c in server.split(",")}
        ATTACKER_CPUS = {int(c) for c in attacker.split(",")}
    BYSTANDER_RATE = args.bystander_rate
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    STOP_AFTER = 3 if args.quick else None
    idle = args.idle or (1000 if args.quick else 10000)
    ATTACKS["slowloris"] = slowloris(50 if args.quick else 500, 0.05)
    ATTACKS["idle-connections"] = idle_connections(idle)
    names = [n for n in ATTACKS if not args.only or n in args.only.split(",")]

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.child:
        # The attacker process: run one attack and print its result with its own CPU use.
        h2raw.SOURCE_ADDRESS = args.attacker_address
        h2raw.BUDGET = h2raw.CPUBudget(args.attacker_cpu)
        wall0, cpu0 = time.monotonic(), time.process_time()
        result = ATTACKS[args.child](args.port, time.monotonic() + args.limit)
        wall = time.monotonic() - wall0
        result["attacker_cpu_s"] = round(time.process_time() - cpu0, 2)
        result["attacker_wall_s"] = round(wall, 2)
        result["attacker_throttled_s"] = round(h2raw.BUDGET.slept, 2)
        print(json.dumps(result))
        return
    variants = []
    for spec in args.variant or [f"rankd={args.rankd} {args.rankd_args}"]:
        label, _, command = spec.partition("=")
        binary, _, extra = command.strip().partition(" ")
        variants.append((label, binary, extra))
    rounds = 1 if args.quick else (args.rounds or 3)
    work = Path(tempfile.mkdtemp(prefix="rankd-attacks-"))
    subprocess.run([args.rankctl, "synth", "--out", str(work / "in"), "--snapshot", str(work / "snap"),
                    "--users", "500", "--items", "3000", "--dim", "32", "--categories", "10", "--quiet"],
                   check=True, capture_output=True, timeout=600)
    servers, failures, report = [], [], {}
    try:
        for label, binary, extra in variants:
            servers.append(Server(label, binary, extra, work / "snap", work))
        if args.control:
            label, binary, extra = variants[0]
            servers.append(Control(servers[0], Server("decoy", binary, extra, work / "snap", work)))
        quiets = {s.label: [quiet_run(s, seconds, "quiet")] for s in servers}
        rss_baseline = {s.label: getattr(s, "attack_target", s).sampler.peak / 2**20 for s in servers}
        runs = {s.label: {n: [] for n in names} for s in servers}
        # Quiet and attacked runs alternate (per attack, per variant, per round): this VM's quiet p99 moves
        # by more than 2x between minutes, so the baseline is sampled all along the run, not once.
        for round_index in range(rounds):
            for name in names:
                for server in servers:
                    if not args.quick:
                        quiets[server.label].append(quiet_run(server, seconds, f"quiet (round {round_index + 1})"))
                    runs[server.label][name].append(attack_run(server, name, args, seconds, idle,
                                                               rss_baseline[server.label]))
        print(f"\n{rounds} round(s); p99 ratio = median attacked p99 / median quiet p99 of the same variant")
        for server in servers:
            quiet_p99 = median(q["p99_ms"] for q in quiets[server.label])
            summary = {"quiet": {"p99_ms": quiet_p99, "runs": quiets[server.label],
                                 "rankd_cpu_share": median(q["rankd_cpu_share"] for q in quiets[server.label])}}
            print(f"[{server.label}] quiet p99 median {quiet_p99:.2f} ms over {len(quiets[server.label])} runs "
                  "(" + ", ".join(f"{q['p99_ms']:.2f}" for q in quiets[server.label]) + ")")
            for name in names:
                result = summarise(runs[server.label][name], quiet_p99)
                if not args.quick and (result["p99_ratio"] or 0) > 2.0:
                    result["ok"] = False
                summary[name] = result
                cut = f"{result['cut_off_s']:.3f} s" if result["cut_off_s"] is not None else "never"
                print(f"[{server.label}] {'ok  ' if result['ok'] else 'FAIL'} {name:28s} cut off {cut:>9s}  "
                      f"RSS {result['peak_rss_mb']} MB  p99 {result['bystander_p99_ms']:.2f} ms "
                      f"({result['p99_ratio']}x quiet; rounds {result['bystander_p99_runs_ms']})  "
                      f"rankd CPU {result['rankd_cpu_share']}", flush=True)
                if not result["ok"]:
                    failures.append(f"{name} ({server.label})" if len(servers) > 1 else name)
            report[server.label] = summary
    finally:
        for server in servers:
            server.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(report if len(servers) > 1 else report.get(servers[0].label, {}),
                                              indent=2))
    if failures:
        print(f"FAILED: {', '.join(failures)} (rankd logs: {work})")
        raise SystemExit(1)
    print(f"all {len(names)} attacks cut off, rankd bounded")


if __name__ == "__main__":
    main()
