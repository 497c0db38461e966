#!/usr/bin/env bash
# stream_bench.sh: streamkit end to end through its own tools, side by side with the peers
# (Redis Streams; NATS JetStream on request), in one run, on this machine.
#
#   W1  N lines of 100 printable bytes through `stream-put` into a 1-shard stream
#       (timed from launch to exit of stream-put: it exits once everything is acknowledged)
#   W2  `stream-tail -n +1` of them into /dev/null (timed the same way; the count is checked
#       separately through `| wc -l`)
#   W3  follow latency, put -> tail output, LAT_N records at LAT_RATE/s (bench/follow_latency):
#       mode `tools`  = stream-put --linger 0 | server | stream-tail -f (what the issue asks)
#       mode `client` = the client library in one process, like the peers' W3
#   W1 again against a server started with `--fsync always` (group commit)
#   Memory: peak RSS (/usr/bin/time %M) of stream-put in W1 and stream-tail in W2;
#           VmHWM/VmRSS of stream-serve holding MEM_STREAMS streams x MEM_SHARDS shards idle
#           (and again after a restart on the same data dir)
#   Peers:  ../shared/bench/peers/redis.sh (AOF everysec) and FSYNC=always redis.sh, in the same
#           run; nats.sh only with PEERS_NATS=1 (needs npm + Go, slow). A peer that fails (e.g. no
#           network for apt) falls back to the reference run in peers/results/summary.txt, and the
#           table says so.
#   Noise:  the peers' own AF_UNIX ping-pong probe (peers/phys.c unixrtt) once per run, shown
#           next to its reference value: this machine is shared and its speed drifts.
#
# Every streamkit run starts a fresh server (default durability policy unless stated) on a fresh
# temp dir. Output: per-run lines, `RESULT <who> <figure> <unit> median= min= max= spread= runs=`
# lines (same format as the peers), then a table: streamkit, peer, ratio, target, met/missed.
#
# Usage:  bench/stream_bench.sh
# Environment (defaults):
#   RUNS=3            streamkit repetitions (median/min/max/spread reported)
#   PEER_RUNS=1       peer runs; run k is one RUNS=1 call of each peer script right after
#                     streamkit's run k (interleaved: both see the same machine weather)
#   N=1000000         records for W1/W2 (also passed to the peers)
#   LAT_N=10000 LAT_RATE=1000   W3 records and rate (also passed to the peers)
#   MEM_STREAMS=1000 MEM_SHARDS=4 MEM_RUNS=1 (creating 4,000 shards takes ~40 s)   idle server memory test
#   SKIP_PEERS=1      do not run peers; compare with the reference figures
#   PEERS_NATS=1      also run nats.sh
#   PROFILE=1         after the runs, perf-profile one W1 (server and stream-put) and one W3
#                     (server), print the top symbols (needs /usr/bin/perf)
#   BUILD_DIR=<repo>/build-bench   Release build dir (never <repo>/build); the script configures
#                     it if needed and rebuilds the tools + follow_latency (incremental)
#   SKIP_BUILD=1      use the binaries already in BUILD_DIR (no rebuild)
#   PEERS_DIR=<repo>/../shared/bench/peers
#   OUT_DIR=${TMPDIR:-/tmp}/stream_bench.<date>   kept: full log, peer logs, RESULT lines
#   SK_SERVE_FLAGS="" extra flags for the default-policy server (e.g. "--fsync interval=200")
#   PIN_W3=1          also W3 (client library, then the tools) with everything pinned to CPU 0
#                     (taskset), and Redis' W3 pinned the same way: on this 2-vCPU VM waking a
#                     thread on the other, idle vCPU costs 30-80 us, so where the scheduler puts
#                     the threads decides most of the latency (0: skip)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
RUNS="${RUNS:-3}"
PEER_RUNS="${PEER_RUNS:-1}"
N="${N:-1000000}"
LAT_N="${LAT_N:-10000}"
LAT_RATE="${LAT_RATE:-1000}"
MEM_STREAMS="${MEM_STREAMS:-1000}"
MEM_SHARDS="${MEM_SHARDS:-4}"
MEM_RUNS="${MEM_RUNS:-1}"
SKIP_PEERS="${SKIP_PEERS:-0}"
PEERS_NATS="${PEERS_NATS:-0}"
PROFILE="${PROFILE:-0}"
PIN_W3="${PIN_W3:-1}"
command -v taskset >/dev/null || PIN_W3=0
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench}"
PEERS_DIR="${PEERS_DIR:-$(cd "$ROOT/../shared/bench/peers" 2>/dev/null && pwd || echo "$ROOT/../shared/bench/peers")}"
REF_SUMMARY="$PEERS_DIR/results/summary.txt"
STAMP="$(date +%Y%m%dT%H%M%S)"
OUT_DIR="${OUT_DIR:-${TMPDIR:-/tmp}/stream_bench.$STAMP}"
SK_SERVE_FLAGS="${SK_SERVE_FLAGS:-}"

if [ "$(cd "$BUILD_DIR" 2>/dev/null && pwd || echo "$BUILD_DIR")" = "$ROOT/build" ]; then
  echo "stream_bench.sh: refusing to use $ROOT/build; pick another BUILD_DIR" >&2
  exit 2
fi
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/stream_bench.log"
RES="$OUT_DIR/results.txt"   # RESULT lines, tagged with their source for the table
: >"$RES"
# Everything we print also goes to the log.
exec > >(tee -a "$LOG") 2>&1

say() { printf '%s\n' "$*"; }
note() { printf '# %s\n' "$*"; }

