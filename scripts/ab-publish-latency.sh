#!/bin/bash
# Echo latency on the loop that receives a Publish: rankd --threads 1, h2load paces Echo/Unary at
# 500 req/s on its own connection while rankctl publishes SNAPSHOT; A and B alternate.
#   scripts/ab-publish-latency.sh BIN_DIR_A BIN_DIR_B SNAPSHOT REPEATS   (BIN_DIR: release rankd + rankctl)
set -euo pipefail
a=$1; b=$2; snap=$3; repeats=$4
export RANKD_ADMIN_TOKEN=bench-token
printf '\0\0\0\0\0' > /tmp/empty.bin
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$repeats"); do
  for side in A B; do
    bin=$([ $side = A ] && echo "$a" || echo "$b")
    work=$(mktemp -d /tmp/publish-lat.XXXXXX)
    port=$((20000 + RANDOM % 20000))
    "$bin/rankd" --listen 127.0.0.1:$port --threads 1 --enable-test-services --snapshot-root "$work/root" \
      >"$work/rankd.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    h2load -c 1 -m 1 --rps 500 -D 10 -H 'content-type: application/grpc' -H 'te: trailers' -d /tmp/empty.bin \
      --log-file "$work/h2load.log" http://127.0.0.1:$port/rankd.testing.v1.Echo/Unary >"$work/h2load.out" 2>&1 &
    h2=$!
    sleep 2
    t0=$(date +%s%6N)
    out=$("$bin/rankctl" publish "$snap" --server 127.0.0.1:$port --quiet | tr '\n' ' ')
    t1=$(date +%s%6N)
    wait $h2 || true
    kill $pid; wait $pid || true
    python3 - "$work/h2load.log" "$t0" "$t1" "$r $side" "$out" <<'PY'
import sys
path, t0, t1, label, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = [l.split("\t") for l in open(path) if l.strip()]
during = sorted(int(r[2]) for r in rows if t0 <= int(r[0]) <= t1)
other = sorted(int(r[2]) for r in rows if not (t0 <= int(r[0]) <= t1))
bad = sum(1 for r in rows if r[1] != "200")
def pct(v, p): return v[min(len(v) - 1, int(p * len(v)))] if v else -1
print(f"run {label}: during publish n={len(during)} p50={pct(during,.5)} p99={pct(during,.99)} max={during[-1] if during else -1} us; "
      f"outside n={len(other)} p50={pct(other,.5)} p99={pct(other,.99)} max={other[-1] if other else -1} us; non-200 {bad}; {out.strip()}")
PY
    rm -rf "$work"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
