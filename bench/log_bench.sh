#!/usr/bin/env bash
# Log append benchmark: builds bench/log_append (Release, in its own build dir) if
# needed and runs its suite, once per I/O backend, then prints the summary tables.
#
#   bench/log_bench.sh                    RUNS=5, backends "posix io_uring"
#   RUNS=3 IOS=posix bench/log_bench.sh
#   PEERS=1 bench/log_bench.sh            also run bench/peers/phys.sh (disk and memory
#                                         limits of the machine; takes ~5 min)
#   bench/log_bench.sh --records 1M ...   any arguments go to log_append instead of --suite
#
# Environment:
#   RUNS        repetitions per figure (default 5); median/min/max are reported
#   IOS         I/O backends to run (default "posix io_uring"; io_uring is skipped if
#               no ring can be set up here)
#   BUILD_DIR   build directory (default <repo>/build-bench; never <repo>/build)
#   BENCH_DIR   where the benchmark writes (default: a temp dir under $TMPDIR or
#               /var/tmp, removed at the end)
#   OUT         file that receives the full output (default: $BENCH_DIR/... is removed,
#               so the log goes to ${TMPDIR:-/tmp}/log_bench.<date>.log)
#   PEERS=1     run /work/shared/bench/peers/phys.sh after the suite (or $PEERS_DIR/phys.sh)
#
# Placement: with one appender, log_append runs it and the write() loops on the same
# CPU (the last one; `--cpu N` to choose, `--cpu -1` to leave it to the scheduler),
# because this VM's two vCPUs differ by up to 25 % for this work.
#
# Output: everything log_append prints (human lines and `RESULT log_append ...` lines),
# then the suite summary table of each backend again at the end.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
RUNS="${RUNS:-5}"
IOS="${IOS:-posix io_uring}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench}"
PEERS_DIR="${PEERS_DIR:-/work/shared/bench/peers}"
OUT="${OUT:-${TMPDIR:-/tmp}/log_bench.$(date +%Y%m%dT%H%M%S).log}"

if [ "$(cd "$BUILD_DIR" 2>/dev/null && pwd || echo "$BUILD_DIR")" = "$ROOT/build" ]; then
  echo "log_bench.sh: refusing to use $ROOT/build; pick another BUILD_DIR" >&2
  exit 2
fi

# Build (ninja is incremental: cheap when nothing changed).
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTREAMKIT_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD_DIR" -j2 --target log_append >/dev/null
BIN="$BUILD_DIR/bench/log_append"

WORK="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/var/tmp}}/log_bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

ARGS=("$@")
if [ "${#ARGS[@]}" -eq 0 ]; then ARGS=(--suite); fi

{
  echo "# log_bench.sh $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r) $(nproc) cores RUNS=$RUNS IOS='$IOS'"
  echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT"

for io in $IOS; do
  if [ "$io" = io_uring ] &&
     ! "$BIN" --io io_uring --records 1 --batch 1 --runs 1 --fsync-secs 0 --no-baseline \
         --dir "$WORK" >/dev/null 2>&1; then
    echo "# io_uring: no ring can be set up here; skipped" | tee -a "$OUT"
    continue
  fi
  echo | tee -a "$OUT"
  echo "######## backend $io" | tee -a "$OUT"
  "$BIN" "${ARGS[@]}" --io "$io" --runs "$RUNS" --dir "$WORK" 2>&1 | tee -a "$OUT"
done

if [ "${PEERS:-0}" = 1 ]; then
  echo | tee -a "$OUT"
  echo "######## peers/phys.sh (machine limits)" | tee -a "$OUT"
  RUNS="$RUNS" "$PEERS_DIR/phys.sh" 2>&1 | tee -a "$OUT"
fi

# The tables again, together.
if [ "${#ARGS[@]}" -eq 1 ] && [ "${ARGS[0]}" = --suite ]; then
  echo
  echo "################ summary"
  awk '/^######## backend/ {print; next} /^== Suite summary/ {on=1} on && /^$/ {on=0} on {print}' "$OUT"
fi
echo
echo "full output: $OUT"
