# fish completion for stream-tail (streamkit). Install: copy to
# ~/.config/fish/completions/ or /usr/share/fish/vendor_completions.d/.
# Options are kept in step with tools/stream-tail.cc and tools/tool_common.cc.

# stream-ctl with the --socket already on the command line, never autostarting.
function __streamkit_ctl
    set -l tokens (commandline -opc)
    set -l sock
    for i in (seq (count $tokens))
        switch $tokens[$i]
            case --socket
                set -l j (math $i + 1)
                if test $j -le (count $tokens)
                    set sock --socket $tokens[$j]
                end
            case '--socket=*'
                set sock --socket (string replace -- --socket= '' $tokens[$i])
        end
    end
    command stream-ctl $sock --no-autostart $argv 2>/dev/null
end

# Stream names of the running server.
function __streamkit_streams
    __streamkit_ctl list --json | sed -n 's/^{"stream":"\([^"]*\)".*/\1/p'
end

# Group names of stream $argv[1].
function __streamkit_groups
    test -n "$argv[1]"; or return
    __streamkit_ctl groups $argv[1] --json | sed -n 's/^{"group":"\([^"]*\)".*/\1/p'
end

# Shard ids of stream $argv[1].
function __streamkit_shards
    test -n "$argv[1]"; or return
    __streamkit_ctl describe $argv[1] --json | string match -ar '"shard":"shardId-[0-9]+"' |
        string replace -r '.*"(shardId-[0-9]+)"' '$1'
end

# The positional words so far (options and their values left out); $argv lists
# the options that take a value.
function __streamkit_positionals
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip -eq 1
            set skip 0
            continue
        end
        if contains -- $t $argv
            set skip 1
        else if not string match -q -- '-*' $t
            echo $t
        end
    end
end

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