# ---- cleanup: our servers (by PID), our temp dir -------------------------------------------
WORK=""
SERVER_PID=""
PERF_PID=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null; fi
  if [ -n "$SERVER_PID" ]; then stop_server; fi
  [ -n "$WORK" ] && rm -rf "$WORK"
  if [ $rc -ne 0 ]; then echo "stream_bench.sh: failed (rc=$rc); log in $LOG" >&2; fi
  return $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- helpers ---------------------------------------------------------------------------------
# report <who> <figure> <unit> <v1> <v2> ...: one RESULT line (same format as peers/common.sh)
report() {
  local who="$1" fig="$2" unit="$3"; shift 3
  [ "$#" -gt 0 ] || { note "no values for $who $fig"; return 0; }
  python3 - "$who" "$fig" "$unit" "$@" <<'PY'
import sys, statistics
peer, fig, unit, *vals = sys.argv[1:]
v = [float(x) for x in vals]
m = statistics.median(v)
sp = (max(v) - min(v)) / m * 100 if m else 0.0
fmt = (lambda x: f"{x:.0f}") if m >= 100 else (lambda x: f"{x:.3g}")
print(f"RESULT {peer} {fig} {unit} median={fmt(m)} min={fmt(min(v))} max={fmt(max(v))} "
      f"spread={sp:.0f}% runs={','.join(fmt(x) for x in v)}")
PY
}
now_ns() { date +%s%N; }
field() { sed -nE "s/.*[ ^]$1=([0-9.]+).*/\1/p" <<<" $2"; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

start_server() { # start_server <datadir> [stream-serve flags...]; sets SERVER_PID
  local data="$1"; shift
  export STREAMKIT_DATA="$data" STREAMKIT_SOCKET="$WORK/serve.sock" STREAMKIT_NO_AUTOSTART=1
  ${SERVE_PREFIX:-} "$BIN/stream-serve" "$@" >>"$WORK/serve.log" 2>&1 &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 200; i++)); do
    "$BIN/stream-ctl" list >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { SERVER_PID=""; echo "stream-serve died:" >&2; tail -20 "$WORK/serve.log" >&2; return 1; }
    sleep 0.05
  done
  echo "stream-serve did not come up" >&2
  return 1
}
stop_server() { # SIGTERM our server, wait up to 20 s, then SIGKILL it
  local pid="$SERVER_PID" i
  SERVER_PID=""
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 400; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.05
  done
  echo "stream-serve $pid ignored SIGTERM for 20 s; killing it" >&2
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
create_stream() { "$BIN/stream-ctl" create "$1" --shards "${2:-1}" >/dev/null 2>&1 || { echo "cannot create stream $1" >&2; return 1; }; }

# ---- build -------------------------------------------------------------------------------------
if ! command -v python3 >/dev/null; then echo "stream_bench.sh: needs python3" >&2; exit 2; fi
if [ ! -x /usr/bin/time ]; then
  note "installing the Debian package 'time' (for /usr/bin/time %M)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 || true; DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null; }
fi
if [ "${SKIP_BUILD:-0}" = 1 ] && [ -x "$BUILD_DIR/stream-serve" ] && [ -x "$BUILD_DIR/bench/follow_latency" ]; then
  note "SKIP_BUILD=1: using the binaries already in $BUILD_DIR"
else
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTREAMKIT_TESTS=OFF >/dev/null
  fi
  cmake --build "$BUILD_DIR" -j2 --target stream-serve stream-ctl stream-put stream-tail follow_latency >"$OUT_DIR/build.log" 2>&1 ||
    { tail -30 "$OUT_DIR/build.log" >&2; echo "stream_bench.sh: build failed" >&2; exit 1; }
fi
BIN="$BUILD_DIR"
FL="$BUILD_DIR/bench/follow_latency"
for t in stream-serve stream-ctl stream-put stream-tail; do [ -x "$BIN/$t" ] || { echo "missing $BIN/$t" >&2; exit 1; }; done
[ -x "$FL" ] || { echo "missing $FL" >&2; exit 1; }
BUILD_TYPE="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/stream_bench.work.XXXXXX")"

say "# stream_bench.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(uname -r)  $(nproc) cores  load: $(cut -d' ' -f1-3 /proc/loadavg)"
DIRTY=""
if ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null; then
  DIRTY=" + uncommitted changes (diff sha1 $(git -C "$ROOT" diff HEAD 2>/dev/null | sha1sum | cut -c1-10): $(git -C "$ROOT" diff --name-only HEAD 2>/dev/null | tr '\n' ' '))"
fi
say "# repo $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$DIRTY"
say "# build $BUILD_DIR ($BUILD_TYPE), binaries from $(date -r "$BIN/stream-serve" -u +%Y-%m-%dT%H:%M:%SZ)"
say "# RUNS=$RUNS PEER_RUNS=$PEER_RUNS N=$N LAT_N=$LAT_N LAT_RATE=$LAT_RATE MEM=${MEM_STREAMS}x${MEM_SHARDS} x$MEM_RUNS  out: $OUT_DIR"
say "# durability policy: $("$BIN/stream-serve" --help 2>&1 | sed -nE 's/.*--fsync.*\((default [^)]*)\).*/\1/p' | head -1)${SK_SERVE_FLAGS:+ (overridden: $SK_SERVE_FLAGS)}"

