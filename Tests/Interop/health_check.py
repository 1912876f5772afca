#!/usr/bin/env python3
"""Checks a running rankd with a stock gRPC client: grpc.health.v1.Health/Check.

    python3 Tests/Interop/health_check.py [HOST:PORT]     (default 127.0.0.1:50051)

Needs grpcio (installed into .venv by `make test`: use .venv/bin/python)."""

import sys

import grpc


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    # Hand-encoded HealthCheckRequest{service: ""} is the empty message; the response's field 1
    # is the status enum (1 = SERVING), so no generated stubs are needed here.
    channel = grpc.insecure_channel(target)
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    try:
        reply = check(b"", timeout=5)
    except grpc.RpcError as error:
        print(f"{target}: {error.code().name}: {error.details()}")
        return 1
    status = reply[1] if len(reply) >= 2 and reply[0] == 0x08 else 0
    names = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
    print(f"{target}: {names.get(status, status)}")
    return 0 if status == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
