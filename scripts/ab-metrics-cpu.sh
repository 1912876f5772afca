#!/bin/bash
# Rank server CPU per call with metrics off vs on (issue 18): two rankd processes of the same
# binary side by side (one event loop each), one with --metrics-listen, alternating h2load runs of
# the same Rank request; prints one line per run and the median of the paired on/off ratios.
# CPU from /proc/PID/stat utime+stime (clock ticks). The metrics side is scraped once per run
# (after it, so the scrape's own CPU is not counted in the call's).
#   scripts/ab-metrics-cpu.sh RANKD SNAPSHOT REPEATS N "H2LOAD_FLAGS" [USER]   (e.g. 10 20000 "-c 1 -m 8")
set -euo pipefail
bin=$1; snapshot=$2; repeats=$3; n=$4; flags=$5; user=${6:-u_42}
# RankRequest{user_id: USER, k: 20} with its 5-byte gRPC prefix.
body=$(mktemp)
python3 - "$user" "$body" <<'PY'
import sys
user = sys.argv[1].encode()
message = bytes([0x0a, len(user)]) + user + bytes([0x10, 20])
open(sys.argv[2], "wb").write(bytes([0]) + len(message).to_bytes(4, "big") + message)
PY
tck=$(getconf CLK_TCK)
po=$((20000 + RANDOM % 10000)); pm=$((po + 1)); pmetrics=$((po + 2))
"$bin" --listen 127.0.0.1:$po --threads 1 --snapshot "$snapshot" >/dev/null 2>&1 & ido=$!
"$bin" --listen 127.0.0.1:$pm --threads 1 --snapshot "$snapshot" --metrics-listen 127.0.0.1:$pmetrics >/dev/null 2>&1 & idm=$!
trap 'kill $ido $idm 2>/dev/null || true; rm -f $body' EXIT
for p in $po $pm $pmetrics; do for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done; done
call() { h2load -n "$1" $flags -H 'content-type: application/grpc' -H 'te: trailers' -d "$body" http://127.0.0.1:$2/ranking.v1.Ranker/Rank; }
# Warm up both (snapshot pages, scratch buffers) and check the calls succeed.
for p in $po $pm; do
  out=$(call 2000 $p)
  grep -q " 2000 succeeded" <<<"$out" || { echo "warm-up failed on port $p:"; echo "$out"; exit 1; }
done
cpu() { awk '{print $14 + $15}' /proc/$1/stat; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
ratios=()
for r in $(seq "$repeats"); do
  declare -A per=()
  order="off on"; [ $((r % 2)) = 0 ] && order="on off"   # alternate which side goes first
  for side in $order; do
    if [ $side = off ]; then id=$ido; p=$po; else id=$idm; p=$pm; fi
    c0=$(cpu $id)
    out=$(call "$n" $p)
    c1=$(cpu $id)
    ok=$(sed -n 's/.* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
    rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
    per[$side]=$(awk -v c=$((c1 - c0)) -v t=$tck -v n=$ok 'BEGIN {printf "%.2f", c / t * 1e6 / n}')
    echo "run $r $side: succeeded $ok, req/s $rps, server CPU us/call ${per[$side]}"
  done
  curl -s http://127.0.0.1:$pmetrics/metrics >/dev/null
  ratios+=($(awk -v a=${per[on]} -v b=${per[off]} 'BEGIN {printf "%.4f", a / b}'))
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "on/off ratios: ${ratios[*]}"
echo "median on/off: $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}')"
echo "Rank calls counted by the metrics side: $(curl -s http://127.0.0.1:$pmetrics/metrics | grep '^rankd_rank_seconds_count')"
