"""Issue 22 end to end: ranking.v1.Ranker/Related and RankBatch with a stock client (grpcio), the
RankBatch stream's flow control against a raw HTTP/2 client that never reads, and
`rankctl rank-batch` resumed after a real SIGKILL."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
import pytest

from conftest import RankdProcess, rankctl_binary, wait_until_ranking
from ranking.v1 import ranker_pb2 as pb
from ranking.v1 import ranker_pb2_grpc as rpc


@pytest.fixture(scope="module")
def demo():
    root = Path(tempfile.mkdtemp(prefix="rankd-surfaces-"))
    subprocess.run(
        [rankctl_binary(), "synth", "--out", str(root / "in"), "--snapshot", str(root / "snap"), "--users", "600",
         "--items", "1500", "--dim", "16", "--categories", "6", "--seed", "22", "--ef-construction", "40",
         "--quiet"],
        check=True, capture_output=True, timeout=600)
    items = {}
    for line in (root / "in" / "items.jsonl").read_text().splitlines():
        item = json.loads(line)
        items[item["id"]] = item
    users = (root / "in" / "users.txt").read_text().split()
    server = RankdProcess("--snapshot", str(root / "snap")).start()
    channel = grpc.insecure_channel(server.address)
    wait_until_ranking(channel)
    yield root, rpc.RankerStub(channel), items, users, server
    channel.close()
    server.stop()


def test_related_excludes_seeds_names_nearest_seed_and_obeys_rules(demo):
    _, stub, items, users, _ = demo
    seeds = ["sku-10", "sku-700"]
    category = items["sku-10"]["category"]
    rules = pb.RankRequest(k=12, explain=True, diversity=pb.Diversity(method=pb.DIVERSITY_METHOD_MMR))
    response = stub.Related(pb.RelatedRequest(seed_item_ids=seeds, rules=rules), timeout=5)
    assert response.strategy == pb.STRATEGY_RELATED
    assert len(response.items) == 12
    ids = [item.item_id for item in response.items]
    assert not set(ids) & set(seeds)
    for item in response.items:
        assert item.explanation.similar_to_item_id in seeds
        assert item.explanation.reason.startswith("similar to " + item.explanation.similar_to_item_id)
    # The same filter, pin and exclusion machinery as Rank.
    rules = pb.RankRequest(
        k=6, filter=pb.Filter(include_categories=[category], exclude_item_ids=[ids[0]]),
        pins=[pb.Pin(item_id=seeds[1], position=0)])
    filtered = stub.Related(pb.RelatedRequest(seed_item_ids=seeds[:1], rules=rules), timeout=5)
    assert filtered.items and all(items[i.item_id]["category"] == category for i in filtered.items)
    assert ids[0] not in [i.item_id for i in filtered.items]
    assert "sku-10" not in [i.item_id for i in filtered.items]
    # A pinned seed is still never returned: the pin is dropped as excluded.
    assert [p.item_id for p in filtered.dropped_pins] == [seeds[1]]


def test_related_with_user_blends_and_consent_none_ignores_the_user(demo):
    _, stub, _, users, _ = demo
    seeds = ["sku-42"]
    plain = stub.Related(pb.RelatedRequest(seed_item_ids=seeds, rules=pb.RankRequest(k=20)), timeout=5)
    mixed = [stub.Related(pb.RelatedRequest(seed_item_ids=seeds, rules=pb.RankRequest(k=20, user_id=u)), timeout=5)
             for u in users[:5]]
    assert any([i.item_id for i in m.items] != [i.item_id for i in plain.items] for m in mixed)
    for user in users[:5]:
        refused = stub.Related(
            pb.RelatedRequest(seed_item_ids=seeds, rules=pb.RankRequest(k=20, user_id=user, consent=pb.CONSENT_NONE)),
            timeout=5)
        assert [i.item_id for i in refused.items] == [i.item_id for i in plain.items]


@pytest.mark.parametrize("seeds, rules, field", [
    (["sku-1", "no-such-item"], pb.RankRequest(), "seed_item_ids[1]: unknown item 'no-such-item'"),
    ([], pb.RankRequest(), "seed_item_ids"),
    (["sku-1", "sku-1"], pb.RankRequest(), "seed_item_ids: duplicate"),
    (["sku-1"], pb.RankRequest(recent_item_ids=["sku-2"]), "rules.recent_item_ids"),
    (["sku-1"], pb.RankRequest(k=5000), "k:"),
])
def test_related_invalid_arguments_name_the_field(demo, seeds, rules, field):
    _, stub, _, _, _ = demo
    with pytest.raises(grpc.RpcError) as error:
        stub.Related(pb.RelatedRequest(seed_item_ids=seeds, rules=rules), timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.value.details()


def test_rank_batch_stream_matches_rank_per_user_in_order(demo):
    _, stub, _, users, _ = demo
    rules = pb.RankRequest(k=10, diversity=pb.Diversity(method=pb.DIVERSITY_METHOD_MMR))
    chosen = users[:40] + ["nobody-at-all"]
    results = list(stub.RankBatch(pb.RankBatchRequest(user_ids=chosen, rules=rules), timeout=30))
    assert [r.user_id for r in results] == chosen
    for result in results[:5] + results[-1:]:
        single = pb.RankRequest()
        single.CopyFrom(rules)
        single.user_id = result.user_id
        assert result.response == stub.Rank(single, timeout=5)
    assert results[-1].response.strategy == pb.STRATEGY_POPULAR
    with pytest.raises(grpc.RpcError) as error:
        list(stub.RankBatch(pb.RankBatchRequest(user_ids=users[:2], rules=pb.RankRequest(user_id="x")), timeout=5))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "rules.user_id" in error.value.details()


def _cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_rank_batch_stalled_reader_stops_the_server_ranking(demo):
    """A raw HTTP/2 client asks for 200 000 rankings (k 100) and never reads a byte nor opens its
    windows: the server must stop ranking once the stream's window and its 64 KiB queue are full
    (no CPU, no memory growth), not rank everything into memory. Without flow control the job
    would burn a core for minutes and queue ~0.5 GB."""
    import h2.config
    import h2.connection

    _, _, _, users, server = demo
    request = pb.RankBatchRequest(user_ids=(users * 400)[:200_000], rules=pb.RankRequest(k=100)).SerializeToString()
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    connection.initiate_connection()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        connection.send_headers(1, [
            (":method", "POST"), (":scheme", "http"), (":path", "/ranking.v1.Ranker/RankBatch"),
            (":authority", f"127.0.0.1:{server.port}"), ("content-type", "application/grpc"), ("te", "trailers")])
        body = b"\x00" + len(request).to_bytes(4, "big") + request
        sock.sendall(connection.data_to_send())
        # The request is bigger than the default 64 KiB windows: send as the server opens them.
        sent = 0
        sock.settimeout(5)
        while sent < len(body):
            window = min(connection.local_flow_control_window(1), connection.max_outbound_frame_size)
            if window == 0:
                for event in connection.receive_data(sock.recv(65536)):
                    pass
                sock.sendall(connection.data_to_send())
                continue
            chunk = body[sent:sent + window]
            sent += len(chunk)
            connection.send_data(1, chunk, end_stream=sent == len(body))
            sock.sendall(connection.data_to_send())
        # Now never read again. Let the server fill the window and its queue, then watch it idle.
        time.sleep(1.0)
        ticks, rss = _cpu_ticks(server.proc.pid), _rss_kib(server.proc.pid)
        time.sleep(2.0)
        busy = _cpu_ticks(server.proc.pid) - ticks
        grown = _rss_kib(server.proc.pid) - rss
        assert busy <= 20, f"server used {busy} ticks of CPU in 2 s with the reader stalled"
        assert grown < 16 * 1024, f"server RSS grew by {grown} KiB with the reader stalled"
    finally:
        sock.close()
    # The server is fine afterwards (the stalled call is cancelled with its connection).
    channel = grpc.insecure_channel(server.address)
    assert len(rpc.RankerStub(channel).Rank(pb.RankRequest(k=3), timeout=5).items) == 3
    channel.close()


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("rules, field", [
    ({"rotation": {"rate": 0.2}}, "rules.rotation"),
    ({"frequencyCaps": [{"max_impressions": 2, "window_seconds": 60}]}, "rules.frequencyCaps"),
    ({"filter": {"exclude_purchased_within_seconds": 3600}}, "rules.filter.exclude_purchased_within_seconds"),
])
def test_rank_batch_offline_refuses_rules_that_need_recorded_events(demo, rules, field):
    root = demo[0]
    work = Path(tempfile.mkdtemp(prefix="rankd-batch-rules-", dir=root))
    (work / "users.txt").write_text("u_1\n")
    (work / "rules.json").write_text(json.dumps(rules))
    done = subprocess.run([rankctl_binary(), "rank-batch", "--snapshot", str(root / "snap"), "--users",
                           str(work / "users.txt"), "--rules", str(work / "rules.json"), "--out",
                           str(work / "out.jsonl"), "--skip-checksums"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert field in done.stderr and "RankBatch RPC" in done.stderr, done.stderr
    assert not (work / "out.jsonl").exists() or (work / "out.jsonl").read_text() == ""


def test_rank_batch_offline_resumes_after_sigkill_without_repeats_or_gaps(demo):
    root, stub, _, users, _ = demo
    work = Path(tempfile.mkdtemp(prefix="rankd-batch-", dir=root))
    wanted = [f"{u}" for u in users] + [f"cold-{i}" for i in range(1400)]
    (work / "users.txt").write_text("\n".join(wanted + users[:10]) + "\n")  # duplicates are ranked once
    rules = {"k": 20, "diversity": {"method": "DIVERSITY_METHOD_MMR", "tradeoff": 0.7}, "filter": {"inStockOnly": True}}
    (work / "rules.json").write_text(json.dumps(rules))
    out = work / "results.jsonl"
    command = [rankctl_binary(), "rank-batch", "--snapshot", str(root / "snap"), "--users", str(work / "users.txt"),
               "--rules", str(work / "rules.json"), "--out", str(out), "--chunk", "8", "--skip-checksums"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 20_000):
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    partial = out.read_bytes().count(b"\n")
    assert 0 < partial < len(wanted), f"kill landed outside the run ({partial} of {len(wanted)} lines)"
    # Simulate the worst case too: a torn last line.
    with open(out, "ab") as f:
        f.write(b'{"user_id":"torn')
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "users/s" in finished.stderr and "ETA" in finished.stderr
    lines = _lines(out)
    ids = [line["user_id"] for line in lines]
    assert len(ids) == len(set(ids)), "a user was ranked twice"
    assert set(ids) == set(wanted), "a user was skipped"
    # Same rules as a Rank request: identical items to the server's Rank for the same snapshot.
    by_user = {line["user_id"]: line for line in lines}
    for user in users[:3] + ["cold-7"]:
        single = stub.Rank(pb.RankRequest(
            user_id=user, k=20, diversity=pb.Diversity(method=pb.DIVERSITY_METHOD_MMR, tradeoff=pb.FloatValue(value=0.7)),
            filter=pb.Filter(in_stock_only=True)), timeout=5)
        assert [i["item_id"] for i in by_user[user]["items"]] == [i.item_id for i in single.items]
    # A finished file resumes to nothing.
    again = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "ranked 0 users" in again.stderr
    assert out.read_bytes().count(b"\n") == len(wanted)
