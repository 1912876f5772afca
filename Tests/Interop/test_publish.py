"""ranking.v1.SnapshotAdmin end to end with a stock client (grpcio) against a real rankd started
on a snapshot root: auth, publish → activate → rank, the refusals (corrupt chunk, wrong checksum,
truncated upload, missing file, dimension change, different content under an existing version),
rollback, restart on the persisted version, SIGKILL mid-publish and mid-activation, and 20
activations under continuous Rank traffic with every response checked against the version it
names."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest

from conftest import RankdProcess, rankctl_binary, synth
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ranking.v1 import admin_pb2 as apb
from ranking.v1 import admin_pb2_grpc as arpc
from ranking.v1 import ranker_pb2 as pb
from ranking.v1 import ranker_pb2_grpc as rpc

TOKEN = "interop-admin-token-0123456789"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture(scope="module")
def snaps():
    """Two snapshots whose catalogues differ (item count, categories, seed), one of another dimension."""
    base = Path(tempfile.mkdtemp(prefix="rankd-publish-"))
    a = synth(base, "snap-a", seed=3, items=500, categories=4)
    b = synth(base, "snap-b", seed=4, items=800, categories=7)
    c = synth(base, "snap-c", seed=5, items=300, categories=3, dim=8)
    token = base / "admin-token"
    token.write_text(TOKEN + "\n")
    yield {"base": base, "a": a, "b": b, "c": c, "token": token}
    shutil.rmtree(base, ignore_errors=True)


def start(snaps, root, *extra):
    server = RankdProcess("--snapshot-root", str(root), "--admin-token-file", str(snaps["token"]), *extra).start()
    channel = grpc.insecure_channel(server.address)
    return server, channel, arpc.SnapshotAdminStub(channel), rpc.RankerStub(channel)


def publish_requests(directory, activate=False, chunk=16 * 1024, alter_header=None, alter_chunks=None,
                     stall=None):
    manifest_bytes = (Path(directory) / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    header = apb.PublishHeader(
        version=manifest["snapshotVersion"], manifest=manifest_bytes, activate=activate,
        files=[apb.PublishFile(name=f["name"], size=f["size"], xxh64=f["xxh64"]) for f in manifest["files"]])
    if alter_header:
        alter_header(header)
    chunks = []
    for f in manifest["files"]:
        data = (Path(directory) / f["name"]).read_bytes()
        for offset in range(0, len(data), chunk):
            chunks.append(apb.FileChunk(path=f["name"], offset=offset, data=data[offset:offset + chunk]))
    if alter_chunks:
        alter_chunks(chunks)
    yield apb.PublishRequest(header=header)
    for index, piece in enumerate(chunks):
        if stall and index == len(chunks) // 2:
            stall()
        yield apb.PublishRequest(chunk=piece)


def publish(admin, directory, **kwargs):
    return admin.Publish(publish_requests(directory, **kwargs), metadata=AUTH, timeout=60)


def code_of(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as error:
        call(*args, **kwargs)
    return error.value.code(), error.value.details()


def versions_in(root):
    return sorted(p.name for p in Path(root).iterdir() if not p.name.startswith("."))


def test_admin_auth_missing_wrong_disabled_and_rank_only_token(snaps, tmp_path):
    server, channel, admin, ranker = start(snaps, tmp_path / "root")
    try:
        assert code_of(admin.Status, apb.StatusRequest(), timeout=5)[0] == grpc.StatusCode.UNAUTHENTICATED
        wrong = (("authorization", "Bearer not-the-token"),)
        assert code_of(admin.Status, apb.StatusRequest(), metadata=wrong, timeout=5)[0] == \
            grpc.StatusCode.PERMISSION_DENIED
        assert code_of(admin.Status, apb.StatusRequest(), metadata=(("authorization", TOKEN),), timeout=5)[0] == \
            grpc.StatusCode.UNAUTHENTICATED
        code, _ = code_of(admin.Publish, publish_requests(snaps["a"][0]), metadata=wrong, timeout=30)
        assert code == grpc.StatusCode.PERMISSION_DENIED
        code, _ = code_of(admin.Activate, apb.ActivateRequest(version="snap-a"), metadata=wrong, timeout=5)
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert versions_in(tmp_path / "root") == []
        assert os.listdir(tmp_path / "root" / ".staging") == []
        # Rank needs no token by default.
        code, _ = code_of(ranker.Rank, pb.RankRequest(user_id="u_1"), timeout=5)
        assert code == grpc.StatusCode.UNAVAILABLE
    finally:
        channel.close()
        server.stop()

    # No admin token configured: admin RPCs are refused, with a message that says how to enable them.
    bare = RankdProcess("--snapshot-root", str(tmp_path / "root2")).start()
    try:
        with grpc.insecure_channel(bare.address) as channel:
            code, details = code_of(arpc.SnapshotAdminStub(channel).Status, apb.StatusRequest(), metadata=AUTH,
                                    timeout=5)
            assert code == grpc.StatusCode.PERMISSION_DENIED and "--admin-token-file" in details
    finally:
        bare.stop()

    # A Rank-only token: Rank needs it, and it opens no admin RPC.
    rank_token = tmp_path / "rank-token"
    rank_token.write_text("rank-only-token")
    server, channel, admin, ranker = start(snaps, tmp_path / "root3", "--rank-token-file", str(rank_token))
    try:
        rank_auth = (("authorization", "Bearer rank-only-token"),)
        assert code_of(ranker.Rank, pb.RankRequest(user_id="u_1"), timeout=5)[0] == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(admin.Status, apb.StatusRequest(), metadata=rank_auth, timeout=5)[0] == \
            grpc.StatusCode.PERMISSION_DENIED
        code, _ = code_of(ranker.Rank, pb.RankRequest(user_id="u_1"), metadata=rank_auth, timeout=5)
        assert code == grpc.StatusCode.UNAVAILABLE  # authorised; no snapshot yet
    finally:
        channel.close()
        server.stop()


def test_empty_root_then_publish_activate_rank_status(snaps, tmp_path):
    root = tmp_path / "root"
    server, channel, admin, ranker = start(snaps, root)
    health = health_pb2_grpc.HealthStub(channel)
    try:
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        assert health.Check(health_pb2.HealthCheckRequest(service="ranking.v1.Ranker"), timeout=5).status == \
            health_pb2.HealthCheckResponse.NOT_SERVING
        assert code_of(ranker.Rank, pb.RankRequest(user_id="u_1"), timeout=5)[0] == grpc.StatusCode.UNAVAILABLE

        reply = publish(admin, snaps["a"][0])
        assert reply.version == "snap-a" and not reply.already_present and reply.bytes_written > 0
        assert reply.active_version == ""
        assert versions_in(root) == ["snap-a"]
        assert code_of(ranker.Rank, pb.RankRequest(user_id="u_1"), timeout=5)[0] == grpc.StatusCode.UNAVAILABLE

        activated = admin.Activate(apb.ActivateRequest(version="snap-a"), metadata=AUTH, timeout=30)
        assert activated.active_version == "snap-a" and activated.previous_version == ""
        assert health.Check(health_pb2.HealthCheckRequest(service="ranking.v1.Ranker"), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING
        ranked = ranker.Rank(pb.RankRequest(user_id="u_1", k=5), timeout=5)
        assert ranked.snapshot_version == "snap-a" and len(ranked.items) == 5

        status = admin.Status(apb.StatusRequest(), metadata=AUTH, timeout=5)
        assert status.active_version == "snap-a" and status.activated_by == "activate"
        assert status.items == 500 and status.users == 200 and status.dimension == 16
        assert status.bytes_mapped > 0 and status.activated_at_unix_ms > 0
        assert [r.version for r in status.retained] == ["snap-a"] and status.rollback_version == ""

        # Identical re-publish: a no-op.
        again = publish(admin, snaps["a"][0])
        assert again.already_present and again.bytes_written == 0
    finally:
        channel.close()
        server.stop()


def test_bad_publishes_are_refused_and_active_version_unchanged(snaps, tmp_path):
    root = tmp_path / "root"
    server, channel, admin, ranker = start(snaps, root)
    try:
        publish(admin, snaps["a"][0], activate=True)
        b_dir = snaps["b"][0]

        def flip(chunks):
            index = next(i for i, c in enumerate(chunks) if c.path == "item_vectors.vec") + 1
            data = bytearray(chunks[index].data)
            data[7] ^= 0x20
            chunks[index].data = bytes(data)

        def wrong_checksum(header):
            header.files[0].xxh64 = "0123456789abcdef"

        def missing_file(header):
            del header.files[-1]

        cases = [
            ("corrupt chunk", dict(alter_chunks=flip), grpc.StatusCode.INVALID_ARGUMENT, "checksum"),
            ("wrong checksum", dict(alter_header=wrong_checksum), grpc.StatusCode.INVALID_ARGUMENT, "manifest says"),
            ("truncated upload", dict(alter_chunks=lambda c: c.pop()), grpc.StatusCode.INVALID_ARGUMENT, "truncated"),
            ("missing file", dict(alter_header=missing_file), grpc.StatusCode.INVALID_ARGUMENT, "missing"),
        ]
        for name, kwargs, expected, fragment in cases:
            code, details = code_of(publish, admin, b_dir, **kwargs)
            assert code == expected, (name, code, details)
            assert fragment in details, (name, details)
            assert versions_in(root) == ["snap-a"], name
            assert os.listdir(root / ".staging") == [], name
            assert ranker.Rank(pb.RankRequest(user_id="u_1"), timeout=5).snapshot_version == "snap-a"

        code, details = code_of(publish, admin, snaps["c"][0])
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "dimension 8" in details

        # Different content under an existing version name.
        other = snaps["base"] / "other" / "snap-a"
        other.parent.mkdir(exist_ok=True)
        subprocess.run(
            [rankctl_binary(), "synth", "--out", str(snaps["base"] / "other" / "in"), "--snapshot", str(other),
             "--users", "50", "--items", "100", "--dim", "16", "--categories", "2", "--seed", "9",
             "--ef-construction", "20", "--quiet"], check=True, capture_output=True, timeout=300)
        code, details = code_of(publish, admin, other)
        assert code == grpc.StatusCode.ALREADY_EXISTS
        # rankctl stops sending once the server has refused and reports the server's status.
        out = subprocess.run(
            [rankctl_binary(), "publish", str(other), "--server", server.address, "--chunk-bytes", "4096",
             "--token-file", str(snaps["token"])], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "ALREADY_EXISTS" in out.stderr, out.stderr

        code, _ = code_of(admin.Activate, apb.ActivateRequest(version="no-such-version"), metadata=AUTH, timeout=5)
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = code_of(admin.Rollback, apb.RollbackRequest(), metadata=AUTH, timeout=5)
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert admin.Status(apb.StatusRequest(), metadata=AUTH, timeout=5).active_version == "snap-a"
    finally:
        channel.close()
        server.stop()


def test_rankctl_publish_activate_rollback_and_restart_on_persisted_version(snaps, tmp_path):
    root = tmp_path / "root"
    server, channel, admin, ranker = start(snaps, root)
    env = dict(os.environ, RANKD_ADMIN_TOKEN=TOKEN)

    def rankctl(*args):
        out = subprocess.run([rankctl_binary(), *args, "--server", server.address], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    try:
        assert "active: snap-a" in rankctl("publish", str(snaps["a"][0]), "--activate")
        assert "published snap-b" in rankctl("publish", str(snaps["b"][0]))
        assert "active: snap-b" in rankctl("activate", "snap-b")
        assert ranker.Rank(pb.RankRequest(user_id="u_1"), timeout=5).snapshot_version == "snap-b"
        assert "rollback target: snap-a" in rankctl("status")
        assert "active: snap-a" in rankctl("rollback")
        assert ranker.Rank(pb.RankRequest(user_id="u_1"), timeout=5).snapshot_version == "snap-a"
        status = json.loads(rankctl("status", "--json"))
        assert status["activeVersion"] == "snap-a" and status["activatedBy"] == "rollback"
        assert sorted(r["version"] for r in status["retained"]) == ["snap-a", "snap-b"]
        # A wrong token from --token-file is refused.
        bad = tmp_path / "bad-token"
        bad.write_text("nope")
        out = subprocess.run([rankctl_binary(), "status", "--server", server.address, "--token-file", str(bad)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "PERMISSION_DENIED" in out.stderr
    finally:
        channel.close()
        server.stop()

    # Restart: the persisted active version (snap-a, not the newest) serves again.
    server, channel, admin, ranker = start(snaps, root)
    try:
        wait_for_rank(ranker)
        assert ranker.Rank(pb.RankRequest(user_id="u_1"), timeout=5).snapshot_version == "snap-a"
    finally:
        channel.close()
        server.stop()


def wait_for_rank(ranker, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ranker.Rank(pb.RankRequest(user_id="u_1"), timeout=5)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def snapshot_mappings(pid):
    """Mappings of item_vectors.vec in the process (one per snapshot still mapped), by directory."""
    mapped = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].endswith("/item_vectors.vec"):
            mapped.append(str(Path(parts[5]).parent))
    return mapped


def test_twenty_activations_under_continuous_traffic(snaps, tmp_path):
    root = tmp_path / "root"
    server, channel, admin, _ = start(snaps, root)
    catalogues = {"snap-a": snaps["a"][1], "snap-b": snaps["b"][1]}
    try:
        publish(admin, snaps["a"][0], activate=True)
        publish(admin, snaps["b"][0])
        stop = threading.Event()
        results = {"calls": 0, "versions": set(), "failures": [], "mismatches": []}
        lock = threading.Lock()

        def client(seed):
            # One channel (HTTP/2 connection) per client thread.
            with grpc.insecure_channel(server.address) as own:
                stub = rpc.RankerStub(own)
                n = 0
                while not stop.is_set():
                    n += 1
                    request = pb.RankRequest(user_id=f"u_{(seed * 31 + n) % 200}", k=10)
                    try:
                        reply = stub.Rank(request, timeout=5)
                    except grpc.RpcError as error:
                        with lock:
                            results["failures"].append(f"{error.code()}: {error.details()}")
                        continue
                    catalogue = catalogues.get(reply.snapshot_version)
                    bad = [i.item_id for i in reply.items
                           if catalogue is None or catalogue.get(i.item_id) != (i.category, i.brand)]
                    with lock:
                        results["calls"] += 1
                        results["versions"].add(reply.snapshot_version)
                        if bad:
                            results["mismatches"].append((reply.snapshot_version, bad[:3]))

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        mapped_counts = []
        for index in range(20):
            version = "snap-b" if index % 2 == 0 else "snap-a"
            reply = admin.Activate(apb.ActivateRequest(version=version), metadata=AUTH, timeout=60)
            assert reply.active_version == version
            mapped_counts.append(len(snapshot_mappings(server.proc.pid)))
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

        assert results["failures"] == []
        assert results["mismatches"] == []
        assert results["calls"] > 100
        assert results["versions"] == {"snap-a", "snap-b"}
        # Old mappings are released: right after a swap the new one and the replaced one (until
        # its last request ends and the releaser drops it), never an accumulation; once traffic
        # stops, only the active one.
        assert max(mapped_counts) <= 3, mapped_counts
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            status = admin.Status(apb.StatusRequest(), metadata=AUTH, timeout=5)
            if status.mapped_snapshots == 1 and len(snapshot_mappings(server.proc.pid)) == 1:
                break
            time.sleep(0.05)
        assert status.mapped_snapshots == 1 and status.active_version == "snap-a"
        assert snapshot_mappings(server.proc.pid) == [str(root / "snap-a")]
    finally:
        channel.close()
        server.stop()


def test_sigkill_mid_publish_and_mid_activation_restart_serves_previous(snaps, tmp_path):
    root = tmp_path / "root"
    server, channel, admin, ranker = start(snaps, root)
    try:
        publish(admin, snaps["a"][0], activate=True)

        def kill():
            # Half the chunks are on the server: staging holds a partial upload.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any((root / ".staging").iterdir()):
                time.sleep(0.01)
            assert any((root / ".staging").iterdir())
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait()

        with pytest.raises(grpc.RpcError):
            publish(admin, snaps["b"][0], chunk=4096, stall=kill)
    finally:
        channel.close()
        server.stop()

    server, channel, admin, ranker = start(snaps, root)
    try:
        assert wait_for_rank(ranker).snapshot_version == "snap-a"
        assert os.listdir(root / ".staging") == []
        assert versions_in(root) == ["snap-a"]
        publish(admin, snaps["b"][0])
        # Kill right after asking for an activation: the restart serves one whole version, A or B.
        future = admin.Activate.future(apb.ActivateRequest(version="snap-b"), metadata=AUTH, timeout=30)
        time.sleep(0.005)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        try:
            future.result()
        except grpc.RpcError:
            pass
    finally:
        channel.close()
        server.stop()

    server, channel, admin, ranker = start(snaps, root)
    try:
        version = wait_for_rank(ranker).snapshot_version
        assert version in ("snap-a", "snap-b")
        assert json.loads((root / ".active").read_text())["version"] == version
        assert os.listdir(root / ".staging") == []
    finally:
        channel.close()
        server.stop()


def test_directory_mode_activates_a_version_once_its_manifest_moves_in(snaps, tmp_path):
    root = tmp_path / "root"
    server, channel, admin, ranker = start(snaps, root, "--watch-root", "--watch-interval", "0.1")
    try:
        publish(admin, snaps["a"][0], activate=True)
        # A job writes every binary file, then moves the manifest in last.
        target = root / "snap-b"
        target.mkdir()
        for f in snaps["b"][0].iterdir():
            if f.name != "manifest.json":
                shutil.copy(f, target / f.name)
        time.sleep(0.5)
        assert ranker.Rank(pb.RankRequest(user_id="u_1"), timeout=5).snapshot_version == "snap-a"
        shutil.copy(snaps["b"][0] / "manifest.json", tmp_path / "manifest.json")
        os.rename(tmp_path / "manifest.json", target / "manifest.json")
        deadline = time.monotonic() + 10
        while ranker.Rank(pb.RankRequest(user_id="u_1"), timeout=5).snapshot_version != "snap-b":
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        assert admin.Status(apb.StatusRequest(), metadata=AUTH, timeout=5).activated_by == "watch"
    finally:
        channel.close()
        server.stop()
