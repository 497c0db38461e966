#!/usr/bin/env bash
# Installs what streamkit needs to build and test, from Debian 12 packages
# (python3: the end-to-end tests check JSON output with it; node and npm: the Parquet
# test reads our files back with DuckDB from npm; libsnappy/zlib: Parquet and
# firehose compression).
# Idempotent: installs only packages that are missing, and runs `apt-get update`
# only when something is missing. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git python3
  libcli11-dev libsimdjson-dev libfmt-dev libzstd-dev liburing-dev doctest-dev
  libsnappy-dev zlib1g-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere (e.g. a machine image); Debian's only when absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ "${#missing[@]}" -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "streamkit: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
