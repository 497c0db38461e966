# fish completion for stream-mirror (streamkit). Install: copy to
# ~/.config/fish/completions/ or /usr/share/fish/vendor_completions.d/.
# Shared helpers (__streamkit_*) are in completions/fish/functions/ (vendor_functions.d).
# Options are kept in step with tools/stream-mirror.cc and tools/tool_common.cc.

# Stream names of the source server: the --from already on the command line,
# never autostarting; none without a --from. Streams already named are left out.
function __streamkit_mirror_streams
    set -l tokens (commandline -opc)
    set -l sock
    for i in (seq (count $tokens))
        switch $tokens[$i]
            case --from
                set -l j (math $i + 1)
                if test $j -le (count $tokens)
                    set sock $tokens[$j]
                end
            case '--from=*'
                set sock (string replace -- --from= '' $tokens[$i])
        end
    end
    test -n "$sock"; or return
    set -l named (__streamkit_positionals --from --to --match --rename --source-alias)
    for s in (command stream-ctl --socket $sock --no-autostart list --json 2>/dev/null |
            sed -n 's/^{"stream":"\([^"]*\)".*/\1/p')
        contains -- $s $named; or echo $s
    end
end

complete -c stream-mirror -f
complete -c stream-mirror -a '(__streamkit_mirror_streams)' -d 'Source stream'
complete -c stream-mirror -s h -l help -d 'Print help and exit'
complete -c stream-mirror -l version -d 'Print version and exit'
complete -c stream-mirror -l from -r -F -d 'Source server socket'
complete -c stream-mirror -l to -r -F -d 'Target server socket'
complete -c stream-mirror -l all -d 'Mirror every stream of the source'
complete -c stream-mirror -l match -x -d 'Mirror source streams matching this extended regex'
complete -c stream-mirror -l rename -x -a '{stream} {source}.{stream}' -d 'Target name template (default {stream})'
complete -c stream-mirror -l source-alias -x -d 'What {source} stands for in --rename (default source)'
complete -c stream-mirror -l once -d 'Copy until caught up, then exit (for cron)'
complete -c stream-mirror -l sync-groups -d 'Copy consumer-group checkpoints to the target'
complete -c stream-mirror -s v -l verbose -d 'Print streams created, reshards replayed, lag every 5 s'
