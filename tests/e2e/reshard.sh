#!/usr/bin/env bash
# Resharding under live traffic: 20 alternating splits and merges while stream-put
# writes 1,000 keys; a group consumer then holds every record exactly once with each
# key's records in order. A server killed at each step of a reshard comes back with
# the old or the new topology and every acknowledged record. Auto mode splits a hot
# shard and merges cold ones back. Bad requests change nothing.
source "$(dirname "$0")/lib.sh"
# The system python starts fastest (a pyenv shim can take most of a second).
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
start_server

# topo STREAM: the topology (shard, state, parents, range), one line per shard.
topo() {
  stream-ctl describe "$1" --json | $PY -c 'import json,sys
d=json.load(sys.stdin)
for s in d["shards"]:
    print(s["shard"], s["state"], s["parent"], s["adjacent_parent"], s["starting_hash_key"], s["ending_hash_key"])'
}
# open_shards STREAM: open shard ids ordered by range start.
open_shards() {
  stream-ctl describe "$1" --json | $PY -c 'import json,sys
d=json.load(sys.stdin)
o=[s for s in d["shards"] if s["state"]=="OPEN"]
o.sort(key=lambda s: int(s["starting_hash_key"]))
print(" ".join(s["shard"] for s in o))'
}
# check_cover STREAM: the open shards cover 0..2^128-1 exactly, without overlap.
check_cover() {
  stream-ctl describe "$1" --json | $PY -c 'import json,sys
d=json.load(sys.stdin)
o=sorted((int(s["starting_hash_key"]),int(s["ending_hash_key"])) for s in d["shards"] if s["state"]=="OPEN")
nxt=0
for a,b in o:
    assert a==nxt, (a,nxt)
    nxt=b+1
assert nxt==2**128, nxt' || fail "open shards of $1 do not cover the key space exactly"
}