# ---- payload: N lines of 100 printable bytes, cycled from 65,536 distinct ones -----------------
# Same pool as the peers' clients (base64 alphabet, xorshift64 seeded 0x9E3779B97F4A7C15).
PAYLOAD="$WORK/payload.txt"
python3 - "$N" "$PAYLOAD" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
b64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
M = (1 << 64) - 1
x = 0x9E3779B97F4A7C15
pool = []
for _ in range(min(n, 65536)):
    row = bytearray(101)
    for j in range(100):
        x ^= (x << 13) & M; x ^= x >> 7; x ^= (x << 17) & M
        row[j] = b64[x & 63]
    row[100] = 10
    pool.append(bytes(row))
whole, rest = divmod(n, len(pool))
block = b"".join(pool)
with open(path, "wb") as f:
    for _ in range(whole):
        f.write(block)
    f.write(b"".join(pool[:rest]))
PY
[ "$(wc -l <"$PAYLOAD")" -eq "$N" ] || { echo "payload generation failed" >&2; exit 1; }
cat "$PAYLOAD" >/dev/null  # in the page cache before timing

# ---- streamkit: W1, W2, W3 (default policy), W1 (--fsync always) --------------------------------
declare -a w1 w1mb w1cpu_put w1cpu_srv w1rss w1srv_hwm w1bpr w2 w2rss w2cpu_tail w2cpu_srv
declare -a w3t50 w3t99 w3t999 w3c50 w3c99 w3c999 w3p50 w3p99 w3p999 w3pt50 w3pt99 w3pt999 f1 f1mb f1rss f1cpu_srv
SK_FAIL=0

# put_run <tag> <run>: W1 into stream "b" of the running server; sets W1_* vars
put_run() {
  local tag="$1" r="$2" t0 t1 c0 c1 rc=0
  create_stream b 1
  c0=$(cpu_s "$SERVER_PID")
  t0=$(now_ns)
  /usr/bin/time -o "$WORK/time.put" -f '%M %U %S' "$BIN/stream-put" b <"$PAYLOAD" 2>"$WORK/put.err" || rc=$?
  t1=$(now_ns)
  c1=$(cpu_s "$SERVER_PID")
  if [ $rc -ne 0 ]; then
    echo "run $r $tag: stream-put failed (rc=$rc):" >&2; grep -v '^Command exited' "$WORK/put.err" | tail -5 >&2; return 1
  fi
  W1_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
  W1_RPS=$(awk -v s="$W1_S" -v n="$N" 'BEGIN { printf "%.0f", n / s }')
  W1_MBS=$(awk -v s="$W1_S" -v n="$N" 'BEGIN { printf "%.1f", n * 100 / s / 1e6 }')
  read -r W1_RSS_KIB u s <"$WORK/time.put"
  W1_CPU_PUT=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
  W1_CPU_SRV=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
  W1_DISK=$(du -sb "$STREAMKIT_DATA" | cut -f1)
  say "run $r $tag W1: records=$N seconds=$W1_S records_per_s=$W1_RPS MB_per_s=$W1_MBS put_maxrss_KiB=$W1_RSS_KIB put_cpu_s=$W1_CPU_PUT (user $u sys $s) serve_cpu_s=$W1_CPU_SRV data_dir_bytes=$W1_DISK ($((W1_DISK / N)) B/record)"
}

