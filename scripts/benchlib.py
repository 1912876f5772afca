"""Helpers shared by the benchmark scripts: for the h2load-driven ones (bench-grpc-core.py, bench-rank.py)
free ports, waiting for a server, server CPU time from /proc, and one h2load run summarised from
its per-request log (h2load's own summary has no percentiles); for the retrieval ones (bench-index.py,
bench-filter.py) the numpy oracle and recall."""

import contextlib
import json
import os
import resource
import signal
import socket
import sys
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parents[1]


def rank_request_body(workdir, user, k=20, pool=300, method="mmr", categories=(), brands=(), in_stock=False,
                      max_price=None):
    """Writes one gRPC-framed ranking.v1.RankRequest to WORKDIR/rank-request.bin and returns its
    path. Compiles Protos/ranking/v1/ranker.proto with grpc_tools (the interop venv) into WORKDIR."""
    from grpc_tools import protoc

    if protoc.main(["protoc", f"-I{ROOT / 'Protos'}", f"--python_out={workdir}",
                    str(ROOT / "Protos/ranking/v1/ranker.proto")]) != 0:
        raise SystemExit("protoc failed on Protos/ranking/v1/ranker.proto")
    sys.path.insert(0, str(workdir))
    from ranking.v1 import ranker_pb2

    request = ranker_pb2.RankRequest(user_id=user, k=k, candidate_pool=pool)
    request.diversity.method = ranker_pb2.DiversityMethod.Value(f"DIVERSITY_METHOD_{method.upper()}")
    request.filter.include_categories.extend(categories)
    request.filter.include_brands.extend(brands)
    request.filter.in_stock_only = in_stock
    if max_price is not None:
        request.filter.max_price.value = max_price
    payload = request.SerializeToString()
    body = Path(workdir) / "rank-request.bin"
    body.write_bytes(b"\x00" + len(payload).to_bytes(4, "big") + payload)
    return str(body)


def rank_body_and_scenario(workdir):
    """The h2load body and the equivalent loadtest scenario: user u_0, k 20, pool 300, MMR."""
    user = "u_0"
    users = Path(workdir) / "users.txt"
    users.write_text(user + "\n")
    scenario = Path(workdir) / "rank.json"
    scenario.write_text(json.dumps({"name": "rank-one-request", "seed": 1, "poolSize": 1, "requests": [
        {"weight": 1, "rank": {"usersFile": str(users), "k": 20, "candidatePool": 300,
                               "diversity": {"method": "mmr"}}}]}))
    return rank_request_body(workdir, user, k=20, pool=300, method="mmr"), str(scenario)


# loadtest's default --timeout (10 s) and the grpc-timeout header GRPCClient sends for it
# (GRPCTimeout.format): h2load sends the same header so both make the same request.
CALL_TIMEOUT = "10s"
GRPC_TIMEOUT_HEADER = "10000000u"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server did not listen on {port}")


def wait_until_ok(port, path, body, timeout=300):
    """Waits until one call of PATH with BODY (a gRPC-framed request file) returns OK. rankd listens
    before its snapshot is active and answers UNAVAILABLE until then, and h2load counts every HTTP 200
    as a success, gRPC errors included: a benchmark that starts on the open port alone may time
    error replies. Any other error status ends the script."""
    import grpc

    payload = Path(body).read_bytes()[5:]
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(path)
        while True:
            try:
                call(payload, timeout=10)
                return
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise SystemExit(f"{path} failed: {error.code().name}: {error.details()}")
                time.sleep(0.1)


