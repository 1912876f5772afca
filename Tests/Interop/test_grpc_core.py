"""The gRPC core against a stock client (grpcio): unary, concurrency, deadlines, errors, health,
streaming, restart, shutdown, and protocol abuse."""

import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import RankdProcess, free_port, rankd_binary
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rankd.testing.v1 import echo_pb2, echo_pb2_grpc


def echo_stub(address):
    channel = grpc.insecure_channel(address)
    return channel, echo_pb2_grpc.EchoStub(channel)


def test_unary_call_round_trips_text_and_bytes(rankd):
    _, stub = echo_stub(rankd.address)
    reply = stub.Unary(echo_pb2.EchoRequest(text="héllo", payload=bytes(range(256))), timeout=5)
    assert reply.text == "héllo"
    assert reply.payload == bytes(range(256))


def test_empty_request_message_is_valid(rankd):
    _, stub = echo_stub(rankd.address)
    assert stub.Unary(echo_pb2.EchoRequest(), timeout=5).text == ""


def test_200_concurrent_calls_on_one_channel(rankd):
    _, stub = echo_stub(rankd.address)
    futures = [stub.Unary.future(echo_pb2.EchoRequest(text=f"call {i}"), timeout=20) for i in range(200)]
    assert [f.result().text for f in futures] == [f"call {i}" for i in range(200)]


def test_many_channels_at_once(rankd):
    def run(index):
        channel, stub = echo_stub(rankd.address)
        with channel:
            return [stub.Unary(echo_pb2.EchoRequest(text=f"{index}/{j}"), timeout=20).text for j in range(10)]

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(run, range(48)))
    assert results == [[f"{i}/{j}" for j in range(10)] for i in range(48)]


def test_deadline_exceeded_while_handler_works(rankd):
    _, stub = echo_stub(rankd.address)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(echo_pb2.EchoRequest(text="slow", delay_ms=2000), timeout=0.2)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.5


def test_call_within_deadline_succeeds(rankd):
    _, stub = echo_stub(rankd.address)
    assert stub.Unary(echo_pb2.EchoRequest(text="ok", delay_ms=20), timeout=5).text == "ok"


