#!/usr/bin/env bash
# Consumer groups: members share the shards, each record once in steady state; a
# killed member's shards move to the others and resume from its checkpoint; a member
# without -f drains, checkpoints and exits; group-reset moves the checkpoints.
source "$(dirname "$0")/lib.sh"
start_server

stream-ctl create jobs --shards 4
members=()
for m in m1 m2 m3; do
  stream-tail jobs -f --group workers --member "$m" >"$T/$m.out" 2>"$T/$m.err" &
  members+=($!)
done
# Wait until the three members hold all four shards.
for _ in $(seq 100); do
  owned=$(stream-ctl groups jobs --json | python3 -c 'import json,sys
g=json.loads(sys.stdin.readline()); print(len(g["members"]), sum(1 for s in g["shards"] if s["owner"]))' 2>/dev/null || echo "0 0")
  [ "$owned" = "3 4" ] && break
  sleep 0.1
done
expect_eq "$owned" "3 4" "members and owned shards"
sleep 1.5   # let every member see its final assignment

seq 1 20000 | sed 's/^/job-/' >"$T/in1"
stream-put jobs <"$T/in1"
total() { cat "$T"/m*.out | wc -l; }
for _ in $(seq 200); do [ "$(total)" -ge 20000 ] && break; sleep 0.05; done
expect_eq "$(total)" 20000 "records received by the group"
expect_eq "$(cat "$T"/m*.out | sort | uniq -d | wc -l)" 0 "duplicates in steady state"
busy=0
for m in m1 m2 m3; do [ -s "$T/$m.out" ] && busy=$((busy + 1)); done
expect_eq "$busy" 3 "members that received records"

# Kill one member: its shards move to the others, which resume from its checkpoint.
sleep 0.5
kill -9 "${members[0]}"
seq 20001 30000 | sed 's/^/job-/' >"$T/in2"
stream-put jobs <"$T/in2"
cat "$T/in1" "$T/in2" | sort >"$T/want"
for _ in $(seq 400); do
  [ "$(cat "$T"/m*.out | sort -u | wc -l)" -ge 30000 ] && break
  sleep 0.05
done
expect_eq "$(cat "$T"/m*.out | sort -u | md5sum)" "$(md5sum <"$T/want")" "every record after a member died"
kill "${members[1]}" "${members[2]}"
wait "${members[1]}" "${members[2]}" 2>/dev/null || true

# A member without -f drains what is left, checkpoints and exits 0; the next run has nothing.
seq 1 100 | stream-put jobs
# (no wait for the killed member's session to expire: a draining member waits for its shards)
expect_rc 0 stream-tail jobs --group workers
expect_eq "$(wc -l <"$T/out")" 100 "drain run"
expect_rc 0 stream-tail jobs --group workers
expect_eq "$(wc -l <"$T/out")" 0 "second drain run"
stream-ctl groups jobs >"$T/groups.txt"
grep -q "group workers" "$T/groups.txt" || fail "groups listing"

# Members started together on a stream with a backlog: the first to join holds every
# shard and reads fast; a shard a rebalance moves to a later member stays with its
# holder until that one has checkpointed and let go, so no record is printed twice.
stream-ctl create backlog --shards 4 >/dev/null
seq 1 20000 | sed 's/^/b-/' | stream-put backlog
pids=()
for m in b1 b2 b3; do
  stream-tail backlog -f --group g --member "$m" >"$T/$m.bout" 2>"$T/$m.berr" &
  pids+=($!)
done
for _ in $(seq 200); do [ "$(cat "$T"/b?.bout | wc -l)" -ge 20000 ] && break; sleep 0.05; done
sleep 2.5   # a second owner of a moved shard would print it again by now
seq 20001 23000 | sed 's/^/b-/' | stream-put backlog
for _ in $(seq 200); do [ "$(cat "$T"/b?.bout | wc -l)" -ge 23000 ] && break; sleep 0.05; done
sleep 0.5
kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
expect_eq "$(cat "$T"/b?.bout | wc -l)" 23000 "records printed by members started on a backlog"
expect_eq "$(cat "$T"/b?.bout | sort -u | wc -l)" 23000 "distinct records printed by members started on a backlog"

# Members joining while records flow: the member that hands a shard over first
# checkpoints every record it printed (its fetches stay parked, i.e. in flight, nearly
# always), so the next owner starts right after them: no record printed twice.
stream-ctl create live --shards 4 >/dev/null
stream-tail live -f --group lg2 --member a >"$T/la.out" 2>/dev/null & LA=$!
sleep 0.5
(for i in $(seq 1 1000); do echo "l$i"; sleep 0.004; done) | stream-put live --linger 1ms & LP=$!
sleep 1.5; stream-tail live -f --group lg2 --member b >"$T/lb.out" 2>/dev/null & LB=$!
sleep 1.5; stream-tail live -f --group lg2 --member c >"$T/lc.out" 2>/dev/null & LC=$!
wait "$LP"
for _ in $(seq 200); do [ "$(cat "$T"/l?.out | wc -l)" -ge 1000 ] && break; sleep 0.05; done
sleep 1.5
kill "$LA" "$LB" "$LC"; wait "$LA" "$LB" "$LC" 2>/dev/null || true
expect_eq "$(cat "$T"/l?.out | wc -l) $(cat "$T"/l?.out | sort -u | wc -l)" "1000 1000" "records printed while members joined, each once"

# groups --json: a shard read to its end has its last record as checkpoint; after a
# reset to the start, the checkpoint is null (nothing read) yet the shard is checkpointed.
ckjson() { stream-ctl groups jobs --json | python3 -c 'import json,sys
g=json.loads(sys.stdin.readline()); s=g["shards"][0]; print(s["checkpointed"], s["checkpoint"] is None, s["lag"])'; }
expect_eq "$(ckjson)" "True False 0" "groups --json after a drain"
stream-ctl group-reset jobs workers --to trim-horizon
expect_eq "$(ckjson | cut -d' ' -f1,2)" "True True" "groups --json after a reset to trim-horizon"
stream-ctl groups jobs | grep -q "(none read)" || fail "groups text after a reset to trim-horizon"

# group-reset: back to the start, then the group re-reads everything.
expect_rc 0 stream-tail jobs --group workers
expect_eq "$(wc -l <"$T/out")" 30100 "after reset to trim-horizon"
stream-ctl group-reset jobs workers --to latest
expect_rc 0 stream-tail jobs --group workers
expect_eq "$(wc -l <"$T/out")" 0 "after reset to latest"
# A live member blocks a reset.
stream-tail jobs -f --group workers --member live >/dev/null 2>&1 &
LIVE=$!
sleep 0.5
expect_rc 1 stream-ctl group-reset jobs workers --to trim-horizon
expect_err "live member"
kill "$LIVE"; wait "$LIVE" 2>/dev/null || true

# stream-tail --group | head -3 exits cleanly and checkpoints only what it wrote
# (what went into the pipe's buffer counts as written: at most a pipe buffer and one
# output chunk, far less than the 30,100 records).
stream-ctl group-reset jobs headgroup --to trim-horizon
out=$(stream-tail jobs --group headgroup 2>"$T/err" | head -3; echo "rc=${PIPESTATUS[0]}")
expect_eq "$(echo "$out" | tail -1)" "rc=0" "group | head status"
[ ! -s "$T/err" ] || fail "group | head printed: $(cat "$T/err")"
expect_rc 0 stream-tail jobs --group headgroup
lines=$(wc -l <"$T/out")
[ "$lines" -ge 20000 ] || fail "head run checkpointed records it did not write ($lines left)"
# --limit N with a group: the N records printed are checkpointed, the next run goes on.
stream-ctl create lim --shards 1
seq 1 10 | stream-put lim
expect_eq "$(stream-tail lim --group lg --limit 3 | tr '\n' ' ')" "1 2 3 " "group --limit, first run"
expect_eq "$(stream-tail lim --group lg --limit 3 | tr '\n' ' ')" "4 5 6 " "group --limit, second run"
expect_eq "$(stream-tail lim --group lg | tr '\n' ' ')" "7 8 9 10 " "group drain after --limit"
# group-reset --to seq:S: S may be the next record of its shard, not past it; a refused
# reset changes nothing, and does not create the group.
expect_rc 0 stream-ctl group-reset lim lg --to seq:10
expect_rc 3 stream-ctl group-reset lim lg --to seq:11
expect_err "past the end of shardId-000000000000 (the next record there will be 10)"
seq 11 12 | stream-put lim
expect_eq "$(stream-tail lim --group lg | tr '\n' ' ')" "11 12 " "group after a refused reset"
for bad in seq:abc seq:99999999999999999999999 time:garbage bogus; do
  expect_rc 3 stream-ctl group-reset lim nogroup --to "$bad"
done
stream-ctl groups lim --json | grep -q nogroup && fail "a refused group-reset created the group"
echo "groups: ok"
