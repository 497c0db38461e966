#!/usr/bin/env bash
# mirror_bench.sh: stream-mirror copying a backlog between two local servers, next to
# stream-put writing the same records into the same target server, in one run.
#
#   1. N (default 1,000,000) lines of 100 bytes are put into a SHARDS-shard stream on
#      server A (not timed).
#   2. `stream-mirror --from A --to B STREAM --once` (timed from launch to exit: it exits
#      once the target holds everything): records/s and MB/s.
#   3. `stream-put` of the same lines into a new stream with the same shard count on B
#      (timed the same way): the direct put throughput. Target: mirror >= 70% of it.
# RUNS (default 3) repetitions of 2-3 on fresh streams; medians printed.
#
# Usage: bench/mirror_bench.sh        Environment: N=1000000 SHARDS=4 RUNS=3
#        BUILD_DIR=<repo>/build-bench (Release; configured and built if needed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build-bench}
N=${N:-1000000}
SHARDS=${SHARDS:-4}
RUNS=${RUNS:-3}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTREAMKIT_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD_DIR" -j2 --target stream-serve stream-ctl stream-put stream-mirror >/dev/null
export PATH="$BUILD_DIR:$PATH" STREAMKIT_NO_AUTOSTART=1
T=$(mktemp -d "${TMPDIR:-/tmp}/mirror-bench.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
for s in a b; do
  stream-serve --socket "$T/$s.sock" --data "$T/$s" >"$T/$s.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do stream-ctl --socket "$T/$s.sock" list >/dev/null 2>&1 && break; sleep 0.05; done
done
awk -v n="$N" 'BEGIN { pad = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop";
  for (i = 0; i < n; i++) { s = sprintf("%d ", i); print s substr(pad, 1, 99 - length(s)) } }' >"$T/input"
bytes=$(stat -c %s "$T/input")
now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mr=() mb=() pr=()
for r in $(seq "$RUNS"); do
  stream-ctl --socket "$T/a.sock" create "src$r" --shards "$SHARDS" 2>/dev/null
  stream-put --socket "$T/a.sock" "src$r" <"$T/input"
  t0=$(now); stream-mirror --from "$T/a.sock" --to "$T/b.sock" "src$r" --once; t1=$(now)
  got=$(stream-ctl --socket "$T/b.sock" describe "src$r" --json | awk -F'"records":' '{ split($2, a, ","); print a[1] }')
  [ "$got" -eq "$N" ] || { echo "mirror_bench: target holds $got records, expected $N" >&2; exit 1; }
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  stream-ctl --socket "$T/b.sock" create "put$r" --shards "$SHARDS" 2>/dev/null
  t0=$(now); stream-put --socket "$T/b.sock" "put$r" <"$T/input"; t1=$(now)
  s2=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  mr+=("$(awk -v n="$N" -v s="$s" 'BEGIN { printf("%.0f", n / s) }')")
  mb+=("$(awk -v b="$bytes" -v s="$s" 'BEGIN { printf("%.1f", b / 1e6 / s) }')")
  pr+=("$(awk -v n="$N" -v s="$s2" 'BEGIN { printf("%.0f", n / s) }')")
  echo "run $r: mirror ${mr[-1]} records/s (${mb[-1]} MB/s of data, ${s}s); stream-put into the target ${pr[-1]} records/s (${s2}s)"
done
M=$(printf '%s\n' "${mr[@]}" | median) MB=$(printf '%s\n' "${mb[@]}" | median) P=$(printf '%s\n' "${pr[@]}" | median)
echo "RESULT mirror $M records/s ($MB MB/s) runs=${mr[*]}"
echo "RESULT put_into_target $P records/s runs=${pr[*]}"
awk -v m="$M" -v p="$P" 'BEGIN { r = m / p; printf("ratio mirror/put = %.2f (target >= 0.70: %s)\n", r, r >= 0.7 ? "met" : "MISSED") }'
