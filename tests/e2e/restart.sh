#!/usr/bin/env bash
# Restarts: SIGTERM makes everything durable and exits 0; a kill -9 loses nothing
# acknowledged; producers' idempotence survives; one server per data dir.
source "$(dirname "$0")/lib.sh"
start_server --fsync always

stream-ctl create keep --shards 3 --retention 48h
gen_ndjson 30000 300 >"$T/in"
stream-put keep --ndjson --key .user.id <"$T/in"
stop_server                     # graceful: exit status 0 checked
start_server --fsync always
expect_eq "$(stream-tail keep -n +1 | sort | md5sum)" "$(sort "$T/in" | md5sum)" "after SIGTERM + restart"
expect_eq "$(stream-ctl describe keep --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["retention_hours"])')" 48 "retention kept"

# kill -9 right after acknowledged writes: nothing acknowledged is lost.
gen_ndjson 20000 200 | sed 's/"i":/"j":/' >"$T/in2"
stream-put keep --ndjson --key .user.id <"$T/in2"
kill9_server
start_server --fsync always
expect_eq "$(stream-tail keep -n +1 | wc -l)" 50000 "after kill -9"
check_key_order <(stream-tail keep -n +1 | grep '"i":')

# Also with the default policy (interval=200): a process crash keeps the page cache.
stop_server
start_server
seq 1 5000 | stream-put keep
kill9_server
# A checkpoint replacement cut short by the crash leaves a temp file: removed at start.
mkdir -p "$T/data/streams/keep/groups" && echo '{"checkp' >"$T/data/streams/keep/groups/g.ckpt.tmp"
start_server
[ ! -e "$T/data/streams/keep/groups/g.ckpt.tmp" ] || fail "a leftover g.ckpt.tmp was kept"
expect_eq "$(stream-tail keep -n +1 | wc -l)" 55000 "interval policy after kill -9"

# A put that outlives its server: stopped (SIGTERM) or killed mid-put and started
# again, the server is reconnected to and every record is stored exactly once (the
# batches on the wire are resent with their producer id and sequence numbers).
stream-ctl create rc --shards 2 >/dev/null
(seq 1 20; sleep 1.2; seq 21 40) | stream-put rc -v 2>"$T/rc.err" & PUT=$!
sleep 0.6; stop_server; sleep 0.3; start_server
wait "$PUT" || fail "stream-put across a server restart: exit $? ($(cat "$T/rc.err"))"
grep -q "reconnected 1 time" "$T/rc.err" || fail "no reconnect reported: $(cat "$T/rc.err")"
seq 100001 400000 | stream-put rc --batch-size 16KiB 2>"$T/rc.err" & PUT=$!
sleep 0.2; kill9_server; sleep 0.3; start_server
wait "$PUT" || fail "stream-put across a kill -9: exit $? ($(cat "$T/rc.err"))"
expect_eq "$(stream-tail rc -n +1 | sort -u | wc -l) $(stream-tail rc -n +1 | wc -l)" "300040 300040" "records put across a restart and a kill -9, each once"

# More batches of one shard on the wire than the server remembers per producer (5):
# stream-put keeps at most that many unacknowledged, so that after a kill -9 every
# resent batch is recognised (before: 'sent sequence 0 where 8 was expected', exit 1).
stop_server
start_server --inject-faults latency=1500   # answers come 1.5 s after the batch is stored
stream-ctl create win >/dev/null
(sleep 8; for i in 1 2 3 4 5 6 7 8; do echo w$i; sleep 0.05; done) | stream-put win --linger 0 2>"$T/win.err" & PUT=$!
sleep 8.9; kill9_server; start_server
wait "$PUT" || fail "stream-put with 8 batches unacknowledged at a kill -9: exit $? ($(cat "$T/win.err"))"
expect_eq "$(stream-tail win -n +1 | sort | tr '\n' ' ')" "w1 w2 w3 w4 w5 w6 w7 w8 " "8 records put across a kill -9, each once"

# A second server on the same data dir refuses with a clear message.
expect_rc 1 stream-serve --socket "$T/other.sock"
expect_err "already owns the data dir"
# ...and one on the same socket with another data dir too.
expect_rc 1 stream-serve --data "$T/data2"
expect_err "another server is listening"
[ ! -e "$T/data2" ] || fail "a server refused for its socket created its data dir"

