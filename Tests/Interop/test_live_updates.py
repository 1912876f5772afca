"""Live updates (ranking.v1.SnapshotAdmin UpdateItems / DeleteUser) end to end with a stock client
(grpcio) against a real rankd on a snapshot root: visibility in Rank, the refusals (each naming the
item and field), restart replay, and a SIGKILL loop while clients stream updates, after which every
acknowledged batch is served whole and no batch is served in part."""

import random
import shutil
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

from conftest import RankdProcess, synth_with_admin_token
from ranking.v1 import admin_pb2 as apb
from ranking.v1 import admin_pb2_grpc as arpc
from ranking.v1 import ranker_pb2 as pb
from ranking.v1 import ranker_pb2_grpc as rpc

TOKEN = "interop-live-token-0123456789"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture(scope="module")
def built():
    with synth_with_admin_token("live", seed=9, token=TOKEN) as made:
        yield made


def root_with_snapshot(built, tmp_path):
    """A snapshot root holding the built snapshot (rankd serves it at its first start)."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(built["snapshot"], root / built["snapshot"].name)
    return root


def start(built, root, *extra):
    server = RankdProcess("--snapshot-root", str(root), "--admin-token-file", str(built["token"]), *extra).start()
    channel = grpc.insecure_channel(server.address)
    ranker = rpc.RankerStub(channel)
    # rankd listens first and then loads the snapshot: wait until Rank serves.
    deadline = time.monotonic() + 30
    while True:
        try:
            ranker.Rank(pb.RankRequest(user_id="nobody", k=1), timeout=5)
            break
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    return server, channel, arpc.SnapshotAdminStub(channel), ranker


def code_of(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as error:
        call(*args, **kwargs)
    return error.value.code(), error.value.details()


def update(item_id, **fields):
    price = fields.pop("price", None)
    message = apb.ItemUpdate(item_id=item_id, **fields)
    if price is not None:
        message.price.value = price
    return message


def cold_start(ranker, **filter_fields):
    response = ranker.Rank(pb.RankRequest(user_id="nobody", k=50, filter=pb.Filter(**filter_fields)), timeout=10)
    return [item.item_id for item in response.items]


def price_filter(price):
    return {"min_price": pb.DoubleValue(value=price), "max_price": pb.DoubleValue(value=price)}


def test_updates_are_visible_refused_with_the_field_named_and_survive_restart(built, tmp_path):
    root = root_with_snapshot(built, tmp_path)
    server, channel, admin, ranker = start(built, root)
    try:
        request = apb.UpdateItemsRequest(items=[update("sku-1", removed=True)])
        assert code_of(admin.UpdateItems, request, timeout=5)[0] == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(admin.DeleteUser, apb.DeleteUserRequest(user_id="u_1"), timeout=5)[0] == \
            grpc.StatusCode.UNAUTHENTICATED

        top = cold_start(ranker)
        assert len(top) == 50
        removed = top[:5]
        result = admin.UpdateItems(
            apb.UpdateItemsRequest(items=[update(i, removed=True) for i in removed] + [update("no-such-sku", removed=True)]),
            metadata=AUTH, timeout=10)
        assert result.applied == 5 and list(result.unknown_item_ids) == ["no-such-sku"]
        assert result.snapshot_version == "snap-live" and result.sequence >= 1
        assert not set(cold_start(ranker)) & set(removed)

        # Stock and price: the first item still served goes out of stock and gets a unique price.
        target = cold_start(ranker)[0]
        admin.UpdateItems(apb.UpdateItemsRequest(items=[update(target, stock=apb.STOCK_OUT, price=43210.5)]),
                          metadata=AUTH, timeout=10)
        assert cold_start(ranker, **price_filter(43210.5)) == [target]
        assert cold_start(ranker, in_stock_only=True, **price_filter(43210.5)) == []

        # DeleteUser: acknowledged → the next Rank treats the user as unknown.
        assert ranker.Rank(pb.RankRequest(user_id="u_5"), timeout=10).strategy == pb.STRATEGY_PERSONALIZED
        deleted = admin.DeleteUser(apb.DeleteUserRequest(user_id="u_5"), metadata=AUTH, timeout=10)
        assert deleted.known_user
        assert ranker.Rank(pb.RankRequest(user_id="u_5"), timeout=10).strategy == pb.STRATEGY_POPULAR

        # Refusals name the item and the field; nothing of a refused batch applies.
        bad = [
            ([update("sku-2", removed=True), update("sku-3", price=float("nan"))], "items[1] (sku-3).price"),
            ([update("sku-3", price=-1.0)], "items[0] (sku-3).price"),
            ([update("sku-3", stock=7)], "items[0] (sku-3).stock"),
            ([update("sku-3", add_tags=["no-such-tag"])], "items[0] (sku-3).add_tags"),
            ([update("sku-3")], "items[0] (sku-3)"),
            ([update("")], "items[0].item_id"),
            ([update(f"sku-{i}", removed=True) for i in range(10_001)], "items: 10001"),
        ]
        for items, field in bad:
            code, details = code_of(admin.UpdateItems, apb.UpdateItemsRequest(items=items), metadata=AUTH, timeout=30)
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (field, details)
            assert field in details, (field, details)
        code, details = code_of(admin.UpdateItems, apb.UpdateItemsRequest(
            snapshot_version="snap-other", items=[update("sku-2", removed=True)]), metadata=AUTH, timeout=10)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "snapshot_version" in details
        # sku-2's removal was refused with its batch (the NaN price): the counts below show nothing of it.
        status = admin.Status(apb.StatusRequest(), metadata=AUTH, timeout=10)
        assert status.overlay_items == 6 and status.overlay_removed_items == 5
        assert status.overlay_deleted_users == 1 and status.overlay_log_bytes > 64
    finally:
        channel.close()
        server.stop()

    # A restart replays the log: the same items stay removed, the user stays deleted.
    server, channel, admin, ranker = start(built, root)
    try:
        assert not set(cold_start(ranker)) & set(removed)
        assert cold_start(ranker, **price_filter(43210.5)) == [target]
        assert ranker.Rank(pb.RankRequest(user_id="u_5"), timeout=10).strategy == pb.STRATEGY_POPULAR
        status = admin.Status(apb.StatusRequest(), metadata=AUTH, timeout=10)
        assert status.overlay_removed_items == 5 and status.overlay_deleted_users == 1
    finally:
        channel.close()
        server.stop()


BATCH = 10
GROUPS = 100
PRICE_BASE = 700_000.0


def batch_request(group, b):
    """Batch b sets the 10 items of `group` to the batch's unique price."""
    return apb.UpdateItemsRequest(
        items=[update(f"sku-{group * BATCH + j}", price=PRICE_BASE + b) for j in range(BATCH)])


