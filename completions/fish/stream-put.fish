# fish completion for stream-put (streamkit). Install: copy to
# ~/.config/fish/completions/ or /usr/share/fish/vendor_completions.d/.
# Options are kept in step with tools/stream-put.cc and tools/tool_common.cc.

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

function __streamkit_put_needs_stream
    test (count (__streamkit_positionals --key --key-fixed --hash-key --create-shards --linger \
        --batch-size --compress --max-in-flight --on-error --socket --data)) -eq 0
end

complete -c stream-put -f
complete -c stream-put -n __streamkit_put_needs_stream -a '(__streamkit_streams)' -d Stream
complete -c stream-put -s h -l help -d 'Print help and exit'
complete -c stream-put -l version -d 'Print version and exit'
complete -c stream-put -s 0 -l nul -d 'Records are separated by NUL bytes'
complete -c stream-put -l ndjson -d 'Each line must be valid JSON'
complete -c stream-put -l raw -d 'All of stdin is one record'
complete -c stream-put -l key -x -d 'Take the key from a JSON field: .user.id or /user/id'
complete -c stream-put -l key-fixed -x -d 'Use this key for every record'
complete -c stream-put -l hash-key -x -d 'Explicit hash key (0..2^128-1) choosing the shard'
complete -c stream-put -l create-shards -x -d 'Create the stream with N shards if it does not exist'
complete -c stream-put -l linger -x -a '0ms 5ms 50ms 1s' -d 'Wait this long to fill a batch'
complete -c stream-put -l batch-size -x -a '64KiB 256KiB 1MiB 4MiB 8MiB' -d 'Send a batch once it reaches this size'
complete -c stream-put -l compress -x -a 'none zstd' -d 'Compress batches'
complete -c stream-put -l max-in-flight -x -d 'Batches sent and not yet acknowledged (1-256)'
complete -c stream-put -l print-seq -d 'Print SHARD_ID<TAB>SEQUENCE for every record'
complete -c stream-put -l on-error -x -a 'fail skip' -d 'On a bad input line'
complete -c stream-put -s v -l verbose -d 'Print a summary to stderr'
complete -c stream-put -l socket -r -F -d 'Server socket'
complete -c stream-put -l data -r -a '(__fish_complete_directories)' -d 'Data dir for an autostarted server'
complete -c stream-put -l no-autostart -d 'Do not start stream-serve when no server answers'
