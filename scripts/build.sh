#!/usr/bin/env bash
# Configures and builds streamkit. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# Default BUILD_DIR: build. Set CI=true for -Werror.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/build}"; shift || true
args=(-G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}")
[ "${CI:-}" = true ] && args+=(-DSTREAMKIT_WERROR=ON)
cmake -S "$root" -B "$dir" "${args[@]}" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
