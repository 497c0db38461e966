# streamkit fish completion helper, shared by the completions/fish/stream-*.fish files.
# Installed to vendor_functions.d (or ~/.config/fish/functions/): fish loads it on first use.
# Shard ids of stream $argv[1].
function __streamkit_shards
    test -n "$argv[1]"; or return
    __streamkit_ctl describe $argv[1] --json | string match -ar '"shard":"shardId-[0-9]+"' |
        string replace -r '.*"(shardId-[0-9]+)"' '$1'
end
