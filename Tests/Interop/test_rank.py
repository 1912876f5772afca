"""ranking.v1.Ranker/Rank end to end with a stock client (grpcio) against a real rankd serving a
snapshot that `rankctl synth` generated: every strategy path, rules, experiments, consent, and
every invalid field."""

import json
import subprocess
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from conftest import RankdProcess, rankctl_binary
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ranking.v1 import ranker_pb2 as pb
from ranking.v1 import ranker_pb2_grpc as rpc

CONFIG = {
    "k": 10, "poolSize": 120, "method": "mmr", "tradeoff": 0.7,
    "experiments": [{"name": "exp", "salt": "interop", "arms": [
        {"name": "control", "weight": 50},
        {"name": "dpp", "weight": 30, "method": "dpp", "tradeoff": 0.6},
        {"name": "holdout", "weight": 20, "holdout": True}]}],
}


@pytest.fixture(scope="module")
def demo():
    root = Path(tempfile.mkdtemp(prefix="rankd-interop-"))
    config = root / "ranking.json"
    config.write_text(json.dumps(CONFIG))
    subprocess.run(
        [rankctl_binary(), "synth", "--out", str(root / "in"), "--snapshot", str(root / "snap"), "--users", "400",
         "--items", "1500", "--dim", "16", "--categories", "6", "--seed", "5", "--ranking-config", str(config),
         "--ef-construction", "60"],
        check=True, capture_output=True, timeout=600)
    items = {}
    for line in (root / "in" / "items.jsonl").read_text().splitlines():
        item = json.loads(line)
        items[item["id"]] = item
    users = (root / "in" / "users.txt").read_text().split()
    server = RankdProcess("--snapshot", str(root / "snap")).start()
    channel = grpc.insecure_channel(server.address)
    stub = rpc.RankerStub(channel)
    # Listening comes before the snapshot is active: wait for SERVING.
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(200):
        if health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING:
            break
        import time
        time.sleep(0.05)
    yield stub, items, users, server, health
    server.stop()


def arm_of(stub, user):
    return stub.Rank(pb.RankRequest(user_id=user, k=1), timeout=5).experiment_arm


def test_health_reports_serving_for_server_and_ranker(demo):
    _, _, _, _, health = demo
    for service in ["", "ranking.v1.Ranker"]:
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_every_strategy_path(demo):
    stub, _, users, _, _ = demo
    control = next(u for u in users if arm_of(stub, u) == "control")
    cases = [
        (pb.RankRequest(user_id=control), pb.STRATEGY_PERSONALIZED),
        (pb.RankRequest(user_id=control, recent_item_ids=["sku-1", "sku-2"]), pb.STRATEGY_BLENDED),
        (pb.RankRequest(user_id="stranger", recent_item_ids=["sku-1"]), pb.STRATEGY_SESSION),
        (pb.RankRequest(user_id="stranger"), pb.STRATEGY_POPULAR),
        (pb.RankRequest(user_id=control, consent=pb.CONSENT_NONE), pb.STRATEGY_NON_PERSONALIZED),
    ]
    for request, strategy in cases:
        reply = stub.Rank(request, timeout=5)
        assert reply.strategy == strategy, request
        assert len(reply.items) == 10
        assert len({i.item_id for i in reply.items}) == 10
        assert reply.snapshot_version == "snap"


def test_filters_and_rules_hold_end_to_end(demo):
    stub, items, users, _, _ = demo
    category = items["sku-3"]["category"]
    reply = stub.Rank(pb.RankRequest(
        user_id=users[3], k=12,
        filter=pb.Filter(include_categories=[category], in_stock_only=True, max_price=pb.DoubleValue(value=80)),
    ), timeout=5)
    assert reply.items
    for item in reply.items:
        meta = items[item.item_id]
        assert meta["category"] == category == item.category
        assert meta["in_stock"] is True
        assert meta["price"] <= 80
    capped = stub.Rank(pb.RankRequest(user_id=users[4], k=12, diversity=pb.Diversity(max_per_category=2)), timeout=5)
    counts = Counter(items[i.item_id]["category"] for i in capped.items)
    assert max(counts.values()) <= 2
    assert capped.fewer_than_k == (len(capped.items) < 12)


def test_pins_and_unknown_ids(demo):
    stub, items, users, _, _ = demo
    pinned = next(i for i, m in items.items() if m["in_stock"])
    reply = stub.Rank(pb.RankRequest(
        user_id=users[5], k=6, recent_item_ids=["ghost-1"],
        pins=[pb.Pin(item_id=pinned, position=3), pb.Pin(item_id="ghost-2", position=1)],
    ), timeout=5)
    assert reply.items[3].item_id == pinned
    assert set(reply.unknown_item_ids) == {"ghost-1", "ghost-2"}
    assert [(d.item_id, d.reason) for d in reply.dropped_pins] == [("ghost-2", "unknown item")]


