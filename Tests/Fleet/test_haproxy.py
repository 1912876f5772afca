"""deploy/haproxy/rankd.cfg, run as shipped (replica lines and bind address replaced) in front of
three rankd replicas on loopback: Rank through HAProxy with the user id in `x-user-id` sticks to one
replica per user; a SIGKILLed replica fails only its users' calls in flight on it or sent to it in
the moment before HAProxy marks it down (counted), while its users move to the others; admin RPCs
are not routed."""

import shutil
import signal
import tempfile
import time
from pathlib import Path

import grpc
import pytest

from conftest import HAProxyProcess, RankdProcess, synth
from test_fleet import CLIENTS, USERS, Traffic, ranker_serving


@pytest.fixture(scope="module")
def haproxy_fleet():
    if not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()):
        pytest.fail("haproxy is not installed: `make fleet-test` installs it (apt package haproxy)")
    base = Path(tempfile.mkdtemp(prefix="rankd-haproxy-"))
    snapshot, catalogue = synth(base, "hap-v1", seed=41, items=500, categories=4, users=USERS)
    replicas, proxy = [], None
    try:
        for _ in range(3):
            replicas.append(RankdProcess("--snapshot", str(snapshot)).start())
        for replica in replicas:
            ranker_serving(replica.address)
        proxy = HAProxyProcess(base / "haproxy", [r.address for r in replicas]).start()
        yield {"replicas": replicas, "proxy": proxy, "catalogues": {"hap-v1": catalogue}}
    finally:
        if proxy:
            proxy.stop()
        for replica in replicas:
            replica.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_sticky_users_and_a_killed_replica_through_haproxy(haproxy_fleet):
    replicas, proxy = haproxy_fleet["replicas"], haproxy_fleet["proxy"]
    traffic = Traffic(proxy.address, haproxy_fleet["catalogues"])
    started = time.monotonic()
    traffic.start()
    try:
        time.sleep(1.5)
        victim = replicas[1]
        killed_at = time.monotonic()
        victim.stop(sig=signal.SIGKILL)
        time.sleep(2.0)
    finally:
        traffic.stop()
    records = traffic.snapshot()
    home = {}
    for r in records:
        if "error" not in r and r["end"] < killed_at:
            home.setdefault(r["user"], set()).add(r["replica"])
    assert all(len(seen) == 1 for seen in home.values()), "a user's calls spread over replicas"
    assert len({next(iter(s)) for s in home.values()}) == 3
    failures = [r for r in records if "error" in r]
    # In flight on the killed replica, or sent to it before HAProxy marked it down (after
    # error-limit 3 errors; HAProxy refuses those streams with REFUSED_STREAM, safe to retry).
    around_kill = [r for r in failures if r["end"] >= killed_at and r["start"] <= killed_at + 0.5
                   and victim.address in home.get(r["user"], ())]
    assert [r for r in failures if r not in around_kill] == [], failures[:5]
    assert len(around_kill) <= CLIENTS + 3
    moved = [r for r in records if "error" not in r and r["start"] > killed_at + 0.5
             and victim.address in home.get(r["user"], ())]
    assert moved and victim.address not in {r["replica"] for r in moved}
    assert not [r for r in records if "error" not in r and r["mixed"]]
    print(f"\nhaproxy: {len(records)} calls in {time.monotonic() - started:.1f} s, {len(failures)} failed "
          f"(all around the kill, by its users: {len(around_kill)}), {len(moved)} calls of its users served elsewhere")


def test_admin_rpcs_are_not_routed_through_haproxy(haproxy_fleet):
    from ranking.v1 import admin_pb2 as apb
    from ranking.v1 import admin_pb2_grpc as arpc

    with grpc.insecure_channel(haproxy_fleet["proxy"].address) as channel:
        with pytest.raises(grpc.RpcError) as error:
            arpc.SnapshotAdminStub(channel).Status(apb.StatusRequest(), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
