#!/bin/bash
# Publish throughput over loopback, two builds side by side, alternating: each run starts that
# build's rankd on an empty snapshot root and publishes SNAPSHOT with that build's rankctl.
#   scripts/ab-publish-throughput.sh BIN_DIR_A BIN_DIR_B SNAPSHOT REPEATS   (BIN_DIR: release rankd + rankctl)
set -euo pipefail
a=$1; b=$2; snap=$3; repeats=$4
export RANKD_ADMIN_TOKEN=bench-token
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$repeats"); do
  for side in A B; do
    bin=$([ $side = A ] && echo "$a" || echo "$b")
    work=$(mktemp -d /tmp/publish-tp.XXXXXX)
    port=$((20000 + RANDOM % 20000))
    "$bin/rankd" --listen 127.0.0.1:$port --snapshot-root "$work/root" >"$work/rankd.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    echo "run $r $side: $("$bin/rankctl" publish "$snap" --server 127.0.0.1:$port --quiet | tr '\n' ' ') (load $(cut -d' ' -f1 /proc/loadavg))"
    kill $pid; wait $pid || true
    rm -rf "$work"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
