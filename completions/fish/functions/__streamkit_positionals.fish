# streamkit fish completion helper, shared by the completions/fish/stream-*.fish files.
# Installed to vendor_functions.d (or ~/.config/fish/functions/): fish loads it on first use.
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
