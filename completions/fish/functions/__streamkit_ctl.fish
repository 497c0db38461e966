# streamkit fish completion helper, shared by the completions/fish/stream-*.fish files.
# Installed to vendor_functions.d (or ~/.config/fish/functions/): fish loads it on first use.
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