# sk_run <run>: W1, W2, W3 (tools, client) on a default-policy server, then W1 with --fsync always
sk_run() {
  local r="$1" rc cnt out mode t0 t1 c0 c1 s rps kib u sy hwm
  rm -rf "$WORK/data"
  # shellcheck disable=SC2086
  start_server "$WORK/data" $SK_SERVE_FLAGS
  if put_run default "$r"; then
    w1+=("$W1_RPS"); w1mb+=("$W1_MBS"); w1cpu_put+=("$W1_CPU_PUT"); w1cpu_srv+=("$W1_CPU_SRV")
    w1rss+=("$(kib_to_mib "$W1_RSS_KIB")"); w1bpr+=("$((W1_DISK / N))")

    # W2: read everything back into /dev/null
    c0=$(cpu_s "$SERVER_PID"); rc=0
    t0=$(now_ns)
    /usr/bin/time -o "$WORK/time.tail" -f '%M %U %S' "$BIN/stream-tail" b -n +1 >/dev/null 2>"$WORK/tail.err" || rc=$?
    t1=$(now_ns)
    c1=$(cpu_s "$SERVER_PID")
    if [ $rc -ne 0 ]; then echo "run $r: stream-tail failed (rc=$rc)" >&2; tail -5 "$WORK/tail.err" >&2; SK_FAIL=1; fi
    cnt=$("$BIN/stream-tail" b -n +1 | wc -l)
    [ "$cnt" -eq "$N" ] || { echo "run $r: stream-tail -n +1 | wc -l gave $cnt, expected $N" >&2; SK_FAIL=1; }
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
    rps=$(awk -v s="$s" -v n="$N" 'BEGIN { printf "%.0f", n / s }')
    read -r kib u sy <"$WORK/time.tail"
    w2+=("$rps"); w2rss+=("$(kib_to_mib "$kib")")
    w2cpu_tail+=("$(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", u + s }')")
    w2cpu_srv+=("$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')")
    hwm=$(status_kib "$SERVER_PID" VmHWM)
    w1srv_hwm+=("$(kib_to_mib "$hwm")")
    say "run $r default W2: records=$cnt seconds=$s records_per_s=$rps tail_maxrss_KiB=$kib tail_cpu_s=${w2cpu_tail[-1]} serve_cpu_s=${w2cpu_srv[-1]} serve_VmHWM_KiB=$hwm"
  else
    SK_FAIL=1
  fi

  # W3: follow latency through the tools, then through the client library
  for mode in tools client; do
    create_stream "lat_$mode" 1
    rc=0
    out=$("$FL" "$BIN" "lat_$mode" "$LAT_N" "$LAT_RATE" "$mode" 2>"$WORK/fl.err") || rc=$?
    say "run $r default W3: $out$( [ $rc -eq 0 ] || echo " rc=$rc")"
    if [ -z "$out" ]; then echo "follow_latency $mode failed (rc=$rc):" >&2; tail -5 "$WORK/fl.err" >&2; SK_FAIL=1; continue; fi
    [ $rc -eq 0 ] || { note "follow_latency $mode: not every record came back (rc=$rc)"; SK_FAIL=1; }
    if [ $mode = tools ]; then
      w3t50+=("$(field p50_us "$out")"); w3t99+=("$(field p99_us "$out")"); w3t999+=("$(field p999_us "$out")")
    else
      w3c50+=("$(field p50_us "$out")"); w3c99+=("$(field p99_us "$out")"); w3c999+=("$(field p999_us "$out")")
    fi
  done
  stop_server

  # W3 again, everything pinned to CPU 0 (the tools inherit follow_latency's affinity)
  if [ "$PIN_W3" = 1 ]; then
    rm -rf "$WORK/data"
    # shellcheck disable=SC2086
    SERVE_PREFIX="taskset -c 0" start_server "$WORK/data" $SK_SERVE_FLAGS
    for mode in client tools; do
      create_stream "lat_pin_$mode" 1
      rc=0
      out=$(taskset -c 0 "$FL" "$BIN" "lat_pin_$mode" "$LAT_N" "$LAT_RATE" $mode 2>"$WORK/fl.err") || rc=$?
      say "run $r default W3 pinned to CPU 0: $out$( [ $rc -eq 0 ] || echo " rc=$rc")"
      if [ -z "$out" ]; then
        echo "follow_latency pinned $mode failed (rc=$rc):" >&2; tail -5 "$WORK/fl.err" >&2; SK_FAIL=1
      elif [ $mode = client ]; then
        w3p50+=("$(field p50_us "$out")"); w3p99+=("$(field p99_us "$out")"); w3p999+=("$(field p999_us "$out")")
      else
        w3pt50+=("$(field p50_us "$out")"); w3pt99+=("$(field p99_us "$out")"); w3pt999+=("$(field p999_us "$out")")
      fi
    done
    stop_server
  fi

  # W1 with --fsync always (group commit), fresh server and data dir
  rm -rf "$WORK/data"
  start_server "$WORK/data" --fsync always
  if put_run fsync-always "$r"; then
    cnt=$("$BIN/stream-tail" b -n +1 | wc -l)
    [ "$cnt" -eq "$N" ] || { echo "run $r fsync-always: read back $cnt records, expected $N" >&2; SK_FAIL=1; }
    f1+=("$W1_RPS"); f1mb+=("$W1_MBS"); f1rss+=("$(kib_to_mib "$W1_RSS_KIB")"); f1cpu_srv+=("$W1_CPU_SRV")
  else
    SK_FAIL=1
  fi
  stop_server
  rm -rf "$WORK/data"
}

# noise_run <run>: one-hop wakeup latency of the machine right now (the peers' phys.c probe)
noise_run() {
  [ -x "$WORK/phys" ] || return 0
  local a b
  if read -r a b < <("$WORK/phys" unixrtt 20000 100); then
    nz50+=("$a"); nz99+=("$b")
    say "run $1 noise meter: AF_UNIX ping-pong one-way (phys unixrtt 20000 100) p50_us=$a p99_us=$b  load: $(cut -d' ' -f1-3 /proc/loadavg)"
  fi
}

# peer_once <tag> <script> <run> [VAR=value...]: one RUNS=1 run of a peer script; its RESULT
# lines are kept in $WORK/peer-<tag>.raw (aggregated over the runs later)
declare -A PEER_FAIL=()
peer_once() {
  local tag="$1" script="$2" r="$3"; shift 3
  local out="$OUT_DIR/peer-$tag.r$r.out" err="$OUT_DIR/peer-$tag.r$r.err" rc=0
  [ -x "$PEERS_DIR/$script" ] || { PEER_FAIL[$tag]="$PEERS_DIR/$script not found"; return 0; }
  env RUNS=1 N="$N" LAT_N="$LAT_N" LAT_RATE="$LAT_RATE" RESULTS_DIR="$OUT_DIR/peers-r$r" "$@" \
    "$PEERS_DIR/$script" >"$out" 2>"$err" </dev/null || rc=$?
  if [ $rc -eq 0 ] && grep -q "^RESULT $tag " "$out"; then
    grep "^RESULT $tag " "$out" >>"$WORK/peer-$tag.raw"
    say "run $r peer $tag: $(grep "^RESULT $tag " "$out" | awk '{ split($5, v, "="); printf "%s %s=%s  ", $3, $4, v[2] }')"
  else
    PEER_FAIL[$tag]="$script${*:+ $*} failed in run $r (rc=$rc): $(tail -3 "$err" | tr '\n' ' ')"
    note "NOTE: run $r: ${PEER_FAIL[$tag]}"
  fi
}

