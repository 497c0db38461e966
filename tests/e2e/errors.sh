#!/usr/bin/env bash
# Bad input gets a clear one-line error naming the input, a documented exit code, and
# loses nothing; the server keeps serving everyone else.
source "$(dirname "$0")/lib.sh"
start_server
stream-ctl create ok --shards 2

# Bad stream names: exit 3.
for bad in 'a/b' '..' '.' '' "$(printf 'x%.0s' $(seq 129))" 'sp ace' 'semi;colon'; do
  expect_rc 3 stream-ctl create "$bad"
  expect_err "invalid stream name"
  expect_rc 3 stream-put "$bad" </dev/null
done
expect_rc 0 stream-ctl create 'a-Z_0.9'

# Unknown stream: exit 4 for every tool.
expect_rc 4 stream-ctl describe nosuch
expect_err "'nosuch' does not exist"
expect_rc 4 stream-tail nosuch
expect_rc 4 stream-put nosuch </dev/null
expect_rc 4 stream-ctl delete nosuch

# Usage errors: exit 2 with a hint.
expect_rc 2 stream-ctl create ok --shards 0
expect_rc 2 stream-tail ok --from yesterday
expect_err "trim-horizon"
expect_rc 2 stream-put ok --bogus-flag </dev/null
expect_err "Try 'stream-put --help'"
expect_rc 2 stream-ctl create x --retention soon
expect_rc 3 stream-ctl create x --retention 30m
expect_err "out of range"
expect_rc 2 stream-serve --fsync sometimes
expect_rc 2 stream-ctl bogus
expect_err "unknown command 'bogus'"

# An over-size record is an error naming its line; earlier lines are stored.
{ echo first; head -c 1100000 /dev/zero | tr '\0' x; echo; echo third; } >"$T/big"
expect_rc 3 stream-put ok --key-fixed k <"$T/big"
expect_err "line 2: record of 1100000 bytes exceeds the limit"
expect_eq "$(stream-tail ok -n +1)" "first" "records before the bad line"
# --on-error skip stores the rest, counts, and still exits 3.
expect_rc 3 stream-put ok --key-fixed k --on-error skip -v <"$T/big"
expect_err "1 rejected input lines"
expect_eq "$(stream-tail ok -n +1 | tr '\n' ' ')" "first first third " "skip"
# --raw stops reading one byte past the limit, so it says "more than".
expect_rc 3 stream-put ok --raw <"$T/big"
expect_err "line 1: record of more than 1048576 bytes exceeds the limit"

# --print-seq keeps one line per input line when --on-error skip drops one.
printf '{"a":1}\nbad\n{"a":2}\n' | { expect_rc 3 stream-put ok --ndjson --key-fixed k --on-error skip --print-seq; }
expect_eq "$(cut -c1-8 "$T/out" | tr '\n' ' ')" "shardId- -	- shardId- " "--print-seq with a skipped line"
# --limit takes a count of 1 or more; --max-record-size 0 is the default.
expect_rc 2 stream-tail ok --limit -1
expect_rc 2 stream-tail ok --limit 0
expect_rc 0 stream-ctl create mr0 --max-record-size 0
expect_rc 0 stream-ctl delete mr0

# Invalid JSON with --ndjson names its line number.
printf '{"a":1}\n{"a":\n{"a":3}\n' | { expect_rc 3 stream-put ok --ndjson; }
expect_err "line 2: invalid JSON"
# A missing key field names its line and the field.
printf '{"user":{"id":"u1"}}\n{"user":{}}\n' | { expect_rc 3 stream-put ok --ndjson --key .user.id; }
expect_err "line 2: field .user.id is missing"
printf '{"user":{"id":"u1"}}\n' | { expect_rc 0 stream-put ok --ndjson --key /user/id; }
expect_rc 2 stream-put ok --key '..bad' </dev/null
# An explicit hash key out of range.
expect_rc 2 stream-put ok --hash-key 340282366920938463463374607431768211456 </dev/null

# A client of another user cannot connect (socket mode 0600 in a private dir).
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
  chmod 755 "$T" "$BIN" 2>/dev/null || true
  rc=0
  setpriv --reuid=nobody --regid=nogroup --clear-groups env STREAMKIT_SOCKET="$T/serve.sock" \
    STREAMKIT_NO_AUTOSTART=1 "$BIN/stream-ctl" list >"$T/out" 2>"$T/err" || rc=$?
  expect_eq "$rc" 1 "other user's exit status"
  expect_err "Permission denied"
  chmod 700 "$T"
fi

# Empty values are errors, not "not given"; options that do not apply are refused.
expect_rc 2 stream-put ok --key '' </dev/null
expect_rc 2 stream-put ok --key-fixed '' </dev/null
expect_rc 2 stream-put ok --hash-key '' </dev/null
expect_rc 2 stream-tail ok --group ''
expect_err "\-\-group: empty value"
expect_rc 2 stream-tail ok --group g -n 3
expect_err "does not apply with --group"
expect_rc 2 stream-tail ok --group g --until seq:5
expect_rc 2 stream-tail ok --member m
expect_err "needs --group"
expect_rc 2 stream-tail ok -n -x
# -n -N is the last N, as tail(1) reads it.
seq 5 | stream-put ok --key-fixed n
expect_eq "$(stream-tail ok -n -2 | tr '\n' ' ')" "4 5 " "stream-tail -n -2"
# A sequence number naming a shard the stream does not have.
expect_rc 3 stream-tail ok --from seq:900000000000000000000
expect_err "names no shard of stream 'ok'"
expect_rc 3 stream-tail ok -n +1 --until seq:184467440737095516160
# A record size out of range is bad input, like a retention out of range.
expect_rc 3 stream-ctl create big --max-record-size 11MiB

