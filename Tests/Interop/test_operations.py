"""Operations surface with stock tools: the Prometheus endpoint (`--metrics-listen`) counts what a
grpcio client did, in the text format Prometheus parses; the sampled access log writes logfmt."""

import re
import urllib.error
import urllib.request

import grpc
import pytest

from conftest import RankdProcess, free_port, synth, wait_until_ranking
from rankd.testing.v1 import echo_pb2, echo_pb2_grpc
from ranking.v1 import ranker_pb2 as pb
from ranking.v1 import ranker_pb2_grpc as rpc

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        assert reply.status == 200
        assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = reply.read().decode()
    samples = {}
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"metric family {name} declared twice"
            types[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        samples[(match.group(1), tuple(sorted(labels.items())))] = float(match.group(4))
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    snapshot, _ = synth(tmp_path_factory.mktemp("ops"), "snap", seed=3, items=600, categories=4)
    metrics_port = free_port()
    process = RankdProcess(
        "--snapshot", str(snapshot), "--metrics-listen", f"127.0.0.1:{metrics_port}", "--access-log-every", "2",
        "--max-receive-message-size", "4096").start()
    channel = grpc.insecure_channel(process.address)
    wait_until_ranking(channel)
    yield process, metrics_port, channel
    channel.close()
    process.stop()


def test_metrics_count_calls_by_method_and_code_and_rank_stages(server):
    process, port, channel = server
    before, _ = scrape(port)
    stub = rpc.RankerStub(channel)
    for _ in range(4):
        stub.Rank(pb.RankRequest(user_id="u_7", k=5), timeout=5)
    stub.Rank(pb.RankRequest(user_id="nobody-knows-me", k=5), timeout=5)
    with pytest.raises(grpc.RpcError) as bad:
        stub.Rank(pb.RankRequest(user_id="u_7", k=50, candidate_pool=20), timeout=5)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as unknown:
        channel.unary_unary("/ranking.v1.Ranker/NoSuchMethod")(b"", timeout=5)
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as large:
        echo_pb2_grpc.EchoStub(channel).Unary(echo_pb2.EchoRequest(payload=b"x" * 10_000), timeout=5)
    assert large.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    after, types = scrape(port)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    rank = {"grpc_service": "ranking.v1.Ranker", "grpc_method": "Rank"}
    assert delta("rankd_grpc_server_handled_total", grpc_code="OK", **rank) == 5
    assert delta("rankd_grpc_server_handled_total", grpc_code="INVALID_ARGUMENT", **rank) == 1
    assert delta("rankd_grpc_server_handled_total", grpc_service="unknown", grpc_method="unknown",
                 grpc_code="UNIMPLEMENTED") == 1
    assert delta("rankd_grpc_rejected_too_large_total") == 1
    assert delta("rankd_grpc_server_handling_seconds_count", **rank) == 6
    assert types["rankd_grpc_server_handling_seconds"] == "histogram"
    # Stages and the total: one sample per successful call, buckets cumulative up to +Inf.
    for stage in ["decode", "query", "retrieve", "rerank", "describe", "encode"]:
        assert delta("rankd_rank_stage_seconds_count", stage=stage) == 5, stage
    assert delta("rankd_rank_seconds_count") == 5
    assert value(after, "rankd_rank_seconds_bucket", le="+Inf") == value(after, "rankd_rank_seconds_count")
    assert value(after, "rankd_rank_seconds_bucket", le="0.00005") <= value(after, "rankd_rank_seconds_bucket", le="0.1")
    assert delta("rankd_rank_strategy_total", strategy="personalized") == 4
    assert delta("rankd_rank_strategy_total", strategy="popular") == 1
    assert delta("rankd_rank_candidates_considered_total") > 0
    assert value(after, "rankd_snapshot_info", version="snap") == 1
    assert value(after, "rankd_snapshots_mapped") >= 1
    assert value(after, "rankd_snapshot_created_timestamp_seconds") > 1.7e9
    assert value(after, "rankd_grpc_connections_open") >= 1


def test_metrics_endpoint_answers_only_metrics(server):
    _, port, _ = server
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
    assert missing.value.code == 404


def test_access_log_is_sampled_logfmt(server):
    process, _, channel = server
    stub = rpc.RankerStub(channel)
    before = process.output().count("msg=access")
    for _ in range(10):
        stub.Rank(pb.RankRequest(user_id="u_3", k=2), timeout=5)
    lines = [line for line in process.output().splitlines() if "msg=access" in line]
    assert len(lines) - before == 5  # every second call
    fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', lines[-1]))
    assert fields["method"] == "/ranking.v1.Ranker/Rank"
    assert fields["status"] == "OK"
    assert fields["strategy"] == "personalized"
    assert fields["version"] == "snap"
    assert int(fields["us"]) > 0


def test_metrics_listen_rejects_a_bad_address(tmp_path):
    process = RankdProcess("--metrics-listen", "nohost")
    process.log = open(tmp_path / "log", "wb")
    import subprocess

    done = subprocess.run(process.args, capture_output=True, text=True, timeout=20)
    assert done.returncode != 0
    assert "--metrics-listen 'nohost'" in done.stderr
