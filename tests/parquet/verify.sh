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
DUCKDB_VERSION=${STREAMKIT_DUCKDB_VERSION:-1.5.6-r.1}
CACHE=${STREAMKIT_NPM_CACHE:-${HOME:-/tmp}/.cache/streamkit-npm}

skip() {
  echo "parquet.verify: SKIPPED: $*" >&2
  exit 77
}

[ -x "$GEN" ] || { echo "parquet.verify: $GEN is not an executable" >&2; exit 1; }
command -v node >/dev/null || skip "node is not installed (Debian: apt-get install nodejs npm)"
command -v npm >/dev/null || skip "npm is not installed (Debian: apt-get install npm)"

mod="$CACHE/node_modules/@duckdb/node-api"
installed() {
  node -e 'process.exit(require(process.argv[1] + "/package.json").version === process.argv[2] ? 0 : 1)' \
    "$mod" "$DUCKDB_VERSION" 2>/dev/null
}
if ! installed; then
  mkdir -p "$CACHE" || skip "cannot create the npm cache directory $CACHE"
  # One installer at a time (parallel ctest runs share the cache).
  exec 9>"$CACHE/.lock"
  command -v flock >/dev/null && flock 9
  if ! installed; then
    echo "parquet.verify: installing @duckdb/node-api@$DUCKDB_VERSION into $CACHE" >&2
    if ! timeout 600 npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error \
        "@duckdb/node-api@$DUCKDB_VERSION" >"$CACHE/npm-install.log" 2>&1; then
      tail -n 20 "$CACHE/npm-install.log" >&2 || true
      skip "npm could not install @duckdb/node-api@$DUCKDB_VERSION (is the npm registry reachable?)"
    fi
  fi
  exec 9>&-
  installed || skip "@duckdb/node-api@$DUCKDB_VERSION is not in $CACHE after npm install"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/streamkit-parquet.XXXXXX")
trap '[ -n "${STREAMKIT_KEEP:-}" ] || rm -rf "$T"' EXIT
node "$here/verify.mjs" "$GEN" "$T" "$mod"
