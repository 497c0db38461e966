#!/usr/bin/env bash
# Follow mode: new records reach a follower at once; `| head` ends cleanly; -F survives
# a server restart.
source "$(dirname "$0")/lib.sh"
start_server

wait_lines() {  # wait_lines FILE N: up to 15 s for FILE to reach N lines
  for _ in $(seq 300); do
    [ "$(wc -l <"$1")" -ge "$2" ] && return 0
    sleep 0.05
  done
  fail "$1 has $(wc -l <"$1") lines, expected $2"
}

stream-ctl create live --shards 2
seq 1 5 | stream-put live
stream-tail -f live >"$T/f1" &
F1=$!
wait_lines "$T/f1" 5          # the last 10 (here 5) first, like tail -f
seq 6 1005 | stream-put live
wait_lines "$T/f1" 1005
expect_eq "$(sort -n "$T/f1" | md5sum)" "$(seq 1 1005 | md5sum)" "follower saw every record"
kill "$F1"; wait "$F1" 2>/dev/null || true

# A follower from latest sees only new records.
stream-tail -f live --from latest >"$T/f2" &
F2=$!
sleep 0.3
printf 'new1\nnew2\n' | stream-put live --key-fixed k
wait_lines "$T/f2" 2
expect_eq "$(tr '\n' ' ' <"$T/f2")" "new1 new2 " "--from latest"
kill "$F2"; wait "$F2" 2>/dev/null || true

# stream-tail | head exits cleanly (status 0, no error message), also while following.
out=$(stream-tail live -n +1 2>"$T/err" | head -3; echo "rc=${PIPESTATUS[0]}")
expect_eq "$(echo "$out" | tail -1)" "rc=0" "tail | head status"
[ ! -s "$T/err" ] || fail "tail | head printed: $(cat "$T/err")"
out=$(timeout 10 stream-tail -f live 2>"$T/err" | head -3 | wc -l)
expect_eq "$out" 3 "follow | head"

# -F keeps following across a server restart.
stream-tail -F live --from latest >"$T/f3" 2>"$T/f3.err" &
F3=$!
sleep 0.3
stop_server
start_server
seq 2000 2009 | stream-put live
wait_lines "$T/f3" 10
grep -q "reconnected" "$T/f3.err" || fail "-F did not say it reconnected"
kill "$F3"; wait "$F3" 2>/dev/null || true
# SIGTERM while -F waits for a server that is gone: it stops at once, exit 0.
stream-ctl create late >/dev/null
stream-tail -F live --from latest >/dev/null 2>"$T/f3.err" &
F3=$!
sleep 0.3
stop_server
for _ in $(seq 100); do grep -q "lost the server" "$T/f3.err" && break; sleep 0.05; done
kill "$F3"
rc=0; timeout 3 tail --pid="$F3" -f /dev/null || rc=$?
expect_eq "$rc" 0 "-F stopped by SIGTERM while the server is away"
wait "$F3" || fail "-F exit status after SIGTERM: $?"
# -F with no server yet waits for one, like tail -F for a file that is not there yet.
stream-tail -F late -n +1 >"$T/f5" 2>"$T/f5.err" &
F5=$!
sleep 0.3
kill -0 "$F5" || fail "-F gave up with no server: $(cat "$T/f5.err")"
grep -q "retrying every second" "$T/f5.err" || fail "-F with no server: $(cat "$T/f5.err")"
start_server
seq 3000 3004 | stream-put late
wait_lines "$T/f5" 5
kill "$F5"; wait "$F5" || fail "-F exit status after SIGTERM: $?"
# ...and for a stream that does not exist yet.
stream-tail -F newcomer -n +1 >"$T/f6" 2>"$T/f6.err" &
F6=$!
sleep 0.3
kill -0 "$F6" || fail "-F gave up on a missing stream: $(cat "$T/f6.err")"
grep -q "does not exist yet" "$T/f6.err" || fail "-F on a missing stream: $(cat "$T/f6.err")"
seq 1 3 | stream-put newcomer --create-shards 2
wait_lines "$T/f6" 3
grep -q "has appeared" "$T/f6.err" || fail "-F did not say the stream appeared"
kill "$F6"; wait "$F6" || fail "-F exit status after SIGTERM: $?"
expect_rc 4 stream-tail -f newcomer2   # -f (without F) on a missing stream: exit 4 at once

