# streamkit fish completion helper, shared by the completions/fish/stream-*.fish files.
# Installed to vendor_functions.d (or ~/.config/fish/functions/): fish loads it on first use.
# Group names of stream $argv[1].
function __streamkit_groups
    test -n "$argv[1]"; or return
    __streamkit_ctl groups $argv[1] --json | sed -n 's/^{"group":"\([^"]*\)".*/\1/p'
end
