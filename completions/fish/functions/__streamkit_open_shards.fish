# streamkit fish completion helper, shared by the completions/fish/stream-*.fish files.
# Installed to vendor_functions.d (or ~/.config/fish/functions/): fish loads it on first use.
# Ids of the open shards of stream $argv[1] (the only ones that can be split or
# merged), leaving out the ids $argv[2..].
function __streamkit_open_shards
    test -n "$argv[1]"; or return
    set -l stream $argv[1]
    set -e argv[1]
    for s in (__streamkit_ctl describe $stream --json |
            string match -ar '"shard":"shardId-[0-9]+","state":"OPEN"' |
            string replace -r '^"shard":"(shardId-[0-9]+)".*' '$1')
        contains -- $s $argv; or echo $s
    end
end
