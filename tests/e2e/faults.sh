#!/usr/bin/env bash
# Throttling and injected faults: producers retry with backoff, idempotently, so every
# record is stored exactly once and in order; provisioned limits slow writers down.
source "$(dirname "$0")/lib.sh"
start_server --inject-faults throttle=0.3,fail=0.1

stream-ctl create flaky --shards 2
seq 1 20000 | sed 's/^/r-/' >"$T/in"
stream-put flaky --key-fixed one --batch-size 4KiB -v <"$T/in" 2>"$T/put.err" || { cat "$T/put.err"; fail "put under faults"; }
grep -qE "[1-9][0-9]* retries" "$T/put.err" || fail "no retries happened: $(cat "$T/put.err")"
# One key: one shard, so the stored order must be the input order, with no duplicate.
stream-tail flaky -n +1 >"$T/out"
expect_eq "$(md5sum <"$T/out")" "$(md5sum <"$T/in")" "exactly once, in order, under faults"
stop_server

# Provisioned limits: 1,000 records/s per shard; a 2,500-record burst is throttled and
# retried, and lands whole.
start_server
stream-ctl create limited --enforce-limits
seq 1 2500 | stream-put limited -v --batch-size 4KiB 2>"$T/put.err"
grep -qE "[1-9][0-9]* throttled" "$T/put.err" || fail "no throttling: $(cat "$T/put.err")"
expect_eq "$(stream-tail limited -n +1 | md5sum)" "$(seq 1 2500 | md5sum)" "throttled put"

# Throttled batches are resent when their backoff ends even while stdin stays open
# and quiet (tail -f app.log | stream-put), not when the next line or EOF comes.
# Three batches of ~590 records: the first fits the shard's 1,000 records/s, the
# second is throttled and the third waits behind it.
stream-ctl create quiet --enforce-limits >/dev/null
( awk 'BEGIN { for (i = 0; i < 1500; i++) printf "%0100d\n", i }'; sleep 8 ) |
  stream-put quiet --key-fixed k --batch-size 64KiB -v 2>"$T/quiet.err" &
QUIET=$!
stored=0
deadline=$((SECONDS + 5))  # stdin stays open for 8 s
while [ "$SECONDS" -lt "$deadline" ]; do
  stored=$(stream-tail quiet -n +1 | wc -l)
  [ "$stored" -eq 1500 ] && break
  sleep 0.1
done
expect_eq "$stored" 1500 "records stored within 5 s while stdin stays open"
wait "$QUIET" || fail "put with quiet stdin: $(cat "$T/quiet.err")"

# Reads: 2 MiB/s per shard with one second of burst, charged by what each answer
# carries (answers of at most 1 MiB; a fetch is let through while the bucket is not
# in debt, so the last answer is paid after it). Reading 3.85 MiB cannot end before
# (3.85 - 2 burst - 1 last answer) / 2 MiB/s = 0.43 s (unlimited: ~0.05 s); the
# reader is throttled, retries, and gets every record.
stream-ctl create readlim --enforce-limits >/dev/null
awk 'BEGIN { for (i = 0; i < 40000; i++) printf "%0100d\n", i }' >"$T/rl.txt"
stream-put readlim --key-fixed k --batch-size 64KiB <"$T/rl.txt"
sleep 1.2  # the read bucket is full (the put does not touch it)
t0=$(date +%s%N)
expect_eq "$(stream-tail readlim -n +1 | md5sum)" "$(md5sum <"$T/rl.txt")" "read of a limited stream"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -ge 350 ] || fail "4 MB read in $ms ms from a shard limited to 2 MiB/s"
echo "faults: ok"
