#!/bin/bash
# Server CPU per Echo/Unary call, two rankd binaries side by side (one loop each), alternating
# h2load runs; prints one line per run. CPU from /proc/PID/stat utime+stime (clock ticks).
#   scripts/ab-echo-cpu.sh RANKD_A RANKD_B REPEATS N "H2LOAD_FLAGS"   (e.g. 5 200000 "-c 1 -m 16")
set -euo pipefail
a=$1; b=$2; repeats=$3; n=$4; flags=$5
printf '\0\0\0\0\0' > /tmp/empty.bin
tck=$(getconf CLK_TCK)
start() { "$1" --listen 127.0.0.1:$2 --threads 1 --enable-test-services >/dev/null 2>&1 & echo $!; }
pa=$((20000 + RANDOM % 10000)); pb=$((pa + 1))
ida=$(start "$a" $pa); idb=$(start "$b" $pb)
trap 'kill $ida $idb 2>/dev/null || true' EXIT
for p in $pa $pb; do for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done; done
cpu() { awk '{print $14 + $15}' /proc/$1/stat; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$repeats"); do
  for side in A B; do
    if [ $side = A ]; then id=$ida; p=$pa; else id=$idb; p=$pb; fi
    c0=$(cpu $id)
    out=$(h2load -n "$n" $flags -H 'content-type: application/grpc' -H 'te: trailers' -d /tmp/empty.bin \
      http://127.0.0.1:$p/rankd.testing.v1.Echo/Unary)
    c1=$(cpu $id)
    ok=$(sed -n 's/.* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
    rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
    echo "run $r $side: succeeded $ok, req/s $rps, server CPU us/call $(awk -v c=$((c1 - c0)) -v t=$tck -v n=$ok 'BEGIN {printf "%.2f", c / t * 1e6 / n}')"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