# ---- 1. 20 alternating splits and merges under a steady put over 1,000 keys -----------
stream-ctl create live --shards 2
N=60000
stream-tail live -f --group g --member only >"$T/group.out" 2>"$T/group.err" &
TAILPID=$!
stream-tail live -f -n +1 >"$T/plain.out" 2>"$T/plain.err" &
PLAINPID=$!
(
  for c in $(seq 0 199); do
    awk -v c="$c" 'BEGIN { for (j = 0; j < 300; j++) { i = c * 300 + j; printf("{\"user\":{\"id\":\"u%d\"},\"i\":%d}\n", i % 1000, i) } }'
    sleep 0.04
  done
) | stream-put live --ndjson --key .user.id --linger 2ms -v 2>"$T/put.err" &
PUTPID=$!
sleep 0.3
for k in $(seq 1 20); do
  # One look at the topology: check it covers the key space, then pick the change.
  # Odd steps split the open shard with the widest range, even ones merge the two
  # narrowest neighbours.
  op=$(stream-ctl describe live --json | $PY -c 'import json,sys
k=int(sys.argv[1])
d=json.load(sys.stdin)
o=sorted([s for s in d["shards"] if s["state"]=="OPEN"], key=lambda s: int(s["starting_hash_key"]))
nxt=0
for s in o:
    assert int(s["starting_hash_key"])==nxt
    nxt=int(s["ending_hash_key"])+1
assert nxt==2**128
w=lambda s: int(s["ending_hash_key"])-int(s["starting_hash_key"])
if k % 2:
    print("split", max(o, key=w)["shard"])
else:
    i=min(range(len(o)-1), key=lambda i: w(o[i])+w(o[i+1]))
    print("merge", o[i]["shard"], o[i+1]["shard"])' "$k") || fail "open shards do not cover the key space before step $k"
  stream-reshard live $op >/dev/null 2>>"$T/reshard.err" || fail "$op failed: $(cat "$T/reshard.err")"
  sleep 0.1
done
check_cover live
echo "reshard: 20 reshards done at ${SECONDS}s" >&2
kill -0 "$PUTPID" 2>/dev/null || echo "note: stream-put finished before the last reshard" >&2
rc=0
wait "$PUTPID" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/put.err" >&2; fail "stream-put exited $rc during resharding"; }
grep -q "map refreshes" "$T/put.err" || fail "stream-put -v summary missing"
expect_eq "$(topo live | grep -c CLOSED)" 30 "closed shards after 10 splits and 10 merges"
for _ in $(seq 300); do [ "$(wc -l <"$T/group.out")" -ge $N ] && break; sleep 0.1; done
for _ in $(seq 100); do [ "$(wc -l <"$T/plain.out")" -ge $N ] && break; sleep 0.1; done
sleep 0.5
kill -TERM "$TAILPID" "$PLAINPID"; wait "$TAILPID" "$PLAINPID" 2>/dev/null || true
expect_eq "$(wc -l <"$T/plain.out")" "$N" "records a plain stream-tail -f received across the reshards"
check_key_order "$T/plain.out" || fail "a key's records out of order at stream-tail -f"
expect_eq "$(wc -l <"$T/group.out")" "$N" "records the group consumer received"
expect_eq "$(sort "$T/group.out" | uniq -d | wc -l)" 0 "duplicates at the group consumer"
check_key_order "$T/group.out" || fail "a key's records out of order at the group consumer"
# The same from a fresh group (drain mode) and from a plain reader.
expect_rc 0 stream-tail live --group fresh
expect_eq "$(wc -l <"$T/out")" "$N" "fresh group drain"
check_key_order "$T/out" || fail "order broken for a fresh group"
expect_rc 0 stream-tail live -n +1
expect_eq "$(wc -l <"$T/out")" "$N" "stream-tail -n +1 after resharding"
check_key_order "$T/out" || fail "order broken for stream-tail -n +1"
expect_eq "$(sort -u "$T/out" | wc -l)" "$N" "distinct records"

echo "reshard: part 1 done at ${SECONDS}s" >&2
# ---- 2. Bad input: clear errors, topology unchanged ---------------------------------------
stream-ctl create bad --shards 3
stream-reshard bad split shardId-000000000002 >/dev/null
topo bad >"$T/before"
read -ra open <<<"$(open_shards bad)"
closed=shardId-000000000002
expect_rc 3 stream-reshard bad split shardId-000000009999
expect_err "has no shardId-000000009999"
expect_rc 3 stream-reshard bad split "$closed"
expect_err "is closed"
expect_rc 3 stream-reshard bad merge "${open[0]}" "${open[2]}"
expect_err "not adjacent"
expect_rc 3 stream-reshard bad merge "${open[0]}" "${open[0]}"
expect_rc 3 stream-reshard bad split "${open[1]}" --at 1
expect_err "outside"
expect_rc 3 stream-reshard bad split "${open[0]}" --at notanumber
expect_rc 3 stream-reshard bad scale 0
expect_err "1-10000"
expect_rc 3 stream-reshard bad scale 10001
expect_rc 3 stream-reshard bad split not-a-shard
expect_rc 4 stream-reshard nosuchstream split 0
expect_rc 2 stream-reshard bad explode
topo bad >"$T/after"
cmp -s "$T/before" "$T/after" || fail "a refused reshard changed the topology"

# ---- 3. scale: even ranges through splits and merges; --dry-run changes nothing ------------
stream-ctl create sc --shards 3
seq 1 3000 | stream-put sc
expect_rc 0 stream-reshard sc scale 4 --dry-run
grep -q "^would split" "$T/out" || fail "dry run printed no plan"
expect_eq "$(open_shards sc | wc -w)" 3 "open shards after a dry run"
expect_rc 0 stream-reshard sc scale 4
expect_eq "$(open_shards sc | wc -w)" 4 "open shards after scale 4"
check_cover sc
stream-ctl describe sc --json | $PY -c 'import json,sys
d=json.load(sys.stdin)
o=sorted((int(s["starting_hash_key"]),int(s["ending_hash_key"])) for s in d["shards"] if s["state"]=="OPEN")
assert all(a == i * (2**126) for i,(a,b) in enumerate(o)), o' || fail "scale 4 did not give even ranges"
expect_rc 0 stream-reshard sc scale 4
expect_err "nothing to do"
expect_rc 0 stream-reshard sc scale 1
expect_eq "$(open_shards sc | wc -w)" 1 "open shards after scale 1"
seq 3001 4000 | stream-put sc
expect_rc 0 stream-tail sc -n +1
expect_eq "$(sort -n "$T/out" | md5sum)" "$(seq 1 4000 | md5sum)" "records after scaling"
expect_rc 0 stream-reshard sc status
grep -q "recent changes" "$T/out" || fail "status shows no recent changes"
expect_rc 0 stream-reshard sc status --json
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["open_shards"]==1 and len(d["events"])>=1' "$T/out" ||
  fail "status --json"

echo "reshard: part 3 done at ${SECONDS}s" >&2
# ---- 4. kill -9 at each step of a reshard: old or new topology, no acknowledged loss ------
stop_server
i=0
for point in reshard-children-created reshard-meta-written reshard-meta-renamed reshard-committed; do
  i=$((i + 1))
  STREAMKIT_CRASH_AT=$point start_server
  stream-ctl create "c$i" --shards 2
  seq 1 5000 | stream-put "c$i"
  topo "c$i" >"$T/old"
  rc=0
  stream-reshard "c$i" split shardId-000000000000 >/dev/null 2>&1 || rc=$?
  [ "$rc" -ne 0 ] || fail "$point: the reshard succeeded although the server was to die"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  start_server
  topo "c$i" >"$T/now"
  case $point in
    reshard-children-created | reshard-meta-written)
      cmp -s "$T/old" "$T/now" || { diff "$T/old" "$T/now" >&2; fail "$point: topology is not the old one"; } ;;
    *)
      expect_eq "$(grep -c OPEN "$T/now")" 3 "$point: open shards of the new topology"
      grep -q "shardId-000000000000 CLOSED" "$T/now" || fail "$point: parent not closed" ;;
  esac
  [ -z "$(ls "$STREAMKIT_DATA/streams/c$i" | grep -v -e '^shard-00000000000[0-3]$' -e '^stream.meta$' -e '^groups$')" ] ||
    fail "$point: leftover files: $(ls "$STREAMKIT_DATA/streams/c$i")"
  check_cover "c$i"
  expect_rc 0 stream-tail "c$i" -n +1
  expect_eq "$(sort -n "$T/out" | md5sum)" "$(seq 1 5000 | md5sum)" "$point: records after the crash"
  # The stream works on: a split now succeeds and new records land.
  expect_rc 0 stream-reshard "c$i" split "$(open_shards "c$i" | awk '{print $1}')"
  seq 5001 6000 | stream-put "c$i"
  expect_rc 0 stream-tail "c$i" -n +1
  expect_eq "$(sort -n "$T/out" | md5sum)" "$(seq 1 6000 | md5sum)" "$point: records after a later split"
  stop_server