# A --socket path naming a file that is not a socket: refused, the file kept.
echo precious >"$T/notes.txt"
expect_rc 3 stream-serve --socket "$T/notes.txt" --data "$T/data2"
expect_err "exists and is not a socket"
expect_eq "$(cat "$T/notes.txt")" precious "file at the --socket path"

# No server and no autostart: a clear error, exit 1.
STREAMKIT_SOCKET="$T/none.sock" expect_rc 1 stream-ctl list
expect_err "no stream-serve at"

# Autostart: a client with no server starts one in the background (serve.log in its
# data dir) and goes on.
expect_rc 0 env -u STREAMKIT_NO_AUTOSTART stream-ctl --socket "$T/auto.sock" --data "$T/auto" create a1
apid=$(head -1 "$T/auto/serve.lock")
kill "$apid"
for _ in $(seq 100); do kill -0 "$apid" 2>/dev/null || break; sleep 0.05; done
grep -q "serving $T/auto" "$T/auto/serve.log" || fail "autostarted server's log"
# An autostarted server that cannot start is reported at once, with its reason (not
# after the 5 s connect timeout).
mkdir "$T/badid" && echo short >"$T/badid/server.id"
t0=$(date +%s%N)
expect_rc 1 env -u STREAMKIT_NO_AUTOSTART stream-ctl --socket "$T/badid.sock" --data "$T/badid" list
expect_err "exited at once: stream-serve: $T/badid/server.id: unreadable or damaged"
[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 3000 ] || fail "a failed autostart took the whole timeout"

# Delete removes the stream; the server still serves others.
expect_rc 0 stream-ctl delete 'a-Z_0.9'
expect_rc 4 stream-ctl describe 'a-Z_0.9'
seq 3 | stream-put ok --key-fixed z
expect_eq "$(stream-tail ok -n 3 | tr '\n' ' ')" "1 2 3 " "server still serving"
# A failed write of stdout (a full disk) is an error, exit 1; a closed pipe is not.
if [ -w /dev/full ]; then
  expect_rc 1 bash -c 'stream-tail ok -n +1 >/dev/full'
  expect_err "writing stdout: No space left on device"
  expect_rc 1 bash -c 'stream-tail ok --group fullg >/dev/full'
  expect_rc 0 stream-tail ok --group fullg
  [ -s "$T/out" ] || fail "a group checkpointed records it could not write"
  expect_rc 1 bash -c 'echo x | stream-put ok --print-seq >/dev/full'
  expect_err "writing sequence numbers to stdout"
  expect_rc 0 bash -c 'set -o pipefail; seq 3 | stream-put ok --print-seq | head -1'
  expect_rc 0 bash -c 'set -o pipefail; stream-tail ok -n +1 | head -1'

fi

# A closed stdin is empty input (the server connection once took descriptor 0 and
# stream-put read its own socket, forever).
expect_rc 0 timeout 10 bash -c 'stream-put ok --key-fixed k <&-'
expect_rc 0 timeout 10 bash -c 'stream-tail ok -n 1 >&- 2>&-'

# More shards than the server's open files allow: refused before anything is written
# (it used to crash the server half-way, and every later start with it), exit 1.
( ulimit -n 400; exec stream-serve --socket "$T/fd.sock" --data "$T/fd-data" ) >>"$T/fd.log" 2>&1 &
FD_PID=$!
for _ in $(seq 200); do stream-ctl --socket "$T/fd.sock" list >/dev/null 2>&1 && break; sleep 0.05; done
expect_rc 1 stream-ctl --socket "$T/fd.sock" create many --shards 300
expect_err "open-file limit"
[ ! -e "$T/fd-data/streams/many" ] || fail "a refused stream left files behind"
expect_rc 0 stream-ctl --socket "$T/fd.sock" create few --shards 100
kill "$FD_PID"
wait "$FD_PID" || fail "stream-serve (ulimit -n 400) did not stop cleanly"
# A data dir needing more open files than the limit: a clear error at start, exit 1.
expect_rc 1 bash -c "ulimit -n 80; exec stream-serve --socket '$T/fd.sock' --data '$T/fd-data'"
expect_err "ulimit -n"
# A data dir the server makes is private; empty values are refused, not taken as
# "the default" (that would be the user's real server and data).
expect_eq "$(stat -c %a "$T/data")" 700 "mode of a new data dir"
expect_rc 2 stream-serve --socket "" --data "$T/x"
expect_err "\-\-socket: empty value"
expect_rc 2 stream-tail x --data ""
expect_rc 2 stream-ctl list --socket ""
[ ! -e "$T/x" ] || fail "a refused stream-serve made its data dir"
for bad in throttle=nan throttle=0.5, ,fail=0.1 ""; do
  expect_rc 2 stream-serve --socket "$T/f.sock" --data "$T/f" --inject-faults "$bad"
done
echo "errors: ok"
