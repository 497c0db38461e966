#!/usr/bin/env bash
# firehose_bench.sh: stream-firehose draining a backlog, next to `zstd -1` on the same bytes.
#
#   1. SIZE_MB (default 1024) of 200-byte JSON records are put into a SHARDS-shard stream
#      (not timed).
#   2. `stream-firehose --once --compress zstd` drains it to NDJSON files (timed, from launch
#      to exit: it exits after the last file is durable and checkpointed).
#   3. `zstd -1 -T1` compresses the same NDJSON bytes from a file in the page cache to
#      /dev/null (timed): the scale. Target: firehose >= 80% of zstd's MB/s.
#   4. `stream-firehose --once --format parquet --compress zstd` drains it again (timed).
# MB/s = input NDJSON bytes / seconds. RUNS (default 3) repetitions of 2-4; medians printed.
#
# Usage: bench/firehose_bench.sh        Environment: SIZE_MB=1024 SHARDS=4 RUNS=3
#        BUILD_DIR=<repo>/build-bench (Release; configured and built if needed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build-bench}
SIZE_MB=${SIZE_MB:-1024}
SHARDS=${SHARDS:-4}
RUNS=${RUNS:-3}
BUFFER=${BUFFER:-5MiB}   # --buffer-size (the default)
command -v zstd >/dev/null || { echo "firehose_bench: needs the zstd command (apt-get install zstd)" >&2; exit 1; }
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTREAMKIT_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD_DIR" -j2 --target stream-serve stream-ctl stream-put stream-firehose >/dev/null
export PATH="$BUILD_DIR:$PATH"
T=$(mktemp -d "${TMPDIR:-/tmp}/firehose-bench.XXXXXX")
export STREAMKIT_SOCKET="$T/s.sock" STREAMKIT_DATA="$T/data" STREAMKIT_NO_AUTOSTART=1
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
stream-serve >"$T/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do stream-ctl list >/dev/null 2>&1 && break; sleep 0.05; done

# 200-byte JSON events like a clickstream: an id, a user, an event type, a time, a page, a
# session id and a hex trace field, padded with random hex to 199 bytes + newline (random
# fields keep the data from compressing unrealistically well).
n=$((SIZE_MB * 1024 * 1024 / 200))
awk -v n="$n" 'BEGIN { srand(42); split("click view buy scroll login logout", ev, " "); hex = "0123456789abcdef";
  for (i = 0; i < n; i++) {
    s = sprintf("{\"id\":%d,\"user\":\"u%d\",\"event\":\"%s\",\"ts\":%d,\"page\":\"/p/%d\",\"session\":\"%08x\",\"trace\":\"",
                i, int(rand() * 100000), ev[int(rand() * 6) + 1], 1700000000000 + i * 7, int(rand() * 5000), int(rand() * 4294967295));
    t = ""; for (k = length(s) + 2; k < 199; k++) t = t substr(hex, int(rand() * 16) + 1, 1);
    print s t "\"}" } }' >"$T/input.ndjson"
bytes=$(stat -c %s "$T/input.ndjson")
stream-ctl create bench --shards "$SHARDS" 2>/dev/null
stream-put bench --batch-size 1MiB <"$T/input.ndjson"
cat >"$T/schema.json" <<'EOF'
{"columns":[{"name":"id","type":"bigint"},{"name":"user","type":"string"},{"name":"event","type":"string"},
            {"name":"ts","type":"timestamp"},{"name":"page","type":"string"},{"name":"session","type":"string"},
            {"name":"trace","type":"string"}]}
EOF
echo "firehose_bench: $n records, $((bytes / 1048576)) MiB of NDJSON in $SHARDS shards; $RUNS runs" >&2

now() { date +%s.%N; }
mbps() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf("%.0f", b / 1048576 / s) }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
fh=() zs=() pq=()
for r in $(seq "$RUNS"); do
  rm -rf "$T/lake"
  t0=$(now); stream-firehose bench --to "$T/lake" --group "z$r" --once --compress zstd --buffer-size "$BUFFER"; t1=$(now)
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'); fh+=("$(mbps "$s")")
  out=$(find "$T/lake" -name '*.zst' -printf '%s\n' | awk '{ s += $1 } END { print s }')
  got=$(find "$T/lake" -name '*.zst' -exec zstd -qdc {} + | wc -l)
  [ "$got" -eq "$n" ] || { echo "firehose_bench: delivered $got records, expected $n" >&2; exit 1; }
  cat "$T/input.ndjson" >/dev/null
  t0=$(now); zstd -1 -T1 -q -c "$T/input.ndjson" >/dev/null; t1=$(now)
  s2=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'); zs+=("$(mbps "$s2")")
  rm -rf "$T/lake"
  t0=$(now); stream-firehose bench --to "$T/lake" --group "p$r" --once --format parquet --schema "$T/schema.json" \
    --compress zstd --buffer-size "$BUFFER"; t1=$(now)
  s3=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'); pq+=("$(mbps "$s3")")
  echo "run $r: firehose ndjson+zstd ${fh[-1]} MB/s (${s}s, $((out / 1048576)) MiB out); zstd -1 ${zs[-1]} MB/s (${s2}s); firehose parquet+zstd ${pq[-1]} MB/s (${s3}s)"
done
F=$(printf '%s\n' "${fh[@]}" | median) Z=$(printf '%s\n' "${zs[@]}" | median) P=$(printf '%s\n' "${pq[@]}" | median)
echo "RESULT firehose_ndjson_zstd $F MB/s runs=${fh[*]}"
echo "RESULT zstd_1 $Z MB/s runs=${zs[*]}"
echo "RESULT firehose_parquet_zstd $P MB/s runs=${pq[*]}"
awk -v f="$F" -v z="$Z" 'BEGIN { r = f / z; printf("ratio firehose/zstd -1 = %.2f (target >= 0.80: %s)\n", r, r >= 0.8 ? "met" : "MISSED") }'
