# streamkit fish completion helper, shared by the completions/fish/stream-*.fish files.
# Installed to vendor_functions.d (or ~/.config/fish/functions/): fish loads it on first use.
# Stream names of the running server.
function __streamkit_streams
    __streamkit_ctl list --json | sed -n 's/^{"stream":"\([^"]*\)".*/\1/p'
end