def stop_process(proc, timeout=30):
    """SIGTERM (rankd drains gracefully), then SIGKILL if it has not exited within `timeout` s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


@contextlib.contextmanager
def running_rankd(rankd, port, *args, pin=False):
    """Runs `rankd --listen 127.0.0.1:PORT --enable-test-services ARGS` (on CPU 0 with `pin`) until
    the block ends, then stops it with SIGTERM. Yields once it accepts connections."""
    cmd = (["taskset", "-c", "0"] if pin else []) + [
        rankd, "--listen", f"127.0.0.1:{port}", "--enable-test-services", "--log-level", "warning", *args]
    proc = subprocess.Popen(cmd)
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def load_average():
    """The 1, 5 and 15 minute load averages, as /proc/loadavg prints them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def children_cpu_seconds():
    """User + system CPU seconds of this process's waited-for children so far (getrusage)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def h2load(port, path, clients, streams, seconds, body, rps_per_client=None, warmup=1, cpu=None, headers=()):
    """One h2load run against http://127.0.0.1:PORT/PATH with BODY (a gRPC-framed message file).

    Returns requests (succeeded), rps, mean/p50/p90/p99/p999/max in µs, failed count and h2load's
    CPU seconds (user + system). The latencies are h2load's per-request "time to end of response"
    from --log-file. With `cpu`, h2load runs pinned to that CPU (taskset); `headers` are extra
    "name: value" request headers."""
    with tempfile.NamedTemporaryFile(suffix=".log", delete=False) as log:
        log_path = log.name
    cmd = ([] if cpu is None else ["taskset", "-c", str(cpu)]) + ["h2load", "-c", str(clients), "-m", str(streams), "-D", str(seconds), "--warm-up-time", str(warmup),
           "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", body, "--log-file", log_path]
    if rps_per_client:
        cmd += ["--rps", f"{rps_per_client:.1f}"]
    for header in headers:
        cmd += ["-H", header]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    cpu_before = children_cpu_seconds()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu_used = children_cpu_seconds() - cpu_before
    latencies = []
    with open(log_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "200":
                latencies.append(int(parts[2]))
    os.unlink(log_path)
    succeeded = failed = 0
    for line in out.splitlines():
        if line.startswith("requests:"):
            # "requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed, 0 errored, 0 timeout"
            fields = dict((part.split()[1], int(part.split()[0])) for part in line.split(":", 1)[1].split(","))
            succeeded, failed = fields.get("succeeded", 0), fields.get("failed", 0) + fields.get("errored", 0)
    latencies.sort()
    return {
        "requests": succeeded,
        "failed": failed,
        "rps": succeeded / seconds,
        "mean_us": statistics.fmean(latencies) if latencies else float("nan"),
        "p50_us": percentile(latencies, 0.50),
        "p90_us": percentile(latencies, 0.90),
        "p99_us": percentile(latencies, 0.99),
        "p999_us": percentile(latencies, 0.999),
        "max_us": latencies[-1] if latencies else float("nan"),
        "cpu_s": cpu_used,
    }


def loadtest_closed_loop(binary, port, concurrency, seconds, workdir, scenario=None, warmup=1, pin=False):
    """One closed-loop `loadtest` run against 127.0.0.1:PORT: C connections with one call in flight
    each, the default call deadline (CALL_TIMEOUT), `warmup` then `seconds` measured. With `pin` it
    runs on CPU 1 (taskset). Returns rps, mean/p50/p99 in µs, errors, calls sent (warm-up included)
    and its CPU seconds (user + system)."""
    report = Path(workdir) / "loadtest-report.json"
    cmd = (["taskset", "-c", "1"] if pin else []) + [
        binary, "--target", f"127.0.0.1:{port}", "--concurrency", str(concurrency), "--connections",
        str(concurrency), "--duration", f"{seconds}s", "--warmup", f"{warmup}s", "--timeout", CALL_TIMEOUT,
        "--quiet", "--json", str(report)] + (["--scenario", scenario] if scenario else [])
    cpu_before = children_cpu_seconds()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    cpu_used = children_cpu_seconds() - cpu_before
    data = json.loads(report.read_text())
    latency = data["latency"]
    return {"rps": data["achievedRate"], "mean_us": latency["mean"], "p50_us": latency["p50"],
            "p99_us": latency["p99"], "errors": sum(latency["errors"].values()), "sent": data["generator"]["sent"],
            "cpu_s": cpu_used}


def exact_topk(items, queries, k, mask=None, batch=256):
    """Row numbers of the k best items (inner product) per query, best first; rows where `mask` is False never
    count. numpy is imported here so the h2load scripts do not need it."""
    import numpy as np

    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), batch):
        scores = queries[start:start + batch] @ items.T
        if mask is not None:
            scores[:, ~mask] = -np.inf
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
        out[start:start + batch] = np.take_along_axis(part, order, axis=1)
    return out


def recall(found, truth):
    """Mean share of each query's true top k (`truth` rows) among its first k hits (`found` rows)."""
    k = truth.shape[1]
    return sum(len(set(f[:k]) & set(t)) / k for f, t in zip(found, truth)) / len(truth)
