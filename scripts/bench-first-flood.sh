#!/usr/bin/env bash
# The first idle-connection flood a freshly started rankd sees, for docs/BENCHMARKS.md. attacks.py runs
# its rounds against one long-lived rankd, so its later rounds find memory and tables already grown;
# here every round starts each variant anew. Each round: rankd and the bystander (200 Rank calls/s for
# 13 s) on CPU 0, 10,000 idle connections from 125 addresses on CPU 1 (attacks.py's idle-connections,
# 2 s timeouts); prints the bystander's p99 and max, and the connection-memory release rankd logged.
#   scripts/bench-first-flood.sh RANKCTL ROUNDS RANKD_BIN [RANKD_BIN...]
# Run it from the repo root, with the venv of `make venv` (grpcio, hpack) and a hard open-file limit
# of at least 10,100.
set -euo pipefail
rankctl=$1; rounds=$2; shift 2
python=${PYTHON:-.venv/bin/python}
attacks=LoadTests/Attacks
work=$(mktemp -d /tmp/bench-first-flood.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)"
"$rankctl" synth --out "$work/in" --snapshot "$work/snap" --users 500 --items 3000 --dim 32 --categories 10 --quiet >/dev/null
port=$((20000 + RANDOM % 20000))
for round in $(seq "$rounds"); do
  for bin in "$@"; do
    taskset -c 0 "$bin" --listen 127.0.0.1:$port --snapshot "$work/snap" --idle-timeout 2 --handshake-timeout 2 \
      --stall-timeout 2 --log-level info >"$work/rankd.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    taskset -c 0 "$python" $attacks/bystander.py --target 127.0.0.1:$port --seconds 13 --rate 200 >"$work/bystander.json" &
    bystander=$!
    sleep 0.5
    taskset -c 1 "$python" $attacks/attacks.py --rankd "$bin" --rankctl "$rankctl" --child idle-connections \
      --port $port --limit 10 --seconds 8 --attacker-cpu 0.5 --attacker-address 127.0.0.2 --idle 10000 >/dev/null
    wait $bystander
    latency=$("$python" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("p99 %.2f ms, max %.2f ms" % (d["p99_ms"], d["max_ms"]))' "$work/bystander.json")
    echo "round $round $bin: $latency; $(grep -o 'rss_mib_before=[0-9]* took_ms=[0-9]*' "$work/rankd.log" || echo 'no memory release')"
    kill $pid; wait $pid 2>/dev/null || true; pid=
  done
done