# redis_pinned_w3 <run>: Redis' W3 (the peers' own client, built by redis.sh) with redis-server
# and the client pinned to CPU 0, like streamkit's pinned W3
rp50=(); rp99=()
redis_pinned_w3() {
  local rb="${PEERS_WORK:-${TMPDIR:-/tmp}/streamkit-peers}/build/redis_bench" d out pid i
  command -v redis-server >/dev/null && [ -x "$rb" ] || { note "NOTE: run $1: no redis-server or $rb: Redis W3 pinned skipped"; return 0; }
  d=$(mktemp -d "${TMPDIR:-/tmp}/stream_bench.redis.XXXXXX")
  taskset -c 0 redis-server --port 0 --unixsocket "$d/r.sock" --unixsocketperm 700 --dir "$d" --appendonly yes \
    --appendfsync everysec --logfile "$d/r.log" --daemonize no >/dev/null 2>&1 &
  pid=$!
  for ((i = 0; i < 100; i++)); do redis-cli -s "$d/r.sock" ping >/dev/null 2>&1 && break; sleep 0.05; done
  out=$(taskset -c 0 "$rb" w3 "$d/r.sock" lat "$LAT_N" "$LAT_RATE" 2>&1 | grep '^W3' || true)
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  rm -rf "$d"
  say "run $1 peer redis W3 pinned to CPU 0: ${out:-failed}"
  [ -n "$out" ] || return 0
  rp50+=("$(field p50_us "$out")"); rp99+=("$(field p99_us "$out")")
}

# peer_report <tag>: RESULT lines over every successful run of <tag>, else the reference figures
peer_report() {
  local tag="$1"
  if [ -s "$WORK/peer-$tag.raw" ]; then
    [ -z "${PEER_FAIL[$tag]:-}" ] || note "NOTE: some $tag runs failed: ${PEER_FAIL[$tag]}"
    python3 - "$WORK/peer-$tag.raw" <<'PY' | while read -r who fig unit vals; do
import sys
order, vals = [], {}
for line in open(sys.argv[1]):
    f = line.split()
    key = (f[1], f[2], f[3])
    runs = [x for x in f if x.startswith("runs=")][0][5:].split(",")
    if key not in vals: order.append(key); vals[key] = []
    vals[key] += runs
for k in order: print(*k, *vals[k])
PY
      # shellcheck disable=SC2086
      report "$who" "$fig" "$unit" $vals | sed 's/^/this /' >>"$RES.peers"
    done
    sed 's/^this //' "$RES.peers" | grep "^RESULT $tag " || true
  else
    note "NOTE: no figures for $tag from this run: ${PEER_FAIL[$tag]:-peers skipped (SKIP_PEERS=1)}"
    if [ -f "$REF_SUMMARY" ]; then
      note "NOTE: using the REFERENCE figures for $tag from $REF_SUMMARY ($(sed -n '1s/^# //p' "$REF_SUMMARY" | cut -c1-17)), NOT this run"
      grep -E "^RESULT $tag " "$REF_SUMMARY" | sed 's/^/ref /' | tee -a "$RES.peers" | sed 's/^ref /# ref: /'
    else
      note "NOTE: no reference figures either ($REF_SUMMARY missing)"
    fi
  fi
}

if [ "$SKIP_PEERS" != 1 ]; then
  # The peer scripts install their Debian packages but leave `apt-get update` to the caller.
  if ! command -v redis-server >/dev/null || ! dpkg -s libhiredis-dev >/dev/null 2>&1 ||
     { [ "$PEERS_NATS" = 1 ] && ! command -v nats-server >/dev/null; }; then
    note "apt-get update (peer packages missing)"
    apt-get update >/dev/null 2>&1 || note "NOTE: apt-get update failed (no network?)"
  fi
fi
# A noise meter: the peers' own AF_UNIX ping-pong probe, once per run.
declare -a nz50 nz99
if command -v cc >/dev/null && [ -f "$PEERS_DIR/phys.c" ]; then
  cc -O2 -o "$WORK/phys" "$PEERS_DIR/phys.c" 2>/dev/null || true
fi

# Runs are interleaved (streamkit run r, then the peers' run r), so that both see the same
# machine weather; the peers run with RUNS=1 each time.
ROUNDS=$(( RUNS > PEER_RUNS ? RUNS : PEER_RUNS ))
[ "$SKIP_PEERS" = 1 ] && ROUNDS=$RUNS
for ((r = 1; r <= ROUNDS; r++)); do
  noise_run "$r"
  if [ "$r" -le "$RUNS" ]; then sk_run "$r"; fi
  if [ "$SKIP_PEERS" != 1 ] && [ "$r" -le "$PEER_RUNS" ]; then
    peer_once redis redis.sh "$r"
    peer_once redis-fsync-always redis.sh "$r" FSYNC=always
    if [ "$PIN_W3" = 1 ]; then redis_pinned_w3 "$r"; fi
  fi
done

# ---- idle server memory: MEM_STREAMS streams x MEM_SHARDS shards ----------------------------------
declare -a mhwm mrss mthr rhwm rrss
for ((r = 1; r <= MEM_RUNS; r++)); do
  rm -rf "$WORK/mem"
  # shellcheck disable=SC2086
  start_server "$WORK/mem" $SK_SERVE_FLAGS
  base=$(status_kib "$SERVER_PID" VmRSS)
  t0=$(now_ns)
  for ((i = 1; i <= MEM_STREAMS; i++)); do create_stream "s$i" "$MEM_SHARDS"; done
  t1=$(now_ns)
  sleep 2
  hwm=$(status_kib "$SERVER_PID" VmHWM); rss=$(status_kib "$SERVER_PID" VmRSS); thr=$(status_kib "$SERVER_PID" Threads)
  fds=$(find "/proc/$SERVER_PID/fd" -mindepth 1 | wc -l)
  mhwm+=("$(kib_to_mib "$hwm")"); mrss+=("$(kib_to_mib "$rss")"); mthr+=("$thr")
  stop_server
  # the same data dir after a restart (recovery opens every shard)
  # shellcheck disable=SC2086
  start_server "$WORK/mem" $SK_SERVE_FLAGS
  sleep 2
  hwm2=$(status_kib "$SERVER_PID" VmHWM); rss2=$(status_kib "$SERVER_PID" VmRSS)
  rhwm+=("$(kib_to_mib "$hwm2")"); rrss+=("$(kib_to_mib "$rss2")")
  stop_server
  say "run $r memory: ${MEM_STREAMS}x${MEM_SHARDS} created in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s; serve VmRSS at start ${base} KiB; idle VmHWM=${hwm} KiB VmRSS=${rss} KiB threads=$thr fds=$fds; after restart VmHWM=${hwm2} KiB VmRSS=${rss2} KiB; data dir $(du -sh "$WORK/mem" | cut -f1)"
  rm -rf "$WORK/mem"
