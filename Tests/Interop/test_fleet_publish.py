"""`rankctl publish/activate/status --servers a,b,c` against three real rankd replicas, each with its
own snapshot root: the fleet publish is all or nothing. An upload refused by one replica activates
nothing anywhere; an activation refused by one replica rolls back the replicas that had switched;
`status --servers` shows the versions side by side and fails when they differ."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import grpc
import pytest

from conftest import RankdProcess, rankctl_binary, synth
from ranking.v1 import ranker_pb2 as pb
from ranking.v1 import ranker_pb2_grpc as rpc
from test_publish import TOKEN, wait_for_rank


@pytest.fixture(scope="module")
def fleet_snaps():
    base = Path(tempfile.mkdtemp(prefix="rankd-fleet-publish-"))
    a, _ = synth(base, "fleet-a", seed=11, items=300, categories=3)
    b, _ = synth(base, "fleet-b", seed=12, items=400, categories=4)
    token = base / "admin-token"
    token.write_text(TOKEN + "\n")
    other = base / "other-token"
    other.write_text("a-different-token\n")
    yield {"base": base, "a": a, "b": b, "token": token, "other": other}
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def replicas(fleet_snaps, tmp_path):
    """Starts replicas on their own roots: make(token_files) -> [(RankdProcess, root)]."""
    started = []

    def make(*tokens):
        for token in tokens:
            root = tmp_path / f"root-{len(started)}"
            server = RankdProcess("--snapshot-root", str(root), "--admin-token-file", str(token)).start()
            started.append((server, root))
        return list(started)

    yield make
    for server, _ in started:
        server.stop()


def rankctl(*args):
    env = dict(os.environ, RANKD_ADMIN_TOKEN=TOKEN)
    return subprocess.run([rankctl_binary(), *args], env=env, capture_output=True, text=True, timeout=120)


def servers_arg(fleet):
    return ",".join(server.address for server, _ in fleet)


def served_version(server):
    with grpc.insecure_channel(server.address) as channel:
        return wait_for_rank(rpc.RankerStub(channel)).snapshot_version


def fleet_status(fleet):
    out = rankctl("status", "--servers", servers_arg(fleet), "--json")
    return out, json.loads(out.stdout)


def test_fleet_publish_activates_everywhere_and_status_shows_it(fleet_snaps, replicas):
    fleet = replicas(fleet_snaps["token"], fleet_snaps["token"], fleet_snaps["token"])
    servers = servers_arg(fleet)

    out = rankctl("publish", str(fleet_snaps["a"]), "--servers", servers, "--activate")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "active on all 3 replicas: fleet-a" in out.stdout
    assert out.stdout.count("published fleet-a:") == 3
    assert [served_version(server) for server, _ in fleet] == ["fleet-a"] * 3

    out = rankctl("publish", str(fleet_snaps["b"]), "--servers", servers, "--activate")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("(was fleet-a)") == 3
    assert [served_version(server) for server, _ in fleet] == ["fleet-b"] * 3

    # Side by side: one row per replica, and agreement.
    out = rankctl("status", "--servers", servers)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:2] == ["REPLICA", "ACTIVE"]
    for server, _ in fleet:
        row = next(line for line in lines if line.startswith(server.address))
        assert row.split()[1] == "fleet-b" and row.split()[4] == "fleet-a"
    assert "all 3 replicas active on fleet-b" in out.stdout
    out, status = fleet_status(fleet)
    assert out.returncode == 0 and status["consistent"] is True
    assert [r["status"]["activeVersion"] for r in status["replicas"]] == ["fleet-b"] * 3

    # Again, after a replica joined empty: only it is written to and activated (a reconcile).
    joined = replicas(fleet_snaps["token"])[3][0]
    out = rankctl("publish", str(fleet_snaps["b"]), "--servers", servers + "," + joined.address, "--activate")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("already published") == 3 and out.stdout.count("already active: fleet-b") == 3
    assert f"{joined.address}: active: fleet-b (was none)" in out.stdout
    assert served_version(joined) == "fleet-b"

    # Fleet rollback: every replica one step back.
    out = rankctl("rollback", "--servers", servers)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [served_version(server) for server, _ in fleet] == ["fleet-a"] * 3

    # A replica that is down: status names it and fails.
    fleet[1][0].stop()
    out = rankctl("status", "--servers", servers)
    assert out.returncode != 0 and "UNREACHABLE" in out.stdout and fleet[1][0].address in out.stderr


def test_upload_refused_by_one_replica_activates_nothing(fleet_snaps, replicas):
    # The third replica has another admin token: its upload is refused (PERMISSION_DENIED).
    fleet = replicas(fleet_snaps["token"], fleet_snaps["token"], fleet_snaps["other"])
    good = fleet[:2]
    out = rankctl("publish", str(fleet_snaps["a"]), "--servers", servers_arg(good), "--activate")
    assert out.returncode == 0, out.stdout + out.stderr

    out = rankctl("publish", str(fleet_snaps["b"]), "--servers", servers_arg(fleet), "--activate")
    assert out.returncode != 0
    assert "PERMISSION_DENIED" in out.stdout and "nothing was activated" in out.stderr, out.stdout + out.stderr
    assert "activation" not in out.stdout
    # The uploads that succeeded are in their roots, but nothing switched.
    for server, root in good:
        assert (root / "fleet-b" / "manifest.json").exists()
        assert served_version(server) == "fleet-a"
    assert not (fleet[2][1] / "fleet-b").exists()


def test_activation_refused_by_one_replica_rolls_back_the_others(fleet_snaps, replicas):
    fleet = replicas(fleet_snaps["token"], fleet_snaps["token"], fleet_snaps["token"])
    servers = servers_arg(fleet)
    out = rankctl("publish", str(fleet_snaps["a"]), "--servers", servers, "--activate")
    assert out.returncode == 0, out.stdout + out.stderr

    # The third replica already holds fleet-b, but a byte of it rotted on disk: its upload is a
    # no-op (identical manifest), and its activation verifies the files and refuses them.
    _, bad_root = fleet[2]
    shutil.copytree(fleet_snaps["b"], bad_root / "fleet-b")
    vectors = bad_root / "fleet-b" / "item_vectors.vec"
    data = bytearray(vectors.read_bytes())
    data[len(data) // 2] ^= 0x10
    vectors.write_bytes(bytes(data))

    out = rankctl("publish", str(fleet_snaps["b"]), "--servers", servers, "--activate")
    assert out.returncode != 0, out.stdout
    text = out.stdout + out.stderr
    assert "already published" in out.stdout  # the third replica's upload
    assert f"{fleet[2][0].address}: activation FAILED" in out.stdout and "FAILED_PRECONDITION" in out.stdout, text
    for server, _ in fleet[:2]:
        assert f"{server.address}: rolled back to fleet-a" in out.stdout, text
    assert "activation of fleet-b failed on 1 of 3 replicas" in out.stderr, text
    # Every replica serves the version it served before, and the fleet agrees.
    assert [served_version(server) for server, _ in fleet] == ["fleet-a"] * 3
    out, status = fleet_status(fleet)
    assert out.returncode == 0 and status["consistent"] is True
    assert [r["status"]["activatedBy"] for r in status["replicas"]] == ["rollback", "rollback", "activate"]

    # `rankctl activate --servers` is all or nothing too.
    out = rankctl("activate", "fleet-b", "--servers", servers)
    assert out.returncode != 0 and out.stdout.count("rolled back to fleet-a") == 2, out.stdout + out.stderr
    assert [served_version(server) for server, _ in fleet] == ["fleet-a"] * 3
