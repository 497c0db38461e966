# fish completion for stream-put (streamkit). Install: copy to
# ~/.config/fish/completions/ or /usr/share/fish/vendor_completions.d/.
# Shared helpers (__streamkit_*) are in completions/fish/functions/ (vendor_functions.d).
# Options are kept in step with tools/stream-put.cc and tools/tool_common.cc.

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
