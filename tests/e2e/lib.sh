# Shared helpers for the end-to-end tests: each test starts its own stream-serve on
# a fresh temp dir and socket, and stops it on exit. Source this file.
# Needs: BIN (directory with the built tools), set by ctest.
set -euo pipefail
: "${BIN:?BIN must point at the directory holding the stream-* binaries}"
export PATH="$BIN:$PATH"
T=$(mktemp -d "${TMPDIR:-/tmp}/streamkit-e2e.XXXXXX")
export STREAMKIT_SOCKET="$T/serve.sock" STREAMKIT_DATA="$T/data" STREAMKIT_NO_AUTOSTART=1
SERVER_PID=""

cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  jobs -p | xargs -r kill 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "--- test failed (rc=$rc); server log:" >&2
    tail -n 30 "$T/serve.log" 2>/dev/null >&2 || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT

start_server() {  # start_server [extra stream-serve flags...]
  stream-serve "$@" >>"$T/serve.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 200); do
    # Ready when it answers (a stale socket file from a killed server may still exist).
    stream-ctl list >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "stream-serve died" >&2; cat "$T/serve.log" >&2; return 1; }
    sleep 0.05
  done
  echo "stream-serve did not come up" >&2
  return 1
}

stop_server() {  # graceful: SIGTERM, expect exit 0
  kill -TERM "$SERVER_PID"
  local rc=0
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=""
  [ "$rc" -eq 0 ] || { echo "stream-serve exited $rc on SIGTERM" >&2; return 1; }
}

kill9_server() {
  kill -9 "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

fail() { echo "FAIL: $*" >&2; exit 1; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
# expect_rc CODE CMD... : run CMD, require its exit code
expect_rc() {
  local want=$1; shift
  local rc=0
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$T/err" >&2; fail "'$*' exited $rc, expected $want"; }
}
expect_err() { grep -q -- "$1" "$T/err" || { cat "$T/err" >&2; fail "stderr lacks '$1'"; }; }

# gen_ndjson N KEYS: N lines {"user":{"id":"uK"},"n":I} with I per key increasing.
gen_ndjson() {
  awk -v n="$1" -v k="$2" 'BEGIN { for (i = 0; i < n; i++) printf("{\"user\":{\"id\":\"u%d\"},\"i\":%d,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n", i % k, i) }'
}

# check_key_order FILE: every key's "i" values appear in increasing order.
check_key_order() {
  awk -F'"' '{ k=$6; split($0, a, "\"i\":"); split(a[2], b, ","); v=b[1]+0;
               if ((k in last) && v <= last[k]) { print "order broken for " k ": " v " after " last[k]; bad=1 }
               last[k]=v } END { exit bad }' "$1"
}