done

echo "reshard: part 4 done at ${SECONDS}s" >&2
# ---- 4b. a reshard after stream-put has read all its input ---------------------------------
# Its queued batches for the closed shard are refused and rerouted while it only waits
# for answers: those records must still go out (they used to stay in the children's
# open batches: exit 0 with records missing). Answers slowed so the queue is long.
start_server --inject-faults latency=500ms
stream-ctl create tailend --shards 2 >/dev/null
seq 1 200 | stream-put tailend --print-seq --max-in-flight 1 --batch-size 1KiB >"$T/te.seq" 2>"$T/te.err" &
TE=$!
sleep 0.2
stream-reshard tailend split shardId-000000000000 >/dev/null
stream-reshard tailend split shardId-000000000001 >/dev/null
wait "$TE" || { cat "$T/te.err" >&2; fail "stream-put failed across a reshard at its end"; }
expect_eq "$(wc -l <"$T/te.seq")" 200 "sequence numbers printed across a reshard at the end"
expect_eq "$(stream-tail tailend -n +1 | sort -n | md5sum)" "$(seq 1 200 | md5sum)" "records stored across a reshard at the end"
stop_server

# ---- 5. auto mode: a hot shard splits within a minute, cold shards merge back --------------
start_server
stream-ctl create hot --shards 1 --on-demand
stream-ctl describe hot | grep -q "on-demand" || fail "create --on-demand"
expect_rc 0 stream-reshard hot auto --min 1 --max 2 --split-records 200 --hot-for 2s --merge-below 50 --cold-for 2s
( for c in $(seq 1 15); do seq 1 1000 | sed "s/^/r$c-/"; sleep 1; done ) | stream-put hot --linger 20ms &
LOAD=$!
split_at=""
for s in $(seq 60); do
  [ "$(open_shards hot | wc -w)" -ge 2 ] && { split_at=$s; break; }
  sleep 1
done
[ -n "$split_at" ] || fail "auto mode did not split a hot shard within a minute"
wait "$LOAD" || fail "stream-put failed during auto scaling"
expect_eq "$(open_shards hot | wc -w)" 2 "open shards at --max 2"
merged=""
for s in $(seq 60); do
  [ "$(open_shards hot | wc -w)" -eq 1 ] && { merged=$s; break; }
  sleep 1
done
[ -n "$merged" ] || fail "auto mode did not merge idle shards back"
stream-ctl describe hot >"$T/desc"
grep -q "auto: " "$T/desc" || fail "describe does not show the on-demand decisions"
grep -q "split shardId-000000000000" "$T/serve.log" || fail "server log lacks the split decision"
expect_rc 0 stream-tail hot -n +1
expect_eq "$(wc -l <"$T/out")" 15000 "records written during auto scaling"
expect_rc 0 stream-reshard hot manual
stream-ctl describe hot | grep -q "mode        provisioned" || fail "manual did not turn on-demand off"
echo "reshard: ok (auto split after ${split_at}s, merge after ${merged}s)"
