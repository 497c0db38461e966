# fish completion for stream-tail (streamkit). Install: copy to
# ~/.config/fish/completions/ or /usr/share/fish/vendor_completions.d/.
# Shared helpers (__streamkit_*) are in completions/fish/functions/ (vendor_functions.d).
# Options are kept in step with tools/stream-tail.cc and tools/tool_common.cc.

function __streamkit_tail_stream
    set -l w (__streamkit_positionals -n --lines --from --until --shard --limit --format \
        --group --member --socket --data)
    echo $w[1]
end

function __streamkit_tail_needs_stream
    test -z (__streamkit_tail_stream)
end

complete -c stream-tail -f
complete -c stream-tail -n __streamkit_tail_needs_stream -a '(__streamkit_streams)' -d Stream
complete -c stream-tail -s h -l help -d 'Print help and exit'
complete -c stream-tail -l version -d 'Print version and exit'
complete -c stream-tail -s n -l lines -x -a '10 +1' -d 'Print the last N records, or +K: from the K-th on'
complete -c stream-tail -s f -l follow -d 'Keep printing new records as they arrive'
complete -c stream-tail -s F -d 'Like -f, and keep retrying when the server goes away'
complete -c stream-tail -l from -x -a 'trim-horizon latest seq: after: time:' -d 'Start position'
complete -c stream-tail -l until -x -a 'time: seq: latest' -d 'Stop position'
complete -c stream-tail -l shard -x -a '(__streamkit_shards (__streamkit_tail_stream))' -d 'Read only this shard'
complete -c stream-tail -l limit -x -d 'Stop after N records'
complete -c stream-tail -l format -x -a 'raw json' -d 'raw, json or a template like {shard} {seq} {key} {data}'
complete -c stream-tail -l group -x -a '(__streamkit_groups (__streamkit_tail_stream))' -d 'Consume as a member of this group'
complete -c stream-tail -l member -x -d 'Member id within the group (default HOST-PID)'
complete -c stream-tail -l socket -r -F -d 'Server socket'
complete -c stream-tail -l data -r -a '(__fish_complete_directories)' -d 'Data dir for an autostarted server'
complete -c stream-tail -l no-autostart -d 'Do not start stream-serve when no server answers'