done

say ""
say "# streamkit"
{
  report streamkit W1_write records/s "${w1[@]}"
  report streamkit W1_write MB/s "${w1mb[@]}"
  report streamkit W1_stream-put_cpu s "${w1cpu_put[@]}"
  report streamkit W1_stream-serve_cpu s "${w1cpu_srv[@]}"
  report streamkit W1_bytes_on_disk_per_record B "${w1bpr[@]}"
  report streamkit W2_read records/s "${w2[@]}"
  report streamkit W2_stream-tail_cpu s "${w2cpu_tail[@]}"
  report streamkit W2_stream-serve_cpu s "${w2cpu_srv[@]}"
  report streamkit W3_latency_p50 us "${w3t50[@]}"
  report streamkit W3_latency_p99 us "${w3t99[@]}"
  report streamkit W3_latency_p999 us "${w3t999[@]}"
  report streamkit W3_client_latency_p50 us "${w3c50[@]}"
  report streamkit W3_client_latency_p99 us "${w3c99[@]}"
  report streamkit W3_client_latency_p999 us "${w3c999[@]}"
  report streamkit W3_pinned_client_latency_p50 us "${w3p50[@]}"
  report streamkit W3_pinned_client_latency_p99 us "${w3p99[@]}"
  report streamkit W3_pinned_client_latency_p999 us "${w3p999[@]}"
  report streamkit W3_pinned_latency_p50 us "${w3pt50[@]}"
  report streamkit W3_pinned_latency_p99 us "${w3pt99[@]}"
  report streamkit W3_pinned_latency_p999 us "${w3pt999[@]}"
  report streamkit rss_stream-put_W1 MiB "${w1rss[@]}"
  report streamkit rss_stream-tail_W2 MiB "${w2rss[@]}"
  report streamkit rss_stream-serve_after_W1_W2_VmHWM MiB "${w1srv_hwm[@]}"
  report streamkit "rss_stream-serve_idle_${MEM_STREAMS}x${MEM_SHARDS}_VmHWM" MiB "${mhwm[@]}"
  report streamkit "rss_stream-serve_idle_${MEM_STREAMS}x${MEM_SHARDS}_VmRSS" MiB "${mrss[@]}"
  report streamkit "rss_stream-serve_idle_${MEM_STREAMS}x${MEM_SHARDS}_after_restart_VmHWM" MiB "${rhwm[@]}"
  report streamkit "rss_stream-serve_idle_${MEM_STREAMS}x${MEM_SHARDS}_after_restart_VmRSS" MiB "${rrss[@]}"
  report streamkit "stream-serve_idle_${MEM_STREAMS}x${MEM_SHARDS}_threads" count "${mthr[@]}"
  report streamkit-fsync-always W1_write records/s "${f1[@]}"
  report streamkit-fsync-always W1_write MB/s "${f1mb[@]}"
  report streamkit-fsync-always W1_stream-serve_cpu s "${f1cpu_srv[@]}"
  report streamkit-fsync-always rss_stream-put_W1 MiB "${f1rss[@]}"
  report machine unix_socket_oneway_100B_p50 us "${nz50[@]}"
  report machine unix_socket_oneway_100B_p99 us "${nz99[@]}"
} | tee -a "$RES"
sed -i 's/^/this /' "$RES"  # source tag for the table

# ---- peers: aggregate ---------------------------------------------------------------------------
: >"$RES.peers"
say ""
say "# peers (runs interleaved with streamkit's)"
peer_report redis
peer_report redis-fsync-always
if [ "${#rp50[@]}" -gt 0 ]; then
  { report redis-pinned W3_latency_p50 us "${rp50[@]}"; report redis-pinned W3_latency_p99 us "${rp99[@]}"; } |
    tee /dev/stderr | sed 's/^/this /' >>"$RES.peers"
fi
if [ "$PEERS_NATS" = 1 ] && [ "$SKIP_PEERS" != 1 ]; then
  say ""
  say "# peer nats: nats.sh (RUNS=$PEER_RUNS, after the others; slow)"
  rc=0
  env RUNS="$PEER_RUNS" N="$N" LAT_N="$LAT_N" LAT_RATE="$LAT_RATE" RESULTS_DIR="$OUT_DIR/peers-nats" \
    "$PEERS_DIR/nats.sh" >"$OUT_DIR/peer-nats.out" 2>"$OUT_DIR/peer-nats.err" </dev/null || rc=$?
  if [ $rc -eq 0 ] && grep -q '^RESULT nats' "$OUT_DIR/peer-nats.out"; then
    grep '^RESULT ' "$OUT_DIR/peer-nats.out" | tee /dev/stderr | sed 's/^/this /' >>"$RES.peers"
  else
    note "NOTE: nats.sh failed (rc=$rc): $(tail -3 "$OUT_DIR/peer-nats.err" | tr '\n' ' ')"
    note "NOTE: using the REFERENCE NATS figures from $REF_SUMMARY, NOT this run"
    [ -f "$REF_SUMMARY" ] && grep -E '^RESULT nats(-go)? ' "$REF_SUMMARY" | sed 's/^/ref /' >>"$RES.peers"
  fi