def test_sigkill_loop_loses_no_acknowledged_update_and_applies_none_in_part(built, tmp_path):
    """Three clients stream batches (each owns a third of the item groups and sends one batch at a time)
    while rankd is SIGKILLed six times at random moments. Afterwards every item group must show, whole,
    its last acknowledged batch or a later one that reached the log before the kill; no batch may show
    in part."""
    root = root_with_snapshot(built, tmp_path)
    rng = random.Random(7)
    history = {group: [] for group in range(GROUPS)}  # group -> [(batch, acknowledged)], in send order
    counter = [0]
    lock = threading.Lock()
    kills = 6
    for cycle in range(kills):
        server, channel, admin, _ = start(built, root)
        stop = threading.Event()

        def sender(owner):
            groups = [g for g in range(GROUPS) if g % 3 == owner]
            turn = cycle
            while not stop.is_set():
                group = groups[turn % len(groups)]
                turn += 1
                with lock:
                    b = counter[0]
                    counter[0] += 1
                    history[group].append([b, False])
                    entry = history[group][-1]
                try:
                    admin.UpdateItems(batch_request(group, b), metadata=AUTH, timeout=5)
                except grpc.RpcError:
                    return  # the server died mid-call: unacknowledged
                with lock:
                    entry[1] = True

        threads = [threading.Thread(target=sender, args=(owner,)) for owner in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.2, 0.6))
        server.stop(sig=signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        channel.close()
    sent = sum(len(entries) for entries in history.values())
    acked = sum(1 for entries in history.values() for _, ok in entries if ok)
    print(f"kill loop: {sent} batches sent, {acked} acknowledged, {kills} SIGKILLs")
    assert acked >= kills, "too few updates got through to test anything"

    server, channel, admin, ranker = start(built, root)
    try:
        partial, lost = [], []
        for group, entries in history.items():
            whole = {f"sku-{group * BATCH + j}" for j in range(BATCH)}
            last_acked = max((i for i, (_, ok) in enumerate(entries) if ok), default=-1)
            shown = -1
            for i, (b, _) in enumerate(entries):
                served = set(cold_start(ranker, **price_filter(PRICE_BASE + b)))
                if served and served != whole:
                    partial.append((b, sorted(served)))
                if served == whole:
                    shown = i
            if last_acked >= 0 and shown < last_acked:
                lost.append((group, entries[last_acked][0]))
        assert not lost, f"acknowledged batches lost after SIGKILL: {lost}"
        assert not partial, f"batches applied in part: {partial}"
    finally:
        channel.close()
        server.stop()


def test_rankctl_sends_updates_and_deletions_to_every_replica(built, tmp_path):
    import os
    import subprocess

    from conftest import rankctl_binary

    replicas = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            replicas.append(start(built, root_with_snapshot(built, tmp_path / name)))
        servers = ",".join(server.address for server, *_ in replicas)
        changes = tmp_path / "changes.jsonl"
        changes.write_text('{"id": "sku-1", "removed": true}\n{"id": "sku-2", "in_stock": false, "price": 5}\n'
                           '{"id": "no-such-sku", "removed": true}\n')
        env = dict(os.environ, RANKD_ADMIN_TOKEN=TOKEN)
        run = subprocess.run([rankctl_binary(), "update-items", str(changes), "--servers", servers],
                             capture_output=True, text=True, env=env, timeout=60)
        assert run.returncode == 0, run.stderr
        assert run.stdout.count("applied 2 of 3; 1 unknown ids: no-such-sku") == 2, run.stdout
        run = subprocess.run([rankctl_binary(), "delete-user", "u_9", "--servers", servers],
                             capture_output=True, text=True, env=env, timeout=60)
        assert run.returncode == 0 and run.stdout.count("deleted u_9") == 2, run.stdout + run.stderr
        for _, _, admin, ranker in replicas:
            status = admin.Status(apb.StatusRequest(), metadata=AUTH, timeout=10)
            assert (status.overlay_items, status.overlay_removed_items, status.overlay_deleted_users) == (2, 1, 1)
            assert "sku-1" not in cold_start(ranker)
        # A replica that is down is named, and the command fails; the other still gets the change.
        replicas[1][0].stop()
        changes.write_text('{"id": "sku-3", "removed": true}\n')
        run = subprocess.run([rankctl_binary(), "update-items", str(changes), "--servers", servers],
                             capture_output=True, text=True, env=env, timeout=60)
        assert run.returncode != 0 and replicas[1][0].address in run.stderr + run.stdout
        assert admin_status(replicas[0]).overlay_removed_items == 2
    finally:
        for server, channel, *_ in replicas:
            channel.close()
            server.stop()


def admin_status(replica):
    return replica[2].Status(apb.StatusRequest(), metadata=AUTH, timeout=10)


def test_live_updates_are_counted_in_the_metrics(built, tmp_path):
    from conftest import free_port
    from test_operations import scrape, value

    metrics_port = free_port()
    server, channel, admin, _ = start(
        built, root_with_snapshot(built, tmp_path), "--metrics-listen", f"127.0.0.1:{metrics_port}")
    try:
        admin.UpdateItems(apb.UpdateItemsRequest(
            items=[update("sku-1", removed=True), update("sku-2", stock=apb.STOCK_OUT), update("nope", removed=True)]),
            metadata=AUTH, timeout=10)
        admin.DeleteUser(apb.DeleteUserRequest(user_id="u_3"), metadata=AUTH, timeout=10)
        samples, types = scrape(metrics_port)
        assert value(samples, "rankd_live_item_updates_total", result="applied") == 2
        assert value(samples, "rankd_live_item_updates_total", result="unknown_item") == 1
        assert value(samples, "rankd_live_user_deletions_total") == 1
        assert value(samples, "rankd_live_commits_total", result="ok") == 2
        assert value(samples, "rankd_live_overlay_removed_items") == 1
        assert value(samples, "rankd_live_overlay_deleted_users") == 1
        assert value(samples, "rankd_live_overlay_items") == 2
        assert value(samples, "rankd_live_log_bytes") > 0
        assert types.get("rankd_live_commit_seconds") == "histogram"
    finally:
        channel.close()
        server.stop()
