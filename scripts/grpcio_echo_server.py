#!/usr/bin/env python3
"""The comparison server for the gRPC core benchmark: Python grpcio's sync server implementing
the same rankd.testing.v1.Echo/Unary method as `rankd --enable-test-services`.

    .venv/bin/python scripts/grpcio_echo_server.py PORT [WORKERS]

Stubs are generated from Protos/ into a temporary directory at start-up."""

import os
import shutil
import sys
import tempfile
from concurrent import futures
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_stubs():
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="rankd-bench-stubs-")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    proto = "rankd/testing/v1/echo.proto"
    if protoc.main(["protoc", f"-I{ROOT / 'Protos'}", f"-I{include}", f"--python_out={out}",
                    f"--grpc_python_out={out}", proto]) != 0:
        raise SystemExit("protoc failed")
    for directory in ["rankd", "rankd/testing", "rankd/testing/v1"]:
        Path(out, directory, "__init__.py").touch()
    sys.path.insert(0, out)
    return out


def main():
    port = int(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    stubs = load_stubs()
    import grpc
    from rankd.testing.v1 import echo_pb2, echo_pb2_grpc

    class Echo(echo_pb2_grpc.EchoServicer):
        def Unary(self, request, context):
            return echo_pb2.EchoResponse(text=request.text, payload=request.payload)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    echo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"grpcio echo server on 127.0.0.1:{port}", flush=True)
    try:
        server.wait_for_termination()
    finally:
        shutil.rmtree(stubs, ignore_errors=True)


if __name__ == "__main__":
    main()