else
  note "NATS not run (PEERS_NATS=1 to run it); its rows below are the reference figures"
  [ -f "$REF_SUMMARY" ] && grep -E '^RESULT nats(-go)? ' "$REF_SUMMARY" | sed 's/^/ref /' >>"$RES.peers"
fi
cat "$RES.peers" >>"$RES"

# ---- optional profile ----------------------------------------------------------------------------
if [ "$PROFILE" = 1 ]; then
  if [ ! -x /usr/bin/perf ]; then
    note "PROFILE=1: /usr/bin/perf not found; skipped"
  else
    say ""
    say "# profile (perf record -g): one W1 (server, then stream-put) and one W3 tools run (server)"
    rm -rf "$WORK/data"
    # shellcheck disable=SC2086
    start_server "$WORK/data" $SK_SERVE_FLAGS
    create_stream b 1
    perf record -q -g -o "$OUT_DIR/perf-serve-W1.data" -p "$SERVER_PID" >/dev/null 2>&1 &
    PERF_PID=$!
    sleep 0.5
    perf record -q -g -o "$OUT_DIR/perf-put-W1.data" "$BIN/stream-put" b <"$PAYLOAD" >/dev/null 2>&1
    kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""
    create_stream lat_tools 1
    perf record -q -g -o "$OUT_DIR/perf-serve-W3.data" -p "$SERVER_PID" >/dev/null 2>&1 &
    PERF_PID=$!
    sleep 0.5
    "$FL" "$BIN" lat_tools "$LAT_N" "$LAT_RATE" tools || true
    kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""
    stop_server
    for p in serve-W1 put-W1 serve-W3; do
      say "## perf $p: top self-time symbols (full data: $OUT_DIR/perf-$p.data)"
      perf report -i "$OUT_DIR/perf-$p.data" --no-children --sort comm,dso,symbol --stdio --percent-limit 1.5 -g none 2>/dev/null |
        grep -vE '^#|^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//' | head -30
    done
  fi
fi

# ---- table ------------------------------------------------------------------------------------------
say ""
python3 - "$RES" "$MEM_STREAMS" "$MEM_SHARDS" "$REF_SUMMARY" <<'PY'
import os, re, sys
path, mst, msh, refpath = sys.argv[1:5]
PAT = re.compile(r"RESULT (\S+) (\S+) (\S+) median=(\S+) min=(\S+) max=(\S+) spread=(\S+) runs=(\S+)")
def parse(line):
    m = PAT.search(line)
    if not m: return None
    who, fig, unit, med, lo, hi, sp, runs = m.groups()
    return (who, fig, unit), dict(med=float(med), lo=float(lo), hi=float(hi), sp=sp,
                                   runs=[float(x) for x in runs.split(",")])
R = {}
for line in open(path):
    m = re.match(r"(this|ref) ", line)
    p = parse(line)
    if m and p:
        p[1]["src"] = m.group(1)
        R[p[0]] = p[1]
REF = {}
if os.path.exists(refpath):
    for line in open(refpath):
        p = parse(line)
        if p: REF[p[0]] = p[1]
# the reference phys figures stand in for this run's noise meter
for u in ("p50", "p99"):
    k = ("phys", f"unix_socket_oneway_100B_{u}", "us")
    if k in REF: REF[("machine", k[1], "us")] = REF[k]

def num(x):
    if x >= 1e6: return f"{x/1e6:.2f}M"
    if x >= 1e4: return f"{x/1e3:.0f}k"
    if x >= 100: return f"{x:,.0f}"
    return f"{x:.3g}"
def cell(r):
    return f"{num(r['med'])} [{num(r['lo'])}–{num(r['hi'])}]" if r else "n/a"

rows = []
def row(label, fig, unit, peer=None, pfig=None, kind=None, factor=None, limit=None, who="streamkit"):
    s = R.get((who, fig, unit))
    pk = (peer, pfig or fig, unit)
    p = R.get(pk) if peer else None
    ref = REF.get(pk) if peer else None
    ratio, target, verdict, refc = "", "", "", ""
    if s and p and p["med"]:
        ratio = f"{s['med'] / p['med']:.2f}×"
        if p["src"] == "this" and len(s["runs"]) > 1 and len(p["runs"]) > 1:
            k = min(len(s["runs"]), len(p["runs"]))
            ratio += " (" + ", ".join(f"{a / b:.2f}" for a, b in zip(s["runs"][:k], p["runs"][:k])) + ")"
    if ref and s and ref["med"]:
        refc = f"{num(ref['med'])} → {s['med'] / ref['med']:.2f}×"
    if kind == "ge_peer" and p:                 # throughput: streamkit >= factor x peer
        need = factor * p["med"]
        target = f"≥ {factor:g}× {peer} = {num(need)}"
        if s:
            verdict = "met" if s["med"] >= need else "MISSED"
            if s["lo"] < need <= s["hi"]: verdict += " (range straddles)"
            if ref and p["src"] == "this" and s["med"] < factor * ref["med"]: verdict += f"; < {factor:g}× ref"
    elif kind == "le_peer" and p:               # latency: streamkit <= peer
        need = p["med"]
        target = f"≤ {peer} p50 = {num(need)} µs"
        if s:
            verdict = "met" if s["med"] <= need else "MISSED"
            if s["lo"] <= need < s["hi"]: verdict += " (range straddles)"
            if ref and p["src"] == "this" and s["med"] > ref["med"]: verdict += "; > ref"
    elif kind == "le":                          # absolute ceiling
        target = f"≤ {num(limit)} {'µs' if unit == 'us' else unit}"
        if s:
            verdict = "met" if s["med"] <= limit else "MISSED"
            if s["lo"] <= limit < s["hi"]: verdict += " (range straddles)"
    pc = ""
    if peer:
        pc = f"{peer}: {cell(p)}" + (" (REF, not this run)" if p and p["src"] == "ref" else "")
    rows.append((label, cell(s) + (f" ±{s['sp']}" if s else ""), pc, ratio, target, verdict, refc))

