# fish completion for stream-reshard (streamkit). Install: copy to
# ~/.config/fish/completions/ or /usr/share/fish/vendor_completions.d/.
# Shared helpers (__streamkit_*) are in completions/fish/functions/ (vendor_functions.d).
# Options are kept in step with tools/stream-reshard.cc and tools/tool_common.cc.

# The stream, the command, then the command's words.
function __streamkit_reshard_words
    __streamkit_positionals --socket --data --at --min --max --split-bytes --split-records \
        --hot-for --merge-below --cold-for
end

function __streamkit_reshard_needs_stream
    test (count (__streamkit_reshard_words)) -eq 0
end

function __streamkit_reshard_needs_command
    test (count (__streamkit_reshard_words)) -eq 1
end

# True when a command has been given.
function __streamkit_reshard_has_command
    test (count (__streamkit_reshard_words)) -ge 2
end

# True when the command is one of $argv.
function __streamkit_reshard_cmd
    set -l w (__streamkit_reshard_words)
    test (count $w) -ge 2; and contains -- $w[2] $argv
end

# True when the command is one of $argv and N words follow it ($argv[1] = N).
function __streamkit_reshard_at
    set -l n $argv[1]
    set -e argv[1]
    set -l w (__streamkit_reshard_words)
    test (count $w) -ge 2; and contains -- $w[2] $argv; and test (math (count $w) - 2) -eq $n
end

function __streamkit_reshard_stream
    set -l w (__streamkit_reshard_words)
    echo $w[1]
end

# The first shard named after merge.
function __streamkit_reshard_first_shard
    set -l w (__streamkit_reshard_words)
    echo $w[3]
end

complete -c stream-reshard -f

# Options that may come anywhere.
complete -c stream-reshard -s h -l help -d 'Print help and exit'
complete -c stream-reshard -n 'not __streamkit_reshard_has_command' -l version -d 'Print version and exit'
complete -c stream-reshard -l socket -r -F -d 'Server socket'
complete -c stream-reshard -l data -r -a '(__fish_complete_directories)' -d 'Data dir for an autostarted server'
complete -c stream-reshard -l no-autostart -d 'Do not start stream-serve when no server answers'

# The stream, then the command.
complete -c stream-reshard -n __streamkit_reshard_needs_stream -a '(__streamkit_streams)' -d Stream
complete -c stream-reshard -n __streamkit_reshard_needs_command -a split -d 'Split an open shard in two'
complete -c stream-reshard -n __streamkit_reshard_needs_command -a merge -d 'Merge two open shards with adjacent ranges into one'
complete -c stream-reshard -n __streamkit_reshard_needs_command -a scale -d 'Reach N open shards with even ranges'
complete -c stream-reshard -n __streamkit_reshard_needs_command -a auto -d 'On-demand mode: split hot shards, merge cold neighbours'
complete -c stream-reshard -n __streamkit_reshard_needs_command -a manual -d 'Turn on-demand mode off'
complete -c stream-reshard -n __streamkit_reshard_needs_command -a status -d 'Show the shard tree: ids, ranges, parents, state, rates'

# Command options.
complete -c stream-reshard -n '__streamkit_reshard_cmd split' -l at -x -d 'First hash key of the second child (decimal)'
complete -c stream-reshard -n '__streamkit_reshard_cmd split merge' -l dry-run -d 'Print what would change, change nothing'
complete -c stream-reshard -n '__streamkit_reshard_cmd scale' -l dry-run -d 'Print the plan, change nothing'
complete -c stream-reshard -n '__streamkit_reshard_cmd auto' -l min -x -d 'Fewest open shards (default 1)'
complete -c stream-reshard -n '__streamkit_reshard_cmd auto' -l max -x -d 'Most open shards (default 64)'
complete -c stream-reshard -n '__streamkit_reshard_cmd auto' -l split-bytes -x -a '256KiB 512KiB 1MiB 2MiB 4MiB' -d 'Hot above this many bytes/s (default 1MiB)'
complete -c stream-reshard -n '__streamkit_reshard_cmd auto' -l split-records -x -d 'Hot above this many records/s (default 1000)'
complete -c stream-reshard -n '__streamkit_reshard_cmd auto' -l hot-for -x -a '10s 30s 1m 5m' -d 'Split a shard hot for this long (default 30s)'
complete -c stream-reshard -n '__streamkit_reshard_cmd auto' -l merge-below -x -a '10 25 50' -d 'Merge neighbours below this percent of capacity (default 25)'
complete -c stream-reshard -n '__streamkit_reshard_cmd auto' -l cold-for -x -a '1m 5m 15m 1h' -d '... for this long (default 5m)'
complete -c stream-reshard -n '__streamkit_reshard_cmd status' -l json -d 'JSON output'

# Arguments.
complete -c stream-reshard -n '__streamkit_reshard_at 0 split merge' -a '(__streamkit_open_shards (__streamkit_reshard_stream))' -d 'Open shard'
complete -c stream-reshard -n '__streamkit_reshard_at 1 merge' -a '(__streamkit_open_shards (__streamkit_reshard_stream) (__streamkit_reshard_first_shard))' -d 'Adjacent open shard'
complete -c stream-reshard -n '__streamkit_reshard_at 0 scale' -a '1 2 4 8 16 32 64' -d 'Open shards'
