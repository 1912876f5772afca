"""Tracing end to end: a grpcio call carrying W3C `traceparent` metadata, rankd exporting OTLP/HTTP
(JSON) to a collector stand-in on loopback; the spans continue the caller's trace, one per stage."""

import http.server
import json
import threading
import time

import grpc
import pytest

from conftest import RankdProcess, synth, wait_until_ranking
from ranking.v1 import ranker_pb2 as pb
from ranking.v1 import ranker_pb2_grpc as rpc

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
STAGES = ["decode", "query", "retrieve", "rerank", "describe", "encode"]


class Collector(http.server.ThreadingHTTPServer):
    def __init__(self):
        self.requests = []
        self.spans = []
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.requests.append((self.path, self.headers["content-type"], body))
        for resource in body["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                self.server.spans.extend(scope["spans"])
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    collector = Collector()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    snapshot, _ = synth(tmp_path_factory.mktemp("tracing"), "snap", seed=6, items=300, categories=3)
    process = RankdProcess(
        "--snapshot", str(snapshot), "--otlp-endpoint", f"http://127.0.0.1:{collector.server_address[1]}/v1/traces",
        "--trace-sample-ratio", "0").start()
    channel = grpc.insecure_channel(process.address)
    wait_until_ranking(channel)
    yield process, rpc.RankerStub(channel), collector
    channel.close()
    process.stop()
    collector.shutdown()


def wait_for(collector, predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [span for span in list(collector.spans) if predicate(span)]
        if found:
            return found
        time.sleep(0.1)
    return []


def test_a_sampled_call_exports_a_server_span_with_one_child_per_stage(traced):
    _, stub, collector = traced
    stub.Rank(pb.RankRequest(user_id="u_5", k=3), timeout=5,
              metadata=[("traceparent", f"00-{TRACE_ID}-{PARENT}-01")])
    roots = wait_for(collector, lambda s: s["traceId"] == TRACE_ID and s.get("parentSpanId") == PARENT)
    assert len(roots) == 1
    root = roots[0]
    assert root["name"] == "ranking.v1.Ranker/Rank"
    assert root["kind"] == 2  # SERVER
    attributes = {a["key"]: a["value"] for a in root["attributes"]}
    assert attributes["rpc.system"] == {"stringValue": "grpc"}
    assert attributes["rpc.grpc.status_code"] == {"intValue": "0"}
    assert attributes["rankd.snapshot_version"] == {"stringValue": "snap"}
    assert attributes["rankd.items"] == {"intValue": "3"}
    children = wait_for(collector, lambda s: s.get("parentSpanId") == root["spanId"])
    deadline = time.monotonic() + 5
    while len(children) < len(STAGES) and time.monotonic() < deadline:
        time.sleep(0.1)
        children = [s for s in collector.spans if s.get("parentSpanId") == root["spanId"]]
    assert sorted(s["name"] for s in children) == sorted(STAGES)
    start, end = int(root["startTimeUnixNano"]), int(root["endTimeUnixNano"])
    assert abs(start / 1e9 - time.time()) < 60
    for child in children:
        assert child["traceId"] == TRACE_ID and child["kind"] == 1
        assert start <= int(child["startTimeUnixNano"]) <= int(child["endTimeUnixNano"]) <= end
    path, content_type, _ = collector.requests[0]
    assert path == "/v1/traces" and content_type == "application/json"


def test_a_failed_call_is_an_error_span(traced):
    _, stub, collector = traced
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    with pytest.raises(grpc.RpcError):
        stub.Rank(pb.RankRequest(user_id="u_5", k=50, candidate_pool=20), timeout=5,
                  metadata=[("traceparent", f"00-{trace_id}-b7ad6b7169203331-01")])
    spans = wait_for(collector, lambda s: s["traceId"] == trace_id)
    assert len(spans) == 1
    assert spans[0]["status"]["code"] == 2
    assert "candidate_pool" in spans[0]["status"]["message"]


def test_unsampled_and_untraced_calls_export_nothing(traced):
    _, stub, collector = traced
    trace_id = "11111111111111111111111111111111"
    stub.Rank(pb.RankRequest(user_id="u_6", k=2), timeout=5,
              metadata=[("traceparent", f"00-{trace_id}-2222222222222222-00")])
    stub.Rank(pb.RankRequest(user_id="u_6", k=2), timeout=5)  # no parent, sample ratio 0
    before = len(collector.spans)
    time.sleep(1.5)  # more than one export interval
    assert not [s for s in collector.spans if s["traceId"] == trace_id]
    assert len(collector.spans) == before