# Under --fsync always a follower is answered after each fdatasync (the sync thread),
# and it keeps following past its fetch's 1 s deadline (the fetch that stays parked
# between records ends there, and stream-tail asks again).
stop_server
start_server --fsync always
stream-tail -f live --from latest >"$T/f4" &
F4=$!
sleep 0.3
for i in 1 2 3 4 5; do echo "a$i" | stream-put live --key-fixed k; done
wait_lines "$T/f4" 5
sleep 1.5
for i in 6 7 8; do echo "a$i" | stream-put live --key-fixed k; done
wait_lines "$T/f4" 8
expect_eq "$(tr '\n' ' ' <"$T/f4")" "a1 a2 a3 a4 a5 a6 a7 a8 " "follower under --fsync always"
kill "$F4"; wait "$F4" 2>/dev/null || true

# Scheduling policy (tools/tool_common.h): SCHED_BATCH by default, every thread of the
# server included; STREAMKIT_SCHED=normal keeps the default policy; a policy the tools
# were started with (here SCHED_IDLE through chrt) is kept. Field 41 of
# /proc/PID/task/TID/stat: 0 SCHED_OTHER, 3 SCHED_BATCH, 5 SCHED_IDLE.
policies() { for t in /proc/"$1"/task/*; do awk '{print $41}' "$t/stat"; done | sort -u | tr '\n' ' '; }
if [ "$(uname -s)" = Linux ] && chrt -b 0 true 2>/dev/null; then
  expect_eq "$(policies "$SERVER_PID")" "3 " "stream-serve's threads' policy"
  grep -q "sched: batch" "$T/serve.log" || fail "the start-up line does not name the policy"
  stream-tail -f live --from latest >/dev/null &
  F5=$!
  sleep 0.3
  expect_eq "$(policies "$F5")" "3 " "stream-tail -f's policy"
  kill "$F5"; wait "$F5" 2>/dev/null || true
  STREAMKIT_SCHED=normal stream-tail -f live --from latest >/dev/null &
  F5=$!
  sleep 0.3
  expect_eq "$(policies "$F5")" "0 " "stream-tail -f's policy with STREAMKIT_SCHED=normal"
  kill "$F5"; wait "$F5" 2>/dev/null || true
  chrt -i 0 stream-tail -f live --from latest >/dev/null &
  F5=$!
  sleep 0.3
  expect_eq "$(policies "$F5")" "5 " "stream-tail -f started under chrt -i"
  kill "$F5"; wait "$F5" 2>/dev/null || true
  STREAMKIT_SCHED=fast stream-ctl list >/dev/null 2>"$T/err"
  expect_err "STREAMKIT_SCHED='fast' is neither 'batch' nor 'normal'"
else
  echo "follow: SCHED_BATCH cannot be set here; policy checks skipped"
fi
# -f --until time:T stops once every shard is read past T, even with no later record
# (it used to follow forever); in a group too, with the checkpoint at the end.
ALL=$(stream-tail live -n +1 | wc -l)
sleep 1.2
expect_rc 0 timeout 10 stream-tail live -f --from trim-horizon --until time:-1s
expect_eq "$(wc -l <"$T/out")" "$ALL" "-f --until time:-1s"
expect_rc 0 timeout 10 stream-tail live -f --group untilg --until time:-1s
expect_eq "$(wc -l <"$T/out")" "$ALL" "-f --group --until time:-1s"
expect_rc 0 timeout 10 stream-tail live --group untilg
expect_eq "$(wc -l <"$T/out")" "0" "the group's checkpoint after -f --until"

# SIGTERM while a slow reader keeps stdout full: stream-tail stops at once, exit 0
# (it used to write its whole backlog first), and checkpoints only what it wrote.
seq 100000 | stream-put backlog --create-shards 1
( stream-tail backlog -f --group slowg & echo $! >"$T/tp"; wait $!; echo $? >"$T/trc" ) | { sleep 3; wc -l >"$T/got"; } &
SLOW=$!
sleep 1
kill -TERM "$(cat "$T/tp")"
for _ in $(seq 20); do kill -0 "$(cat "$T/tp")" 2>/dev/null || break; sleep 0.1; done
kill -0 "$(cat "$T/tp")" 2>/dev/null && fail "stream-tail still writing 2 s after SIGTERM"
wait "$SLOW"
expect_eq "$(cat "$T/trc")" 0 "stream-tail's exit status after SIGTERM"
expect_rc 0 stream-tail backlog --group slowg
[ $(( $(cat "$T/got") + $(wc -l <"$T/out") )) -ge 100000 ] || fail "records lost between a SIGTERM'd member and the next"
echo "follow: ok"
