#!/usr/bin/env bash
# Sets up and runs every test: installs dependencies, builds, and runs the whole
# ctest suite on both I/O backends (io_uring and posix), then again in an
# AddressSanitizer + UndefinedBehaviorSanitizer build. This is what CI runs.
# Usage: scripts/test.sh [--fast]   (--fast: skip the sanitizer build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh"

echo "== build (RelWithDebInfo) and test" >&2
"$root/scripts/build.sh" "$root/build"
ctest --test-dir "$root/build" --output-on-failure -j2

if [ "${1:-}" != --fast ]; then
  echo "== build with ASan+UBSan and test" >&2
  "$root/scripts/build.sh" "$root/build-asan" -DSTREAMKIT_SANITIZE=ON -DSTREAMKIT_BENCH=OFF
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$root/build-asan" --output-on-failure -j2
fi