# A group that read records which recovery later cut away (a damaged tail) still
# gets the new records stored at those offsets.
stream-ctl create cut >/dev/null
seq 1 50 | stream-put cut
expect_rc 0 stream-tail cut --group g
expect_eq "$(wc -l <"$T/out")" 50 "group read before the cut"
seq 51 60 | stream-put cut   # one more batch: the one recovery cuts
expect_rc 0 stream-tail cut --group g
stop_server
seg=$(ls "$T"/data/streams/cut/shard-000000000000/*.log)
truncate -s -5 "$seg"
start_server
seq 61 63 | stream-put cut
expect_rc 0 stream-tail cut --group g
expect_eq "$(tr '\n' ' ' <"$T/out")" "61 62 63 " "group after its checkpoint was cut away"
grep -q "past the shard's end" "$T/serve.log" || fail "no line about the checkpoint past the end"

# A damaged batch header in the middle of a segment (behind the index entries that
# recovery checks): reads return the records before it, then fail with exit 1 naming
# the offset and the file; reads past it still work.
stream-ctl create dm >/dev/null
pad=$(printf 'x%.0s' $(seq 90))
for i in 1 2 3 4 5; do seq $((i * 50 - 49)) $((i * 50)) | sed "s/\$/ $pad/" | stream-put dm; done
stop_server
python3 - "$T"/data/streams/dm/shard-000000000000/00000000000000000000.log <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[struct.unpack_from('<I', b, 0)[0] + 12] ^= 0xff   # the second batch's base offset
open(sys.argv[1], 'wb').write(b)
PY
start_server
expect_rc 1 stream-tail dm -n +1
expect_eq "$(wc -l <"$T/out")" 50 "records before a damaged batch"
expect_err "damaged data at offset 50: .*00000000000000000000.log: batch at byte"
expect_rc 0 stream-tail dm --from seq:120 --limit 3
expect_eq "$(cut -d' ' -f1 "$T/out" | tr '\n' ' ')" "121 122 123 " "records after a damaged batch"

# Damage in an old, synced segment (a flipped byte in the tail that recovery checks)
# is reported and kept: the segments after it are not cut, their offsets are not
# reused, and reads through the damaged batch fail with exit 1.
stop_server
start_server --segment-bytes 64KiB
stream-ctl create old >/dev/null
for i in 1 2 3 4 5 6 7 8; do seq $((i * 1000 - 999)) $((i * 1000)) | sed "s/\$/ $pad/" | stream-put old --batch-size 8KiB; done
stop_server
segs=("$T"/data/streams/old/shard-000000000000/*.log)
[ "${#segs[@]}" -ge 4 ] || fail "expected several segments, got ${#segs[@]}"
python3 - "${segs[0]}" <<'PY2'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
pos = last = 0
while pos < len(b):
    last, pos = pos, pos + struct.unpack_from('<I', b, pos)[0]
b[last + 100] ^= 0x5a   # a record byte of the segment's last batch
open(sys.argv[1], 'wb').write(b)
PY2
start_server
grep -q "kept 1 damaged synced segment" "$T/serve.log" || { cat "$T/serve.log" >&2; fail "no report of the kept damage"; }
expect_eq "$(ls "$T"/data/streams/old/shard-000000000000/*.log | wc -l)" "${#segs[@]}" "segments after the damaged one kept"
second=$(basename "${segs[1]}" .log); second=$((10#$second))
expect_rc 0 stream-tail old --from seq:$second --limit 1
expect_eq "$(cut -d' ' -f1 "$T/out")" $((second + 1)) "first record of the next segment"
expect_eq "$(stream-tail old -n 1 | cut -d' ' -f1)" 8000 "last record"
expect_rc 1 stream-tail old -n +1
lines=$(wc -l <"$T/out")
[ "$lines" -gt 0 ] && [ "$lines" -lt "$second" ] || fail "$lines records read before the damaged batch (at most $second)"
expect_err "damaged"
seq 8001 8003 | stream-put old
expect_eq "$(stream-tail old -n 4 | cut -d' ' -f1 | tr '\n' ' ')" "8000 8001 8002 8003 " "appends after the kept damage"

# The server keeps serving after everything above.
seq 3 | stream-put keep --key-fixed again
expect_eq "$(stream-tail keep -n 3 | tr '\n' ' ')" "1 2 3 " "still serving"
echo "restart: ok"
