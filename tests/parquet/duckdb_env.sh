# Sourced by tests that read Parquet back with DuckDB (@duckdb/node-api from npm, whose
# native library ships inside the package). duckdb_module prints the module directory,
# installing it on first use into ${STREAMKIT_NPM_CACHE:-$HOME/.cache/streamkit-npm}
# (version $STREAMKIT_DUCKDB_VERSION), or prints why it cannot and returns 1.
DUCKDB_VERSION=${STREAMKIT_DUCKDB_VERSION:-1.5.6-r.1}
DUCKDB_CACHE=${STREAMKIT_NPM_CACHE:-${HOME:-/tmp}/.cache/streamkit-npm}

duckdb_module() {
  local mod="$DUCKDB_CACHE/node_modules/@duckdb/node-api"
  command -v node >/dev/null || { echo "node is not installed (Debian: apt-get install nodejs npm)"; return 1; }
  command -v npm >/dev/null || { echo "npm is not installed (Debian: apt-get install npm)"; return 1; }
  _duckdb_installed() {
    node -e 'process.exit(require(process.argv[1] + "/package.json").version === process.argv[2] ? 0 : 1)' \
      "$mod" "$DUCKDB_VERSION" 2>/dev/null
  }
  if ! _duckdb_installed; then
    mkdir -p "$DUCKDB_CACHE" || { echo "cannot create the npm cache directory $DUCKDB_CACHE"; return 1; }
    (
      # One installer at a time (parallel ctest runs share the cache).
      exec 9>"$DUCKDB_CACHE/.lock"
      command -v flock >/dev/null && flock 9
      _duckdb_installed && exit 0
      echo "installing @duckdb/node-api@$DUCKDB_VERSION into $DUCKDB_CACHE" >&2
      timeout 600 npm install --prefix "$DUCKDB_CACHE" --no-audit --no-fund --loglevel=error \
        "@duckdb/node-api@$DUCKDB_VERSION" >"$DUCKDB_CACHE/npm-install.log" 2>&1 || {
        tail -n 20 "$DUCKDB_CACHE/npm-install.log" >&2 || true
        exit 1
      }
    ) || { echo "npm could not install @duckdb/node-api@$DUCKDB_VERSION (is the npm registry reachable?)"; return 1; }
    _duckdb_installed || { echo "@duckdb/node-api@$DUCKDB_VERSION is not in $DUCKDB_CACHE after npm install"; return 1; }
  fi
  echo "$mod"
}