def test_explanations_when_asked(demo):
    stub, _, users, _, _ = demo
    reply = stub.Rank(pb.RankRequest(user_id=users[6], explain=True, boosts=[pb.Boost(tag="sale", add=0.5)]),
                      timeout=5)
    assert all(i.HasField("explanation") and i.explanation.reason for i in reply.items)
    plain = stub.Rank(pb.RankRequest(user_id=users[6]), timeout=5)
    assert not any(i.HasField("explanation") for i in plain.items)


def test_experiment_assignment_is_stable_and_close_to_weights(demo):
    stub, _, _, _, _ = demo
    users = [f"visitor-{i}" for i in range(10_000)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        arms = list(pool.map(lambda u: arm_of(stub, u), users))
    shares = Counter(arms)
    assert abs(shares["control"] / 10_000 - 0.5) < 0.02
    assert abs(shares["dpp"] / 10_000 - 0.3) < 0.02
    assert abs(shares["holdout"] / 10_000 - 0.2) < 0.02
    again = [arm_of(stub, u) for u in users[:300]]
    assert again == arms[:300]
    holdout = users[arms.index("holdout")]
    assert stub.Rank(pb.RankRequest(user_id=holdout), timeout=5).strategy == pb.STRATEGY_POPULAR
    forced = stub.Rank(pb.RankRequest(user_id=users[0], experiment_arm="dpp"), timeout=5)
    assert forced.experiment_arm == "dpp"


def test_consent_none_never_uses_the_user(demo):
    stub, _, users, _, _ = demo
    lists = {tuple(i.item_id for i in stub.Rank(
        pb.RankRequest(user_id=u, consent=pb.CONSENT_NONE, recent_item_ids=["sku-9"]), timeout=5).items)
        for u in users[:20]}
    assert len(lists) == 1
    personal = {tuple(i.item_id for i in stub.Rank(pb.RankRequest(user_id=u), timeout=5).items) for u in users[:20]}
    assert len(personal) > 1


@pytest.mark.parametrize("request_fields, field", [
    (dict(k=1001), "k"),
    (dict(candidate_pool=6000), "candidate_pool"),
    (dict(k=50, candidate_pool=20), "candidate_pool"),
    (dict(user_id="u" * 300), "user_id"),
    (dict(recent_item_ids=["x"] * 101), "recent_item_ids"),
    (dict(recent_item_ids=[""]), "recent_item_ids[0]"),
    (dict(diversity=pb.Diversity(tradeoff=pb.FloatValue(value=2))), "diversity.tradeoff"),
    (dict(diversity=pb.Diversity(spread_window=3)), "spread_window"),
    (dict(diversity=pb.Diversity(spread_window=3, spread_max_per_category=3)), "spread_max_per_category"),
    (dict(filter=pb.Filter(min_price=pb.DoubleValue(value=9), max_price=pb.DoubleValue(value=1))), "min_price"),
    (dict(filter=pb.Filter(include_categories=["a"], exclude_categories=["a"])), "include_categories"),
    (dict(boosts=[pb.Boost(category="a", multiply=pb.FloatValue(value=-1))]), "boosts[0].multiply"),
    (dict(boosts=[pb.Boost(add=1)]), "boosts[0]"),
    (dict(pins=[pb.Pin(item_id="sku-1", position=10)]), "pins[0].position"),
    (dict(pins=[pb.Pin(item_id="sku-1", position=1), pb.Pin(item_id="sku-2", position=1)]), "pins[1].position"),
    (dict(experiment_arm="no-such-arm"), "experiment_arm"),
])
def test_every_invalid_field_is_invalid_argument_naming_it(demo, request_fields, field):
    stub, _, _, _, _ = demo
    with pytest.raises(grpc.RpcError) as info:
        stub.Rank(pb.RankRequest(**request_fields), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in info.value.details()


def test_malformed_body_is_invalid_argument(demo):
    _, _, _, server, _ = demo
    raw = grpc.insecure_channel(server.address).unary_unary("/ranking.v1.Ranker/Rank")
    with pytest.raises(grpc.RpcError) as info:
        raw(b"\x12\x05\x01", timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "RankRequest" in info.value.details()


def test_rank_without_a_snapshot_is_unavailable():
    server = RankdProcess().start()
    try:
        stub = rpc.RankerStub(grpc.insecure_channel(server.address))
        with pytest.raises(grpc.RpcError) as info:
            stub.Rank(pb.RankRequest(user_id="u"), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()
