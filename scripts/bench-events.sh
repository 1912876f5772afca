#!/usr/bin/env bash
# Events under Rank load (issue 17; docs/BENCHMARKS.md "Events"): one release rankd, Rank traffic
# from `loadtest` at a fixed open-loop rate, alternating runs without and with `event-bench stream`
# (RecordEvents over gRPC client streams) flowing at the same time. Prints each run's Rank p50/p99
# and the ingest rate, then the medians and the p99 ratio (with events / without).
#
#   scripts/bench-events.sh            # after `make loadtest-build` and building event-bench (make bench-events does both)
#
# Environment: SNAPSHOT (default var/demo/snapshot, as `make run` creates it), RATE (Rank calls/s,
# default 1000), RUN_SECONDS (10), ROUNDS (3), STREAMS (2), BATCH (1000), EVENT_USERS (50000),
# EVENT_ITEMS (20000), EVENT_RATE (events/s for the streams in all; 0, the default: as fast as rankd
# takes them), MESSAGES (stream messages per StreamEvents call, 50), EVENT_NICE (nice value of the event
# client process, 0), RANKD_ARGS (extra rankd flags, e.g. `--event-ingest-priority low`). Wrap in `flock /tmp/rankd-bench.lock` on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
rankd=${RANKD:-.build-loadtest-root/release/rankd}
loadtest=${LOADTEST:-LoadTests/.build-loadtest/release/loadtest}
eventbench=${EVENT_BENCH:-LoadTests/.build-loadtest/release/event-bench}
snapshot=${SNAPSHOT:-var/demo/snapshot}
rate=${RATE:-1000}
seconds=${RUN_SECONDS:-10}
rounds=${ROUNDS:-3}
streams=${STREAMS:-2}
batch=${BATCH:-1000}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$rankd" --listen "127.0.0.1:$port" --snapshot "$snapshot" ${RANKD_ARGS:-} > "$work/rankd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q '"snapshot active"\|msg="snapshot active"' "$work/rankd.log" && break; sleep 0.1; done
grep -q 'snapshot active' "$work/rankd.log" || { cat "$work/rankd.log"; exit 1; }

run_rank() {  # $1: report path
  "$loadtest" --target "127.0.0.1:$port" --rate "$rate" --duration "${seconds}s" --warmup 2s \
    --scenario LoadTests/scenarios/rank-demo.json --json "$1" > /dev/null
}
percentiles() {  # the Rank latency percentiles of a loadtest JSON report, µs
  python3 - "$1" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
latency = report["latency"]
print(latency["p50"], latency["p99"], sum(latency["errors"].values()))
PY
}

echo "| round | events | Rank p50 µs | Rank p99 µs | events/s recorded | Rank errors |"
echo "|---:|---|---:|---:|---:|---:|"
for round in $(seq "$rounds"); do
  run_rank "$work/off-$round.json"
  read -r p50 p99 errors < <(percentiles "$work/off-$round.json")
  echo "| $round | off | $p50 | $p99 | | $errors |"
  nice -n "${EVENT_NICE:-0}" "$eventbench" stream --rate "${EVENT_RATE:-0}" --messages "${MESSAGES:-50}" --server "127.0.0.1:$port" --seconds $((seconds + 3)) --streams "$streams" --batch "$batch" \
    --users "${EVENT_USERS:-50000}" --items "${EVENT_ITEMS:-20000}" --seed "$round" > "$work/events-$round.txt" &
  events=$!
  sleep 0.5
  run_rank "$work/on-$round.json"
  wait $events
  read -r p50 p99 errors < <(percentiles "$work/on-$round.json")
  ingest=$(sed -n 's/.*: \([0-9]*\) events\/s$/\1/p' "$work/events-$round.txt")
  echo "| $round | on | $p50 | $p99 | $ingest | $errors |"
  echo "$p99" >> "$work/p99-on"; echo "$ingest" >> "$work/ingest"
  percentiles "$work/off-$round.json" | awk '{print $2}' >> "$work/p99-off"
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
off=$(median "$work/p99-off"); on=$(median "$work/p99-on"); ingest=$(median "$work/ingest")
echo
echo "medians: Rank p99 off $off µs, on $on µs, ratio $(python3 -c "print(f'{$on/$off:.2f}')"); ingest $ingest events/s (Rank $rate calls/s; events: $streams streams × $batch-event batches, rate ${EVENT_RATE:-0} (0 = unpaced), client nice ${EVENT_NICE:-0})"
