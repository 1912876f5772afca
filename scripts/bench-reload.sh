#!/usr/bin/env bash
# Publishing and hot-reload numbers for docs/BENCHMARKS.md: publish throughput over loopback,
# activation time, and resident memory after 2 and after N activations alternating two snapshots.
#   scripts/bench-reload.sh BIN_DIR SNAPSHOT_A SNAPSHOT_B [ACTIVATIONS]   (default 100)
# BIN_DIR holds release rankd and rankctl. The snapshot root is a fresh temporary directory.
set -euo pipefail
bin=$1; a=$2; b=$3; n=${4:-100}
work=$(mktemp -d /tmp/bench-reload.XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
export RANKD_ADMIN_TOKEN=bench-token
port=$((20000 + RANDOM % 20000))
"$bin/rankd" --listen 127.0.0.1:$port --snapshot-root "$work/root" >"$work/rankd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
va=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshotVersion"])' "$a/manifest.json")
vb=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshotVersion"])' "$b/manifest.json")
rss() { awk '/^VmRSS/ {print $2}' /proc/$pid/status; }
hwm() { awk '/^VmHWM/ {print $2}' /proc/$pid/status; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "publish A: $("$bin/rankctl" publish "$a" --server 127.0.0.1:$port --quiet | tr '\n' ' ')"
echo "publish B: $("$bin/rankctl" publish "$b" --server 127.0.0.1:$port --quiet | tr '\n' ' ')"
loads=()
for i in $(seq "$n"); do
  v=$([ $((i % 2)) = 1 ] && echo "$va" || echo "$vb")
  out=$("$bin/rankctl" activate "$v" --server 127.0.0.1:$port)
  loads+=("$(sed -n 's/.*loaded in \([0-9.]*\) ms.*/\1/p' <<<"$out")")
  if [ "$i" = 2 ]; then sleep 1; rss2=$(rss); fi
done
sleep 1
echo "activations: $n; load ms (open+verify+derive+prefault) median $(printf '%s\n' "${loads[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'), min $(printf '%s\n' "${loads[@]}" | sort -n | head -1), max $(printf '%s\n' "${loads[@]}" | sort -n | tail -1)"
echo "load ms, all, sorted: $(printf '%s\n' "${loads[@]}" | sort -n | tr '\n' ' ')"
echo "RSS after 2 activations: ${rss2} KiB; after $n: $(rss) KiB; peak (VmHWM): $(hwm) KiB"
"$bin/rankctl" status --server 127.0.0.1:$port | sed -n '1,3p'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
