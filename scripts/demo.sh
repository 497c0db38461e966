#!/usr/bin/env bash
# The main job: installs dependencies, builds, starts stream-serve on the default
# socket and data dir (XDG paths), and runs a put -> tail pipeline through it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh"
echo "== building (Release) into build-release" >&2
BUILD_TYPE=Release "$root/scripts/build.sh" "$root/build-release" -DSTREAMKIT_TESTS=OFF
export PATH="$root/build-release:$PATH"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }

# The first client starts the server in the background if none answers (like tmux).
step "stream-ctl create demo --shards 4"
stream-ctl create demo --shards 4 2>&1 || true

step "generate 200,000 NDJSON events for 1,000 users | stream-put demo --ndjson --key .user -v"
awk 'BEGIN { for (i = 0; i < 200000; i++)
  printf("{\"user\":\"u%03d\",\"n\":%d,\"action\":\"%s\"}\n", i % 1000, i, (i % 3 ? "view" : "buy")) }' |
  stream-put demo --ndjson --key .user -v

step "stream-ctl describe demo"
stream-ctl describe demo

step "stream-tail demo -n 3 --format json"
stream-tail demo -n 3 --format json

step "stream-tail demo -n +1 | wc -l        # everything, oldest first"
stream-tail demo -n +1 | wc -l

step "stream-tail demo --group reporting | grep -c buy   # a consumer group drains and checkpoints"
stream-tail demo --group reporting | grep -c buy || true
step "stream-tail demo --group reporting | wc -l       # nothing new since the checkpoint"
stream-tail demo --group reporting | wc -l

step "stream-tail -f demo --from latest &  then: echo ... | stream-put demo"
stream-tail -f demo --from latest --format '{shard} {seq} {data}' &
follower=$!
sleep 0.5
printf '{"user":"live","n":1}\n{"user":"live","n":2}\n' | stream-put demo --ndjson --key .user
sleep 0.5
kill "$follower"
wait "$follower" 2>/dev/null || true

sock="${STREAMKIT_SOCKET:-${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/streamkit/serve.sock}}"
sock="${sock:-/tmp/streamkit-$(id -u)/serve.sock}"
data="${STREAMKIT_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/streamkit}"
cat >&2 <<MSG

stream-serve keeps running in the background (socket $sock, data $data).
Try: export PATH="$root/build-release:\$PATH"; stream-tail -f demo
Stop it with: kill \$(head -1 "$data/serve.lock")
MSG