def test_unknown_method_is_unimplemented(rankd):
    channel = grpc.insecure_channel(rankd.address)
    call = channel.unary_unary("/rankd.testing.v1.Echo/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as info:
        call(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "NoSuchMethod" in info.value.details()


def test_unknown_service_is_unimplemented(rankd):
    channel = grpc.insecure_channel(rankd.address)
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/no.such.Service/Call")(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_oversized_message_is_resource_exhausted(fresh_rankd):
    server = fresh_rankd("--max-receive-message-size", "65536")
    _, stub = echo_stub(server.address)
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(echo_pb2.EchoRequest(payload=b"x" * 200_000), timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "65536" in info.value.details()
    # The connection survives: the next call on the same channel works.
    assert stub.Unary(echo_pb2.EchoRequest(text="after"), timeout=5).text == "after"


def test_malformed_protobuf_body_is_invalid_argument(rankd):
    channel = grpc.insecure_channel(rankd.address)
    raw = channel.unary_unary("/rankd.testing.v1.Echo/Unary")
    with pytest.raises(grpc.RpcError) as info:
        raw(b"\x0a\xff\xff\xff\xff\x0f", timeout=5)  # field 1, length far past the end
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "EchoRequest" in info.value.details()


def test_compressed_request_is_unimplemented_with_clear_message(rankd):
    channel = grpc.insecure_channel(rankd.address, compression=grpc.Compression.Gzip)
    stub = echo_pb2_grpc.EchoStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(echo_pb2.EchoRequest(text="zip"), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "gzip" in info.value.details() and "identity" in info.value.details()


def test_health_check_reports_serving_and_unknown_service(rankd):
    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(rankd.address))
    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_watch_streams_current_status(rankd):
    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(rankd.address))
    stream = stub.Watch(health_pb2.HealthCheckRequest(), timeout=2)
    first = next(stream)
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    stream.cancel()


def test_client_streaming_with_many_chunks(rankd):
    _, stub = echo_stub(rankd.address)
    chunks = (echo_pb2.EchoRequest(text=f"chunk {i}", payload=bytes([i % 256]) * 1024) for i in range(2000))
    reply = stub.Collect(chunks, timeout=30)
    assert reply.messages == 2000
    assert reply.payload_bytes == 2000 * 1024
    assert reply.text == "chunk 1999"


def test_client_streaming_with_no_messages(rankd):
    _, stub = echo_stub(rankd.address)
    reply = stub.Collect(iter([]), timeout=5)
    assert reply.messages == 0


def test_server_streaming(rankd):
    _, stub = echo_stub(rankd.address)
    replies = list(stub.Expand(echo_pb2.EchoRequest(text="n", count=100), timeout=10))
    assert [r.text for r in replies] == [f"n {i}" for i in range(100)]


def test_large_response_spans_many_data_frames(rankd):
    _, stub = echo_stub(rankd.address)
    payload = bytes(range(256)) * 4096  # 1 MiB: many 16 KiB DATA frames, flow control involved
    assert stub.Unary(echo_pb2.EchoRequest(payload=payload), timeout=20).payload == payload


def test_client_recovers_across_server_restart():
    port = free_port()
    server = RankdProcess(port=port).start()
    channel, stub = echo_stub(server.address)
    assert stub.Unary(echo_pb2.EchoRequest(text="before"), timeout=5).text == "before"
    assert server.stop() == 0
    restarted = RankdProcess(port=port).start()
    try:
        reply = stub.Unary(echo_pb2.EchoRequest(text="after"), timeout=10, wait_for_ready=True)
        assert reply.text == "after"
    finally:
        restarted.stop()


def test_graceful_shutdown_finishes_in_flight_calls_and_exits_zero():
    server = RankdProcess().start()
    _, stub = echo_stub(server.address)
    future = stub.Unary.future(echo_pb2.EchoRequest(text="in flight", delay_ms=700), timeout=10)
    time.sleep(0.2)
    server.proc.send_signal(signal.SIGTERM)
    assert future.result().text == "in flight"
    assert server.proc.wait(timeout=15) == 0
    server.stop()


def test_rapid_reset_does_not_take_the_server_down(rankd):
    import h2.config
    import h2.connection
    import h2.events

    _, stub = echo_stub(rankd.address)
    errors = []
    stop = threading.Event()

    def bystander():
        while not stop.is_set():
            try:
                stub.Unary(echo_pb2.EchoRequest(text="bystander"), timeout=5)
            except grpc.RpcError as error:  # pragma: no cover - reported below
                errors.append(error.code())

    thread = threading.Thread(target=bystander)
    thread.start()
    goaway = None
    sock = socket.create_connection(("127.0.0.1", rankd.port), timeout=10)
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        headers = [(":method", "POST"), (":scheme", "http"), (":authority", rankd.address),
                   (":path", "/rankd.testing.v1.Echo/Unary"), ("content-type", "application/grpc"), ("te", "trailers")]
        sent = 0
        try:
            for _ in range(5000):
                stream_id = conn.get_next_available_stream_id()
                conn.send_headers(stream_id, headers)
                conn.reset_stream(stream_id)
                sent += 1
                sock.sendall(conn.data_to_send())
        except (BrokenPipeError, ConnectionResetError, h2.exceptions.ProtocolError):
            pass
        sock.settimeout(5)
        try:
            while goaway is None:
                data = sock.recv(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ConnectionTerminated):
                        goaway = event.error_code
        except (socket.timeout, ConnectionResetError, h2.exceptions.ProtocolError):
            pass
    finally:
        sock.close()
        stop.set()
        thread.join()
    assert goaway == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert errors == []
    assert stub.Unary(echo_pb2.EchoRequest(text="still up"), timeout=5).text == "still up"
    assert rankd.proc.poll() is None


def test_protocol_violation_gets_goaway_and_other_connections_carry_on(rankd):
    _, stub = echo_stub(rankd.address)
    sock = socket.create_connection(("127.0.0.1", rankd.port), timeout=5)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not the HTTP/2 preface
        received = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        sock.close()
    assert stub.Unary(echo_pb2.EchoRequest(text="fine"), timeout=5).text == "fine"


def test_data_on_stream_zero_gets_goaway_protocol_error(rankd):
    import h2.config
    import h2.connection
    import h2.events

    _, stub = echo_stub(rankd.address)
    sock = socket.create_connection(("127.0.0.1", rankd.port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    # A DATA frame on stream 0 is a connection error of type PROTOCOL_ERROR (RFC 9113 §6.1).
    sock.sendall(conn.data_to_send() + b"\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    code = None
    try:
        while code is None:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    code = event.error_code
    except (ConnectionResetError, socket.timeout, h2.exceptions.ProtocolError):
        pass
    finally:
        sock.close()
    assert code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert stub.Unary(echo_pb2.EchoRequest(text="others fine"), timeout=5).text == "others fine"


def test_bad_flag_fails_with_one_line_and_nonzero_exit():
    result = subprocess.run([rankd_binary(), "--listen", "nonsense"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "--listen" in result.stderr


def test_unusable_port_fails_with_one_line_and_nonzero_exit(rankd):
    result = subprocess.run([rankd_binary(), "--listen", rankd.address], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "cannot listen on" in result.stderr


def test_config_file_is_applied_and_flags_win(tmp_path):
    config = tmp_path / "rankd.json"
    config.write_text('{"maxReceiveMessageSize": 1000, "enableTestServices": true, "logLevel": "warning"}')
    server = RankdProcess("--config", str(config)).start()
    try:
        _, stub = echo_stub(server.address)
        with pytest.raises(grpc.RpcError) as info:
            stub.Unary(echo_pb2.EchoRequest(payload=b"x" * 2000), timeout=5)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "1000" in info.value.details()
    finally:
        server.stop()
    server = RankdProcess("--config", str(config), "--max-receive-message-size", "100000").start()
    try:
        _, stub = echo_stub(server.address)
        assert len(stub.Unary(echo_pb2.EchoRequest(payload=b"x" * 2000), timeout=5).payload) == 2000
    finally:
        server.stop()


@pytest.mark.parametrize("content, named", [
    ('{"maxConcurrentStreams": "many"}', "maxConcurrentStreams"),
    ('{"idleTimeoutSeconds": -5}', "--idle-timeout"),
    ('{"idleTimeoutJitter": 2}', "idleTimeoutJitter"),
    ('{"releaseMemoryAfterClosedConnections": -1}', "releaseMemoryAfterClosedConnections"),
    ('{"listen": 5}', "listen"),
    ("not json", "not valid JSON"),
])
def test_bad_config_file_fails_naming_the_problem(tmp_path, content, named):
    config = tmp_path / "rankd.json"
    config.write_text(content)
    result = subprocess.run([rankd_binary(), "--config", str(config), "--listen", "127.0.0.1:0"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert named in result.stderr
