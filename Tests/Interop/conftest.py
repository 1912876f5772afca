"""Fixtures for interop tests: stubs generated from Protos/ at test time, and a real rankd
process on a free loopback port. An independent client (grpcio) keeps our server and our own
client from agreeing on a mistake."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GEN = Path(__file__).resolve().parent / "_gen"


def _generate_stubs():
    import shutil

    from grpc_tools import protoc

    # Python modules follow the .proto paths, and a generated `grpc/` package would shadow
    # grpcio itself: compile a copy whose health proto lives under `grpc_health/` instead.
    # The proto package (and so the wire name grpc.health.v1.Health) is unchanged.
    source = GEN / "src"
    shutil.rmtree(GEN, ignore_errors=True)
    shutil.copytree(ROOT / "Protos", source)
    (source / "grpc_health").mkdir()
    (source / "grpc" / "health").rename(source / "grpc_health" / "health")
    shutil.rmtree(source / "grpc")
    (source / "grpc_health" / "health" / "v1").rename(source / "grpc_health" / "v1")
    shutil.rmtree(source / "grpc_health" / "health")
    protos = sorted(str(p.relative_to(source)) for p in source.rglob("*.proto"))
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = ["protoc", f"-I{source}", f"-I{include}", f"--python_out={GEN}", f"--grpc_python_out={GEN}"]
    if protoc.main(args + protos) != 0:
        raise RuntimeError("grpc_tools.protoc failed on Protos/")
    shutil.rmtree(source)
    for directory in [GEN, *[p for p in GEN.rglob("*") if p.is_dir()]]:
        (directory / "__init__.py").touch()
    sys.path.insert(0, str(GEN))


_generate_stubs()


def rankd_binary():
    if os.environ.get("RANKD_BIN"):
        return os.environ["RANKD_BIN"]
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True)
    return os.path.join(out.stdout.strip(), "rankd")


def rankctl_binary():
    return os.path.join(os.path.dirname(rankd_binary()), "rankctl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_listener(proc, port, timeout, name, output, host="127.0.0.1"):
    """Waits until host:port accepts connections; raises with `output()` if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {output()}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not start listening on {host}:{port}: {output()}")


def synth(base, name, seed, items, categories, dim=16, users=200):
    """`rankctl synth` into base/name (inputs in base/in-name): the snapshot directory and its
    catalogue, item id -> (category, brand), to check that a response's items belong to the
    version it names."""
    import json

    subprocess.run(
        [rankctl_binary(), "synth", "--out", str(base / f"in-{name}"), "--snapshot", str(base / name),
         "--users", str(users), "--items", str(items), "--dim", str(dim), "--categories", str(categories),
         "--seed", str(seed), "--ef-construction", "40", "--quiet"],
        check=True, capture_output=True, timeout=600)
    catalogue = {}
    for line in (base / f"in-{name}" / "items.jsonl").read_text().splitlines():
        item = json.loads(line)
        catalogue[item["id"]] = (item["category"], item["brand"] or "")
    return base / name, catalogue


def synth_with_admin_token(name, seed, token, items=1000, categories=5):
    """A module's fixture data: a synth snapshot in a fresh temporary directory and an admin token
    file holding `token`; yields {"base", "snapshot", "catalogue", "token"} and removes it all
    afterwards. Use as `with synth_with_admin_token(...) as built: yield built` in a fixture."""
    import contextlib
    import shutil
    import tempfile

    @contextlib.contextmanager
    def made():
        base = Path(tempfile.mkdtemp(prefix=f"rankd-{name}-"))
        try:
            snapshot, catalogue = synth(base, f"snap-{name}", seed=seed, items=items, categories=categories)
            (base / "admin-token").write_text(token + "\n")
            yield {"base": base, "snapshot": snapshot, "catalogue": catalogue, "token": base / "admin-token"}
        finally:
            shutil.rmtree(base, ignore_errors=True)

    return made()


def wait_until_ranking(channel, timeout=10.0):
    """Waits until health says `ranking.v1.Ranker` is SERVING: rankd listens before its snapshot
    is active."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service="ranking.v1.Ranker")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if health.Check(request, timeout=5).status == health_pb2.HealthCheckResponse.SERVING:
            return
        time.sleep(0.05)
    raise RuntimeError("ranking.v1.Ranker did not become SERVING")


class RankdProcess:
    """A rankd child process on host:port (a loopback address), with its stderr kept for assertions."""

    def __init__(self, *extra_args, port=None, host="127.0.0.1"):
        self.host = host
        self.port = port or free_port()
        self.args = [rankd_binary(), "--listen", f"{host}:{self.port}", "--enable-test-services", *extra_args]
        self.log_path = GEN / f"rankd-{self.port}-{time.monotonic_ns()}.log"
        self.proc = None

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def start(self, timeout=20.0):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_listener(self.proc, self.port, timeout, "rankd", self.output, self.host)
        # The port accepts as soon as it is bound; the "listening" line (transport, address) is logged just
        # after. Tests read that line, so wait for it too (a busy machine widens the gap).
        deadline = time.monotonic() + timeout
        while "msg=listening" not in self.output() and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.02)
        return self

    def stop(self, sig=None, timeout=20.0):
        import signal as _signal

        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig or _signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        return self.proc.returncode if self.proc else None

    def output(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture(scope="module")
def rankd():
    server = RankdProcess().start()
    yield server
    server.stop()


@pytest.fixture
def fresh_rankd():
    servers = []

    def make(*args, port=None):
        server = RankdProcess(*args, port=port).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
