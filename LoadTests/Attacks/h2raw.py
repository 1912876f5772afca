"""Raw HTTP/2 frames for attack clients (RFC 9113 §4.1, §6): built by hand so an attacker can send
what a conforming client library refuses to (a CONTINUATION flood, a reset storm, a header block
that decodes to megabytes), plus a reader that splits the server's bytes into frames and decodes
its header blocks (HPACK, from the `hpack` package that `h2` depends on)."""

import socket
import struct
import time

import hpack

# Where attack connections come from: a loopback address of their own (all of 127/8 is local on
# Linux), so that rankd's per-address limits see the attacker as one client and the bystander on
# 127.0.0.1 as another, as they would be on a network. None: the kernel picks (127.0.0.1).
SOURCE_ADDRESS = None


class CPUBudget:
    """Bounds this process's CPU to `share` of one core (0: unbounded) by sleeping off any excess,
    checked on every send: the attack client must not starve the 2-core box it shares with rankd
    and the bystander, or the run measures the client instead of the server."""

    def __init__(self, share=0.0):
        self.share = share
        self.wall0, self.cpu0 = time.monotonic(), time.process_time()
        self.slept = 0.0

    def spend(self):
        if self.share <= 0:
            return
        cpu = time.process_time() - self.cpu0
        ahead = cpu / self.share - (time.monotonic() - self.wall0)
        if ahead > 0.002:
            time.sleep(ahead)
            self.slept += ahead


BUDGET = CPUBudget()


def connect(host, port, timeout=None):
    BUDGET.spend()
    source = (SOURCE_ADDRESS, 0) if SOURCE_ADDRESS else None
    return socket.create_connection((host, port), timeout=timeout, source_address=source)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
ERROR_NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
               4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
               8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM",
               12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream & 0x7FFFFFFF) + payload


def settings(values=()):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in values))


def request_headers(path="/ranking.v1.Ranker/Rank", extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers"), *extra]


def grpc_message(payload, declared=None):
    return bytes([0]) + struct.pack(">I", len(payload) if declared is None else declared) + payload


def rank_request(user="u_1", k=10):
    user = user.encode()
    return bytes([0x0A, len(user)]) + user + bytes([0x10, k])


class Connection:
    """A TCP connection speaking raw frames; `events()` reads what the server sent."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, preface=True, window=None):
        self.timeout = timeout
        self.sock = connect(host, port, timeout)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 65536
        self.buffer = b""
        self.closed = False
        self.goaway = None  # (last stream, error name)
        self.resets = {}  # stream -> error name
        self.statuses = {}  # stream -> (grpc-status, grpc-message) from trailers or trailers-only
        self.http_status = {}
        self.received_bytes = 0
        if preface:
            self.send(PREFACE + settings([] if window is None else [(4, window)]))

    def send(self, data):
        BUDGET.spend()
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def headers(self, stream, headers, end_stream=False, end_headers=True):
        block = self.encoder.encode(headers)
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        return frame(HEADERS, flags, stream, block)

    def read(self, timeout=None):
        """Reads once (up to `timeout`), parses whole frames. Returns False once the server closed."""
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(1 << 20)
        except (socket.timeout, BlockingIOError):
            return True
        except (ConnectionResetError, BrokenPipeError, OSError):
            self.closed = True
            return False
        if not chunk:
            self.closed = True
            return False
        self.received_bytes += len(chunk)
        self.buffer += chunk
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            if len(self.buffer) < 9 + length:
                break
            kind, flags = self.buffer[3], self.buffer[4]
            stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            payload = self.buffer[9:9 + length]
            self.buffer = self.buffer[9 + length:]
            self._frame(kind, flags, stream, payload)
        return True

    def _frame(self, kind, flags, stream, payload):
        if kind == GOAWAY:
            code = int.from_bytes(payload[4:8], "big")
            self.goaway = (int.from_bytes(payload[:4], "big") & 0x7FFFFFFF, ERROR_NAMES.get(code, str(code)))
        elif kind == RST_STREAM:
            self.resets[stream] = ERROR_NAMES.get(int.from_bytes(payload[:4], "big"), "?")
        elif kind == HEADERS:
            try:
                fields = dict((k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v)
                              for k, v in self.decoder.decode(payload))
            except Exception:  # noqa: BLE001 - a block split over CONTINUATION is not decoded here
                return
            if ":status" in fields:
                self.http_status[stream] = fields[":status"]
            if "grpc-status" in fields:
                self.statuses[stream] = (int(fields["grpc-status"]), fields.get("grpc-message", ""))

    def read_until(self, predicate, seconds):
        """Reads until `predicate(self)` or the server closes or `seconds` pass; True if it held."""
        import time
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            if not self.read(timeout=min(0.2, max(0.01, deadline - time.monotonic()))):
                return predicate(self)
        return predicate(self)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
