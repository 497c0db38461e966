# fish completion for stream-firehose (streamkit). Install: copy to
# ~/.config/fish/completions/ or /usr/share/fish/vendor_completions.d/.
# Options are kept in step with tools/stream-firehose.cc and tools/tool_common.cc.

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

function __streamkit_firehose_stream
    set -l w (__streamkit_positionals --to --group --member --from --buffer-size \
        --buffer-interval --format --schema --compress --prefix --error-prefix --partition-key \
        --transform --transform-data --transform-missing --transform-timeout --transform-retries \
        --exec --retry-duration --socket --data)
    echo $w[1]
end

function __streamkit_firehose_needs_stream
    test -z (__streamkit_firehose_stream)
end

complete -c stream-firehose -f
complete -c stream-firehose -n __streamkit_firehose_needs_stream -a '(__streamkit_streams)' -d Stream
complete -c stream-firehose -s h -l help -d 'Print help and exit'
complete -c stream-firehose -l version -d 'Print version and exit'
complete -c stream-firehose -l to -x -a '(__fish_complete_directories)' -d 'Destination directory (a data lake root)'
complete -c stream-firehose -l once -d 'Deliver everything up to the current end, then exit'
complete -c stream-firehose -l group -x -a '(__streamkit_groups (__streamkit_firehose_stream))' -d 'Consumer group (default: one per --to)'
complete -c stream-firehose -l member -x -d 'Member id within the group (default HOST-PID)'
complete -c stream-firehose -l from -x -a 'trim-horizon latest' -d 'Where a new group starts'
complete -c stream-firehose -l buffer-size -x -a '1MiB 5MiB 16MiB 64MiB 128MiB' -d 'Deliver a buffer at this size (1MiB-128MiB)'
complete -c stream-firehose -l buffer-interval -x -a '0s 60s 300s 900s' -d '... or at this age (0s-900s)'
complete -c stream-firehose -l format -x -a 'ndjson parquet' -d 'File format'
complete -c stream-firehose -l schema -r -F -d 'Parquet columns, a JSON file like a Glue table'
complete -c stream-firehose -l compress -x -a 'none gzip zstd snappy' -d 'Compress the files (NDJSON) or pages (Parquet)'
complete -c stream-firehose -l no-newline -d 'Add no newline after each record'
complete -c stream-firehose -l prefix -x -d 'Path prefix under --to, with !{...} expressions'
complete -c stream-firehose -l error-prefix -x -d 'Where failed records go'
complete -c stream-firehose -l partition-key -x -d 'NAME=PATH: a partition key from a JSON field'
complete -c stream-firehose -l transform -x -d 'Command run per buffer: Lambda records in, results out'
complete -c stream-firehose -l transform-data -x -a 'base64 text' -d 'How data is passed to and from --transform'
complete -c stream-firehose -l transform-missing -x -a 'fail drop' -d 'Records the transform returns no result for'
complete -c stream-firehose -l transform-timeout -x -a '10s 60s 5m' -d 'Kill a transform running longer'
complete -c stream-firehose -l transform-retries -x -a '0 1 3 10' -d 'Retries of a failed transform (0-100)'
complete -c stream-firehose -l exec -x -d 'Command run after each file, {} = its path under --to'
complete -c stream-firehose -l retry-duration -x -a '0s 60s 300s 1h' -d 'Retry a failing --exec this long'
complete -c stream-firehose -l dry-run -d 'Print where the first N records would go (--dry-run=N)'
complete -c stream-firehose -s v -l verbose -d 'Print each delivered file'
complete -c stream-firehose -l socket -r -F -d 'Server socket'
complete -c stream-firehose -l data -r -a '(__fish_complete_directories)' -d 'Data dir for an autostarted server'
complete -c stream-firehose -l no-autostart -d 'Do not start stream-serve when no server answers'
