#!/usr/bin/env bash
# Core data path: put 200k NDJSON lines with 1,000 keys over 4 shards, read them back:
# exact counts, each key's records in order, sequence numbers, formats, positions.
source "$(dirname "$0")/lib.sh"
start_server

stream-ctl create events --shards 4
gen_ndjson 200000 1000 >"$T/in.ndjson"
stream-put events --ndjson --key .user.id -v <"$T/in.ndjson" 2>"$T/put.err"
grep -q "200000 records" "$T/put.err" || { cat "$T/put.err"; fail "put summary"; }

stream-tail events -n +1 >"$T/out.ndjson"
expect_eq "$(wc -l <"$T/out.ndjson")" 200000 "records read back"
expect_eq "$(sort "$T/out.ndjson" | md5sum)" "$(sort "$T/in.ndjson" | md5sum)" "same records"
check_key_order "$T/out.ndjson"

# All four shards got records; describe counts them.
stream-ctl describe events --json >"$T/desc.json"
python3 - "$T/desc.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["records"] == 200000, d["records"]
assert len(d["shards"]) == 4
assert all(s["records"] > 40000 for s in d["shards"]), [s["records"] for s in d["shards"]]
PY

# Same key, same shard: records of one key all come from one shard.
stream-tail events -n +1 --format '{shard} {key}' | sort -u | awk '{print $2}' | sort | uniq -d >"$T/dup"
[ ! -s "$T/dup" ] || fail "a key spans shards: $(head -3 "$T/dup")"

# The last 10 records by default; -n 3; --limit; --shard; json format.
expect_eq "$(stream-tail events | wc -l)" 10 "default tail"
expect_eq "$(stream-tail events -n 3 | wc -l)" 3 "-n 3"
expect_eq "$(stream-tail events -n +1 --limit 7 | wc -l)" 7 "--limit"
n0=$(stream-tail events -n +1 --shard shardId-000000000000 | wc -l)
[ "$n0" -gt 40000 ] || fail "--shard read $n0"
stream-tail events -n 1 --format json | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert set(r)>={"stream","shard","seq","key","ts","data"}, r'

# --print-seq: one SHARD<TAB>SEQ per input record, in input order; seq:S finds it again.
printf 'alpha\nbeta\ngamma\n' | stream-put events --key-fixed k1 --print-seq >"$T/seqs"
expect_eq "$(wc -l <"$T/seqs")" 3 "print-seq lines"
seq2=$(sed -n 2p "$T/seqs" | cut -f2)
expect_eq "$(stream-tail events --from "seq:$seq2" --limit 2 | tr '\n' ' ')" "beta gamma " "--from seq:"
expect_eq "$(stream-tail events --from "after:$seq2" --limit 1)" "gamma" "--from after:"
expect_eq "$(stream-tail events --from time:-1h --limit 1 | wc -l)" 1 "--from time:"
expect_eq "$(stream-tail events --from latest | wc -l)" 0 "--from latest"
# ... printed as each record is acknowledged, not when stdin ends (stdout is a pipe).
# (bash unsets SEQ and SEQ_PID once the coprocess ends: keep copies.)
coproc SEQ { stream-put events --key-fixed k1 --print-seq --linger 0 2>"$T/seq.err"; }
seq_pid=$SEQ_PID seq_out=${SEQ[0]} seq_in=${SEQ[1]}
echo one >&"$seq_in"
read -r -t 5 -u "$seq_out" first || fail "no sequence number printed while stdin stays open: $(cat "$T/seq.err")"
expect_eq "$(stream-tail events --from "seq:$(cut -f2 <<<"$first")" --limit 1)" "one" "--print-seq while open"
exec {seq_in}>&-
wait "$seq_pid" || fail "stream-put --print-seq: $(cat "$T/seq.err")"

# Framing: --nul and --raw.
printf 'a\0b\0c' | stream-put events --nul --key-fixed nul
expect_eq "$(stream-tail events -n 3 | tr '\n' ' ')" "a b c " "--nul"
printf 'line1\nline2\n' | stream-put events --raw --key-fixed raw
expect_eq "$(stream-tail events -n 1 --format '{key}')" "raw" "--raw key"
expect_eq "$(stream-tail events -n 1 | head -2 | tr "\n" " ")" "line1 line2 " "--raw is one record"

# Compression round trip.
seq 1000 | stream-put events --compress zstd --key-fixed z
expect_eq "$(stream-tail events -n 1000 | md5sum)" "$(seq 1000 | md5sum)" "zstd batches"

# --create-shards creates a missing stream; without it a missing stream is an error.
seq 5 | stream-put fresh --create-shards 2
expect_eq "$(stream-tail fresh -n +1 | sort -n | tr '\n' ' ')" "1 2 3 4 5 " "created on put"
expect_rc 4 stream-put missing </dev/null
expect_err "does not exist"
# -n N holds one fetch per shard, not N records: the last 1,000,000 of a stream need
# no more memory than the last 10 (peak RSS; the old way took ~180 MB here).
seq 1 1000000 | stream-put big --create-shards 2 --key-fixed k
maxrss() { python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"; }
kib=$(maxrss "$BIN/stream-tail" big -n 1000000)
limit=32768
[ "${STREAMKIT_E2E_SANITIZED:-0}" = 1 ] && limit=131072  # ASan's shadow and quarantine
[ "$kib" -lt "$limit" ] || fail "stream-tail -n 1000000 took $kib KiB"
expect_eq "$(stream-tail big -n 1000000 | sed -n '1p;$p' | tr '\n' ' ')" "1 1000000 " "first and last of -n 1000000"
expect_eq "$(stream-tail big -n 3 | tr '\n' ' ')" "999998 999999 1000000 " "-n 3 of a million"
echo "basic: ok"
