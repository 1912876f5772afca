"""A well-behaved client: sequential Rank calls over one grpcio channel for a fixed time, then one
JSON line with the latency percentiles. Run in its own process so an attacker's CPU (and Python's
GIL) in another process does not distort what it measures. Stubs are not needed: the request is
encoded by hand (ranking.v1.RankRequest: user_id = 1, k = 2) and the response left as bytes."""

import argparse
import json
import time

import grpc


def rank_request(user, k):
    user_bytes = user.encode()
    return bytes([0x0A, len(user_bytes)]) + user_bytes + bytes([0x10, k])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second (open schedule)")
    args = parser.parse_args()
    channel = grpc.insecure_channel(args.target)
    rank = channel.unary_unary("/ranking.v1.Ranker/Rank", request_serializer=None, response_deserializer=None)
    rank(rank_request("u_1", 10), timeout=10)  # connect and warm up outside the measurement
    latencies, errors = [], {}
    cpu0 = time.process_time()
    interval = 1.0 / args.rate
    start = time.monotonic()
    next_at = start
    i = 0
    while time.monotonic() - start < args.seconds:
        # Latency is measured from the scheduled start (coordinated omission): a stall that delays
        # the next calls counts against all of them.
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        try:
            rank(rank_request(f"u_{i % 200}", 10), timeout=10)
        except grpc.RpcError as error:
            errors[error.code().name] = errors.get(error.code().name, 0) + 1
        latencies.append(time.monotonic() - next_at)
        next_at += interval
        i += 1
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else None

    print(json.dumps({"calls": len(latencies), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
                      "errors": errors, "cpu_s": round(time.process_time() - cpu0, 3)}))


if __name__ == "__main__":
    main()