idle = f"idle_{mst}x{msh}"
row("W1 put rec/s (default policy)", "W1_write", "records/s", "redis", kind="ge_peer", factor=3)
row("W1 put MB/s (payload)", "W1_write", "MB/s", "redis")
row("W2 read rec/s (tail -n +1 > /dev/null)", "W2_read", "records/s", "redis", kind="ge_peer", factor=3)
row("W3 follow p50 µs, tools (put→tail -f)", "W3_latency_p50", "us", "redis", kind="le_peer")
row("W3 follow p99 µs, tools", "W3_latency_p99", "us", "redis", kind="le", limit=150)
row("W3 follow p50 µs, client lib", "W3_client_latency_p50", "us", "redis", "W3_latency_p50", kind="le_peer")
row("W3 follow p99 µs, client lib", "W3_client_latency_p99", "us", "redis", "W3_latency_p99", kind="le", limit=150)
row("W3 follow p50 µs, client lib, all on CPU 0", "W3_pinned_client_latency_p50", "us", "redis-pinned", "W3_latency_p50", kind="le_peer")
row("W3 follow p99 µs, client lib, all on CPU 0", "W3_pinned_client_latency_p99", "us", "redis-pinned", "W3_latency_p99", kind="le", limit=150)
row("W3 follow p50 µs, tools, all on CPU 0", "W3_pinned_latency_p50", "us", "redis-pinned", "W3_latency_p50", kind="le_peer")
row("W3 follow p99 µs, tools, all on CPU 0", "W3_pinned_latency_p99", "us", "redis-pinned", "W3_latency_p99", kind="le", limit=150)
row("W1 put rec/s, --fsync always", "W1_write", "records/s", "redis-fsync-always", kind="ge_peer", factor=3, who="streamkit-fsync-always")
row(f"stream-serve peak RSS, {mst}×{msh} idle (VmHWM) MiB", f"rss_stream-serve_{idle}_VmHWM", "MiB", kind="le", limit=64)
row(f"stream-serve RSS, {mst}×{msh} idle (VmRSS) MiB", f"rss_stream-serve_{idle}_VmRSS", "MiB")
row(f"stream-serve peak RSS, same after restart MiB", f"rss_stream-serve_{idle}_after_restart_VmHWM", "MiB", kind="le", limit=64)
row("stream-put peak RSS in W1 MiB", "rss_stream-put_W1", "MiB", kind="le", limit=32)
row("stream-tail peak RSS in W2 MiB", "rss_stream-tail_W2", "MiB", kind="le", limit=32)
row("stream-put peak RSS, W1 --fsync always MiB", "rss_stream-put_W1", "MiB", kind="le", limit=32, who="streamkit-fsync-always")
row("W1 put rec/s vs NATS (node)", "W1_write", "records/s", "nats", kind="ge_peer", factor=3)
row("W1 put rec/s vs NATS (Go)", "W1_write", "records/s", "nats-go")
row("W2 read rec/s vs NATS (Go)", "W2_read", "records/s", "nats-go")
row("W3 follow p50 µs vs NATS (Go)", "W3_latency_p50", "us", "nats-go")
row("W3 follow p99 µs vs NATS (Go)", "W3_latency_p99", "us", "nats-go")
row("noise meter: AF_UNIX one-way p50 µs (phys unixrtt)", "unix_socket_oneway_100B_p50", "us", "machine", who="machine")
row("noise meter: AF_UNIX one-way p99 µs", "unix_socket_oneway_100B_p99", "us", "machine", who="machine")
rows[-2] = rows[-2][:2] + ("", "", "", "", rows[-2][6])
rows[-1] = rows[-1][:2] + ("", "", "", "", rows[-1][6])

hdr = ("figure", "streamkit median [min–max] ±spread", "peer, this run: median [min–max]", "ratio (per run)",
       "target", "verdict", "ref 2026-11-25 → ratio")
w = [max(len(str(x[i])) for x in rows + [hdr]) for i in range(len(hdr))]
line = lambda x: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(x)) + " |"
print("## streamkit vs peers. ratio = streamkit / peer of this run (per-run pairs in brackets); verdicts on")
print("## medians; '(range straddles)' = min–max crosses the target; '< 3× ref'/'> ref' = the same target")
print("## would fail against the quiet-machine reference run (peers/results/summary.txt).")
print(line(hdr))
print("|" + "|".join("-" * (n + 2) for n in w) + "|")
for r in rows: print(line(r))
PY
say ""
say "# full log: $LOG"
[ "$SK_FAIL" = 0 ] || { echo "stream_bench.sh: some streamkit workloads failed (see above)" >&2; exit 1; }
