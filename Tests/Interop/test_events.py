"""Real-time events (ranking.v1.Ranker RecordEvents / StreamEvents) end to end with a stock client
(grpcio) against a real rankd on a snapshot root: the unary batch and the client stream, refusals
naming the event, what Rank then does (session history, rotation, caps, exclude-purchased, consent
NONE), DeleteUser purging the user's events, the event metrics, and a restart starting empty."""

import shutil
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from conftest import RankdProcess, free_port, synth_with_admin_token
from ranking.v1 import admin_pb2 as apb
from ranking.v1 import admin_pb2_grpc as arpc
from ranking.v1 import ranker_pb2 as pb
from ranking.v1 import ranker_pb2_grpc as rpc

TOKEN = "interop-events-token-0123456789"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture(scope="module")
def built():
    with synth_with_admin_token("events", seed=5, token=TOKEN) as made:
        yield made


def start(built, root, metrics_port):
    server = RankdProcess("--snapshot-root", str(root), "--admin-token-file", str(built["token"]),
                          "--metrics-listen", f"127.0.0.1:{metrics_port}").start()
    channel = grpc.insecure_channel(server.address)
    ranker = rpc.RankerStub(channel)
    deadline = time.monotonic() + 30
    while True:
        try:
            ranker.Rank(pb.RankRequest(user_id="nobody", k=1), timeout=5)
            break
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    return server, channel, ranker, arpc.SnapshotAdminStub(channel)


def metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def event(user, item, kind, **fields):
    message = pb.Event(user_id=user, item_id=item, type=kind, **fields)
    return message


def rank(ranker, user, k=10, **fields):
    return ranker.Rank(pb.RankRequest(user_id=user, k=k, explain=True,
                                      diversity=pb.Diversity(method=pb.DIVERSITY_METHOD_NONE), **fields), timeout=10)


def refusal(call, *args):
    with pytest.raises(grpc.RpcError) as error:
        call(*args, timeout=10)
    return error.value.code(), error.value.details()


