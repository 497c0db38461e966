#!/usr/bin/env bash
# parquet.verify: files written by streamkit's Parquet writer (lib/parquet), read back
# by an independent reader, DuckDB (the @duckdb/node-api npm package, whose native
# library ships inside the npm package), and compared value by value: see verify.mjs.
#
#   verify.sh PATH/TO/parquet_gen
#
# The reader is installed with npm into a cache outside the source tree,
# ${STREAMKIT_NPM_CACHE:-$HOME/.cache/streamkit-npm} (version: $STREAMKIT_DUCKDB_VERSION,
# default below). Exit status: 0 pass, 1 fail, 77 skipped (no node/npm, or the reader
# cannot be installed or loaded here): ctest reports that as a skip, never a pass.
set -euo pipefail

GEN=${1:?usage: verify.sh PATH/TO/parquet_gen}
here=$(cd "$(dirname "$0")" && pwd)
skip() {
  echo "parquet.verify: SKIPPED: $*" >&2
  exit 77
}

[ -x "$GEN" ] || { echo "parquet.verify: $GEN is not an executable" >&2; exit 1; }
source "$here/duckdb_env.sh"
mod=$(duckdb_module) || skip "$mod"

T=$(mktemp -d "${TMPDIR:-/tmp}/streamkit-parquet.XXXXXX")
trap '[ -n "${STREAMKIT_KEEP:-}" ] || rm -rf "$T"' EXIT
node "$here/verify.mjs" "$GEN" "$T" "$mod"
