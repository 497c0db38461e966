# fish completion for stream-serve (streamkit). Install: copy to
# ~/.config/fish/completions/ or /usr/share/fish/vendor_completions.d/.
# Shared helpers (__streamkit_*) are in completions/fish/functions/ (vendor_functions.d).
# Options are kept in step with tools/stream-serve.cc.

complete -c stream-serve -f
complete -c stream-serve -s h -l help -d 'Print help and exit'
complete -c stream-serve -l version -d 'Print version and exit'
complete -c stream-serve -l socket -r -F -d 'Socket to listen on'
complete -c stream-serve -l data -r -a '(__fish_complete_directories)' -d 'Data dir'
complete -c stream-serve -l socket-mode -x -a '0600 0660 0666' -d 'Permissions of the socket, octal'
complete -c stream-serve -l fsync -x -a 'always interval=200 never' -d 'Durability policy'
complete -c stream-serve -l segment-bytes -x -a '16MiB 128MiB 1GiB' -d 'Size at which a shard starts a new segment file'
complete -c stream-serve -l inject-faults -x -a 'throttle= fail= latency=' -d "Test clients' retries: throttle=RATE,fail=RATE,latency=MS"
complete -c stream-serve -s v -l verbose -d 'Log stream changes and retention'
