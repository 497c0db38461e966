#!/usr/bin/env bash
# stream-mirror between two real servers: continuous puts into several multi-shard
# streams on A while mirroring to B, reshards on A meanwhile, kill -9 of the mirror
# and of each server at random points; at the end B equals A record for record (shard,
# sequence number, key, arrival time, data). A group consumer moved from A to B loses
# nothing; --once; loop prevention; bad sockets and streams.
source "$(dirname "$0")/lib.sh"
A="$T/a.sock" B="$T/b.sock"
APID="" BPID="" MPID=""
start_a() {
  stream-serve --socket "$A" --data "$T/a" >>"$T/a.log" 2>&1 &
  APID=$!
  for _ in $(seq 200); do stream-ctl --socket "$A" list >/dev/null 2>&1 && return 0; sleep 0.05; done
  fail "server A did not come up"
}
start_b() {
  stream-serve --socket "$B" --data "$T/b" >>"$T/b.log" 2>&1 &
  BPID=$!
  for _ in $(seq 200); do stream-ctl --socket "$B" list >/dev/null 2>&1 && return 0; sleep 0.05; done
  fail "server B did not come up"
}
start_mirror() {
  stream-mirror --from "$A" --to "$B" --all --sync-groups >>"$T/mirror.log" 2>&1 &
  MPID=$!
}
stop_all() {
  for p in $MPID $APID $BPID; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
trap 'rc=$?; stop_all; (exit $rc); cleanup' EXIT
dump() {  # dump SOCKET STREAM: every record with its shard, sequence number, key, arrival time
  stream-tail --socket "$1" "$2" -n +1 --format '{shard} {seq} {key} {ts} {data}'
}
start_a
start_b

# ---- 1. Live mirroring with reshards and kill -9 of everything ----------------------------
for s in orders clicks logs; do stream-ctl --socket "$A" create "$s" --shards 3; done
# Producers: small puts in a loop (one may fail while A is down; B must equal A anyway).
(
  i=0
  while [ ! -e "$T/stop-put" ]; do
    for s in orders clicks logs; do
      seq $((i * 200)) $((i * 200 + 199)) | sed "s/^/$s-/" | stream-put --socket "$A" "$s" 2>/dev/null || sleep 0.2
    done
    i=$((i + 1))
  done
) &
PUT=$!
start_mirror
sleep 1
stream-reshard --socket "$A" orders split shardId-000000000000 >/dev/null
sleep 0.5
kill -9 "$MPID"; wait "$MPID" 2>/dev/null || true
start_mirror
stream-reshard --socket "$A" clicks merge shardId-000000000001 shardId-000000000002 >/dev/null
sleep "0.$((RANDOM % 9 + 1))"
kill -9 "$BPID"; wait "$BPID" 2>/dev/null || true
sleep 0.3
start_b
sleep "0.$((RANDOM % 9 + 1))"
kill -9 "$APID"; wait "$APID" 2>/dev/null || true
sleep 0.3
start_a
stream-reshard --socket "$A" orders split shardId-000000000004 >/dev/null
sleep "0.$((RANDOM % 9 + 1))"
kill -9 "$MPID"; wait "$MPID" 2>/dev/null || true
start_mirror
sleep 1
# Enough records first (slow builds, e.g. ASan, put fewer per second).
for _ in $(seq 300); do
  n=$(stream-ctl --socket "$A" describe logs --json 2>/dev/null | sed -n 's/.*"records":\([0-9]*\),"bytes".*"shards".*/\1/p' | head -1)
  [ "${n:-0}" -ge 3000 ] && break
  sleep 0.2
done
touch "$T/stop-put"
wait "$PUT" 2>/dev/null || true
# Catch up, then stop the live mirror; --once has nothing left to do.
for _ in $(seq 100); do
  same=1
  for s in orders clicks logs; do
    [ "$(dump "$A" "$s" | md5sum)" = "$(dump "$B" "$s" | md5sum)" ] || same=0
  done
  [ $same = 1 ] && break
  sleep 0.2
done
kill -TERM "$MPID"; wait "$MPID" 2>/dev/null || true
MPID=""
expect_rc 0 stream-mirror --from "$A" --to "$B" --all --once
for s in orders clicks logs; do
  n=$(dump "$A" "$s" | wc -l)
  [ "$n" -gt 1000 ] || fail "$s: only $n records were put"
  [ "$(dump "$A" "$s" | md5sum)" = "$(dump "$B" "$s" | md5sum)" ] || {
    diff <(dump "$A" "$s") <(dump "$B" "$s") | head >&2
    fail "$s: B differs from A"
  }
done
stream-reshard --socket "$B" orders status | grep -q "shardId-000000000006" || fail "B did not follow A's reshards"
stream-ctl --socket "$B" describe orders --json | grep -q '"origin"' || true
echo "mirror: live mirroring ok" >&2

# ---- 2. A group consumer fails over from A to B -------------------------------------------
stream-ctl --socket "$A" create pay --shards 2
seq 1 3000 | stream-put --socket "$A" pay
stream-tail --socket "$A" pay --group billing >"$T/g1"
expect_eq "$(wc -l <"$T/g1")" 3000 "records read on A"
seq 3001 4000 | stream-put --socket "$A" pay
expect_rc 0 stream-mirror --from "$A" --to "$B" pay --once --sync-groups
# A is gone; the consumer moves to B.
stream-tail --socket "$B" pay --group billing >"$T/g2"
sort -n "$T/g1" "$T/g2" | uniq >"$T/both"
expect_eq "$(md5sum <"$T/both")" "$(seq 1 4000 | md5sum)" "records across the failover"
extra=$(($(wc -l <"$T/g2") - 1000))
[ "$extra" -ge 0 ] && [ "$extra" -le 50 ] || fail "after the failover B re-delivered $extra records"
echo "mirror: failover ok ($extra re-delivered)" >&2

# ---- 3. Two mirrors of one stream at once cannot duplicate (the server checks offsets) ------
stream-ctl --socket "$A" create dup --shards 2
seq 1 30000 | stream-put --socket "$A" dup
stream-mirror --from "$A" --to "$B" dup --once 2>"$T/m1.err" &
M1=$!
stream-mirror --from "$A" --to "$B" dup --once 2>"$T/m2.err" &
M2=$!
wait "$M1" || fail "first concurrent mirror failed: $(cat "$T/m1.err")"
wait "$M2" || fail "second concurrent mirror failed: $(cat "$T/m2.err")"
[ "$(dump "$A" dup | md5sum)" = "$(dump "$B" dup | md5sum)" ] || fail "two mirrors at once: B differs from A"
stream-ctl --socket "$B" describe dup | grep -q "mirror of" || fail "describe does not show the origin"

# ---- 4. Loops, names, bad sockets and streams -----------------------------------------------
expect_rc 3 stream-mirror --from "$B" --to "$A" pay --once
expect_err "mirror of"
expect_rc 3 stream-mirror --from "$A" --to "$A" pay --once
expect_err "onto itself"
expect_rc 0 stream-mirror --from "$A" --to "$A" pay --once --rename '{source}.{stream}' --source-alias copy
expect_eq "$(dump "$A" copy.pay | wc -l)" 4000 "a renamed mirror on the same server"
expect_rc 3 stream-mirror --from "$A" --to "$A" copy.pay --once
expect_rc 4 stream-mirror --from "$A" --to "$B" nosuch --once
expect_err "does not exist"
expect_rc 1 stream-mirror --from "$T/nothing.sock" --to "$B" pay --once
expect_err "nothing.sock"
stream-ctl --socket "$B" create plain --shards 1
stream-ctl --socket "$A" create plain --shards 1
expect_rc 3 stream-mirror --from "$A" --to "$B" plain --once
expect_err "not a mirror"
echo "mirror: ok"
