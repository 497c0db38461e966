# fish completion for stream-firehose (streamkit). Install: copy to
# ~/.config/fish/completions/ or /usr/share/fish/vendor_completions.d/.
# Shared helpers (__streamkit_*) are in completions/fish/functions/ (vendor_functions.d).
# Options are kept in step with tools/stream-firehose.cc and tools/tool_common.cc.

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
