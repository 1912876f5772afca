"""gRPC server reflection (grpc.reflection.v1 and v1alpha) with the stock grpcio-reflection client:
list the services, build the message types from what the server sends, and call Rank with no
proto files, as grpcurl and evans do."""

import queue

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from grpc_reflection.v1alpha import reflection_pb2 as reflection
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from conftest import RankdProcess, synth, wait_until_ranking

SERVED = {
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "ranking.v1.Ranker",
    "rankd.testing.v1.Echo",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    snapshot, _ = synth(tmp_path_factory.mktemp("reflection"), "snap", seed=4, items=300, categories=3)
    process = RankdProcess("--snapshot", str(snapshot)).start()
    channel = grpc.insecure_channel(process.address)
    wait_until_ranking(channel)
    yield process, channel
    channel.close()
    process.stop()


def info_stream(channel, version):
    # v1 and v1alpha messages are wire-identical: the v1alpha classes serve both paths.
    return channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection.ServerReflectionResponse.FromString)


def test_v1alpha_client_lists_services_and_calls_rank_without_protos(server):
    _, channel = server
    database = ProtoReflectionDescriptorDatabase(channel)
    assert set(database.get_services()) == SERVED
    pool = descriptor_pool.DescriptorPool(database)
    ranker = pool.FindServiceByName("ranking.v1.Ranker")
    rank = ranker.FindMethodByName("Rank")
    request_class = message_factory.GetMessageClass(rank.input_type)
    response_class = message_factory.GetMessageClass(rank.output_type)
    call = channel.unary_unary(
        "/ranking.v1.Ranker/Rank", request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString)
    reply = call(request_class(user_id="u_1", k=4), timeout=5)
    assert len(reply.items) == 4
    assert reply.snapshot_version == "snap"
    # Every method of every listed service resolves to message types.
    for name in SERVED:
        for method in pool.FindServiceByName(name).methods:
            assert method.input_type.full_name and method.output_type.full_name


def test_v1_answers_every_query_kind_on_one_interleaved_stream(server):
    """One request at a time, the next sent only after the previous answer arrived (as grpcurl
    does): the server must answer while the request stream is still open."""
    _, channel = server
    requests = queue.Queue()

    def produce():
        while (item := requests.get()) is not None:
            yield item

    responses = info_stream(channel, "v1")(produce(), timeout=10)

    def ask(**fields):
        requests.put(reflection.ServerReflectionRequest(host="localhost", **fields))
        return next(responses)

    listed = ask(list_services="")
    assert {s.name for s in listed.list_services_response.service} == SERVED
    assert listed.original_request.list_services == ""
    assert listed.valid_host == "localhost"

    by_symbol = ask(file_containing_symbol="ranking.v1.Ranker.Rank")
    files = [FileDescriptorProto.FromString(raw) for raw in by_symbol.file_descriptor_response.file_descriptor_proto]
    assert files[0].name == "ranking/v1/ranker.proto"
    assert files[0].package == "ranking.v1"
    assert [m.name for m in files[0].service[0].method] == ["Rank", "Related", "RankBatch", "RecordEvents", "StreamEvents"]

    nested = ask(file_containing_symbol=".ranking.v1.RankRequest")
    assert FileDescriptorProto.FromString(nested.file_descriptor_response.file_descriptor_proto[0]).name == \
        "ranking/v1/ranker.proto"

    by_name = ask(file_by_filename="grpc/health/v1/health.proto")
    assert FileDescriptorProto.FromString(by_name.file_descriptor_response.file_descriptor_proto[0]).service[0].name \
        == "Health"

    missing = ask(file_containing_symbol="no.such.Service")
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "no.such.Service" in missing.error_response.error_message

    missing_file = ask(file_by_filename="nope.proto")
    assert missing_file.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]

    numbers = ask(all_extension_numbers_of_type="ranking.v1.RankRequest")
    assert numbers.all_extension_numbers_response.base_type_name == "ranking.v1.RankRequest"
    assert list(numbers.all_extension_numbers_response.extension_number) == []

    extension = ask(file_containing_extension=reflection.ExtensionRequest(
        containing_type="ranking.v1.RankRequest", extension_number=100))
    assert extension.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]

    requests.put(None)
    assert list(responses) == []  # the server ends the stream with OK after the client half-closes
    assert responses.code() == grpc.StatusCode.OK


def test_listing_like_grpcurl_shows_each_service_methods(server):
    """`grpcurl list` then `grpcurl describe SERVICE`: the names a person would see."""
    _, channel = server
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    listing = {name: sorted(m.name for m in pool.FindServiceByName(name).methods)
               for name in database.get_services()}
    assert listing["ranking.v1.Ranker"] == ["Rank", "RankBatch", "RecordEvents", "Related", "StreamEvents"]
    assert listing["grpc.health.v1.Health"] == ["Check", "Watch"]
    assert listing["rankd.testing.v1.Echo"] == ["Collect", "Expand", "Unary"]
    assert listing["grpc.reflection.v1.ServerReflection"] == ["ServerReflectionInfo"]


def test_a_request_that_is_not_protobuf_fails_the_stream(server):
    _, channel = server
    call = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
    with pytest.raises(grpc.RpcError) as failure:
        list(call(iter([b"\xff\xff\xff"]), timeout=5))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ServerReflectionRequest" in failure.value.details()


def test_grpcurl_lists_describes_and_calls_with_no_proto_files(server):
    import json
    import os
    import subprocess
    import sys

    process, _ = server
    grpcurl = os.path.join(os.path.dirname(sys.executable), "grpcurl")

    def run(*args):
        done = subprocess.run([grpcurl, "-plaintext", *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    address = process.address
    assert set(run(address, "list").split()) == SERVED
    assert "rpc Rank ( .ranking.v1.RankRequest ) returns ( .ranking.v1.RankResponse );" in run(
        address, "describe", "ranking.v1.Ranker")
    reply = json.loads(run("-d", '{"user_id": "u_2", "k": 3}', address, "ranking.v1.Ranker/Rank"))
    assert len(reply["items"]) == 3 and reply["snapshotVersion"] == "snap"