def test_events_recorded_read_by_rank_refused_by_index_purged_and_gone_after_restart(built, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(built["snapshot"], root / built["snapshot"].name)
    metrics_port = free_port()
    server, channel, ranker, admin = start(built, root, metrics_port)
    try:
        # Session history: an unknown visitor's clicks become the session when the request sends none.
        assert rank(ranker, "visitor").session_source == pb.SESSION_SOURCE_NONE
        result = ranker.RecordEvents(pb.RecordEventsRequest(events=[
            event("visitor", "sku-5", pb.EVENT_TYPE_CLICK), event("visitor", "no-such-sku", pb.EVENT_TYPE_CLICK),
            event("private", "sku-5", pb.EVENT_TYPE_CLICK, consent=pb.CONSENT_NONE)]), timeout=10)
        assert (result.recorded, result.unknown_items, result.skipped_no_consent) == (1, 1, 1)
        history = rank(ranker, "visitor")
        assert history.strategy == pb.STRATEGY_SESSION
        assert history.session_source == pb.SESSION_SOURCE_EVENT_HISTORY
        sent = rank(ranker, "visitor", recent_item_ids=["sku-9"])
        assert sent.session_source == pb.SESSION_SOURCE_REQUEST
        assert rank(ranker, "private").session_source == pb.SESSION_SOURCE_NONE

        # Rotation and caps for a known user, over a client stream of two messages.
        before = rank(ranker, "u_7")
        top = before.items[0].item_id
        now_ms = int(time.time() * 1000)
        stream = iter([
            pb.RecordEventsRequest(events=[event("u_7", top, pb.EVENT_TYPE_IMPRESSION, timestamp_ms=now_ms)] * 2),
            pb.RecordEventsRequest(events=[event("u_7", top, pb.EVENT_TYPE_IMPRESSION, timestamp_ms=now_ms)]),
        ])
        assert ranker.StreamEvents(stream, timeout=10).recorded == 3
        rotated = next(item for item in rank(ranker, "u_7", k=200, rotation=pb.Rotation(rate=pb.FloatValue(value=0.1))).items
                       if item.item_id == top)
        assert rotated.explanation.recent_impressions == 3
        assert abs(rotated.explanation.rotation_penalty - (1 - 0.9 ** 3)) < 0.01
        capped = rank(ranker, "u_7", frequency_caps=[pb.FrequencyCap(max_impressions=3, window_seconds=3600)])
        assert top not in [item.item_id for item in capped.items]
        assert [(x.item_id, x.reason) for x in capped.event_exclusions] == \
            [(top, "frequency cap: 3 impressions in 3600 s (max 3)")]
        anonymous = rank(ranker, "u_7", consent=pb.CONSENT_NONE,
                         frequency_caps=[pb.FrequencyCap(max_impressions=1, window_seconds=3600)])
        assert not anonymous.event_exclusions

        # Exclude purchased.
        ranker.RecordEvents(pb.RecordEventsRequest(events=[event("u_7", "sku-3", pb.EVENT_TYPE_PURCHASE)]), timeout=10)
        bought = rank(ranker, "u_7", filter=pb.Filter(exclude_purchased_within_seconds=3600, include_categories=[
            built["catalogue"]["sku-3"][0]]))
        assert "sku-3" not in [item.item_id for item in bought.items]
        assert any(x.item_id == "sku-3" and x.reason.startswith("purchased") for x in bought.event_exclusions)

        # Refusals name the event; nothing of the refused batch is recorded; a stream names its message.
        bad = [
            ([event("u_1", "sku-1", pb.EVENT_TYPE_CLICK), event("u_1", "sku-1", 9)], "events[1].type"),
            ([event("u_1", "sku-1", pb.EVENT_TYPE_CLICK, timestamp_ms=now_ms + 3_600_000)], "events[0].timestamp_ms"),
            ([event("", "sku-1", pb.EVENT_TYPE_CLICK)], "events[0].user_id"),
            ([event("u_1", "sku-1", pb.EVENT_TYPE_CLICK)] * 10_001, "events[10000]"),
        ]
        for events, field in bad:
            code, details = refusal(ranker.RecordEvents, pb.RecordEventsRequest(events=events))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(field), details
        assert rank(ranker, "u_1").session_source == pb.SESSION_SOURCE_NONE
        code, details = refusal(ranker.StreamEvents, iter([
            pb.RecordEventsRequest(events=[event("u_1", "sku-1", pb.EVENT_TYPE_CLICK)]),
            pb.RecordEventsRequest(events=[event("u_1", "sku-1", 7)])]))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("message 1: events[0].type"), details

        # DeleteUser purges the user's events.
        admin.DeleteUser(apb.DeleteUserRequest(user_id="visitor"), metadata=AUTH, timeout=10)
        assert rank(ranker, "visitor").session_source == pb.SESSION_SOURCE_NONE

        assert metric(metrics_port, "rankd_events_recorded_total") == 1 + 3 + 1 + 1
        assert metric(metrics_port, "rankd_events_unknown_items_total") == 1
        assert metric(metrics_port, "rankd_events_skipped_no_consent_total") == 1
        assert metric(metrics_port, "rankd_events_rejected_batches_total") == 5
        assert metric(metrics_port, "rankd_events_purged_users_total") == 1
        assert metric(metrics_port, "rankd_events_budget_bytes") == 256 * 1024 * 1024
        assert metric(metrics_port, "rankd_events_evictions_total") == 0
    finally:
        server.stop()
    assert "event state in memory, empty at start" in server.output()

    # Events live in memory only: after a restart the state is empty (documented in OPERATIONS).
    server, channel, ranker, admin = start(built, root, free_port())
    try:
        assert rank(ranker, "u_7", frequency_caps=[pb.FrequencyCap(max_impressions=1, window_seconds=3600)]) \
            .event_exclusions == []
        assert rank(ranker, "u_1").session_source == pb.SESSION_SOURCE_NONE
    finally:
        server.stop()


def test_events_take_the_rank_token_when_one_is_set(built, tmp_path):
    token = tmp_path / "rank-token"
    token.write_text("rank-events-token-0123456789\n")
    server = RankdProcess("--snapshot", str(built["snapshot"]), "--rank-token-file", str(token)).start()
    try:
        ranker = rpc.RankerStub(grpc.insecure_channel(server.address))
        batch = pb.RecordEventsRequest(events=[event("u_1", "sku-1", pb.EVENT_TYPE_CLICK)])
        assert refusal(ranker.RecordEvents, batch)[0] == grpc.StatusCode.UNAUTHENTICATED
        assert refusal(ranker.StreamEvents, iter([batch]))[0] == grpc.StatusCode.UNAUTHENTICATED
        good = (("authorization", "Bearer rank-events-token-0123456789"),)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert ranker.RecordEvents(batch, metadata=good, timeout=10).recorded == 1
                break
            except grpc.RpcError as error:  # the snapshot loads after the port opens
                if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert ranker.StreamEvents(iter([batch, batch]), metadata=good, timeout=10).recorded == 2
    finally:
        server.stop()


def ingest_thread(pid):
    """(scheduling policy, nice) of rankd's event-ingest thread, from /proc (stat fields 41 and 19)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        if (task / "comm").read_text().strip() == "rankd-events":
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[41 - 3]), int(fields[19 - 3])
    return None


def test_events_are_recorded_on_an_idle_class_thread_unless_configured(tmp_path):
    import subprocess

    # Default: SCHED_IDLE (5), so a waking event loop preempts ingestion at once; `low` is nice 10.
    for args, expected in (((), (5, 0)), (("--event-ingest-priority", "low"), (0, 10))):
        server = RankdProcess(*args).start()
        try:
            deadline = time.monotonic() + 10
            while ingest_thread(server.proc.pid) != expected and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ingest_thread(server.proc.pid) == expected, args
        finally:
            server.stop()
    done = subprocess.run(RankdProcess("--event-ingest-priority", "fast").args, capture_output=True, text=True,
                          timeout=20)
    assert done.returncode != 0
    assert "--event-ingest-priority must be one of idle, low, normal, got fast" in done.stderr
