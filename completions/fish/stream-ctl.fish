# fish completion for stream-ctl (streamkit). Install: copy to
# ~/.config/fish/completions/ or /usr/share/fish/vendor_completions.d/.
# Shared helpers (__streamkit_*) are in completions/fish/functions/ (vendor_functions.d).
# Options are kept in step with tools/stream-ctl.cc and tools/tool_common.cc.

function __streamkit_ctl_words
    __streamkit_positionals --socket --data --shards --retention --max-record-size --to
end

# True when no command has been given yet.
function __streamkit_ctl_needs_command
    test (count (__streamkit_ctl_words)) -eq 0
end

# True when the command is one of $argv and N positionals follow it ($argv[1] = N).
function __streamkit_ctl_at
    set -l n $argv[1]
    set -e argv[1]
    set -l w (__streamkit_ctl_words)
    test (count $w) -ge 1; and contains -- $w[1] $argv; and test (math (count $w) - 1) -eq $n
end

function __streamkit_ctl_cmd
    set -l w (__streamkit_ctl_words)
    test (count $w) -ge 1; and contains -- $w[1] $argv
end

function __streamkit_ctl_stream
    set -l w (__streamkit_ctl_words)
    echo $w[2]
end

complete -c stream-ctl -f

# Options before the command.
complete -c stream-ctl -n __streamkit_ctl_needs_command -s h -l help -d 'Print help and exit'
complete -c stream-ctl -n __streamkit_ctl_needs_command -l version -d 'Print version and exit'
complete -c stream-ctl -n __streamkit_ctl_needs_command -l socket -r -F -d 'Server socket'
complete -c stream-ctl -n __streamkit_ctl_needs_command -l data -r -a '(__fish_complete_directories)' -d 'Data dir for an autostarted server'
complete -c stream-ctl -n __streamkit_ctl_needs_command -l no-autostart -d 'Do not start stream-serve when no server answers'

# Commands.
complete -c stream-ctl -n __streamkit_ctl_needs_command -a create -d 'Create a stream'
complete -c stream-ctl -n __streamkit_ctl_needs_command -a delete -d 'Delete a stream and all its records'
complete -c stream-ctl -n __streamkit_ctl_needs_command -a list -d 'List streams'
complete -c stream-ctl -n __streamkit_ctl_needs_command -a describe -d 'Show shards, ranges, sequence numbers, counts and rates'
complete -c stream-ctl -n __streamkit_ctl_needs_command -a retention -d 'Change how long a stream keeps records'
complete -c stream-ctl -n __streamkit_ctl_needs_command -a groups -d 'Show consumer groups: members, checkpoints and lag'
complete -c stream-ctl -n __streamkit_ctl_needs_command -a group-reset -d "Move a consumer group's checkpoints"

# Command options.
complete -c stream-ctl -n 'not __streamkit_ctl_needs_command' -s h -l help -d 'Print help and exit'
complete -c stream-ctl -n '__streamkit_ctl_cmd create' -l shards -x -d 'Number of shards (1-10000)'
complete -c stream-ctl -n '__streamkit_ctl_cmd create' -l retention -x -a '24h 48h 7d 30d 365d' -d 'How long records are kept (1h-8760h)'
complete -c stream-ctl -n '__streamkit_ctl_cmd create' -l max-record-size -x -a '1MiB 4MiB 10MiB' -d 'Largest key + data of one record'
complete -c stream-ctl -n '__streamkit_ctl_cmd create' -l enforce-limits -d 'Throttle like provisioned Kinesis'
complete -c stream-ctl -n '__streamkit_ctl_cmd create' -l on-demand -d 'On-demand capacity mode'
complete -c stream-ctl -n '__streamkit_ctl_cmd list describe groups' -l json -d 'JSON output'
complete -c stream-ctl -n '__streamkit_ctl_cmd group-reset' -l to -x -a 'trim-horizon latest time: seq:' -d 'Where the group restarts'

# Arguments.
complete -c stream-ctl -n '__streamkit_ctl_at 0 delete describe retention groups group-reset' -a '(__streamkit_streams)' -d Stream
complete -c stream-ctl -n '__streamkit_ctl_at 1 retention' -a '24h 48h 7d 30d 365d' -d Duration
complete -c stream-ctl -n '__streamkit_ctl_at 1 group-reset' -a '(__streamkit_groups (__streamkit_ctl_stream))' -d Group
