#!/usr/bin/env bash
# The main job: installs dependencies, builds, and runs the log benchmark suite.
# (Becomes the stream-serve + stream-put | stream-tail demo once the server lands.)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh"
BUILD_TYPE=Release "$root/scripts/build.sh" "$root/build-release" -DSTREAMKIT_TESTS=OFF
exec "$root/build-release/bench/log_append" "$@"
