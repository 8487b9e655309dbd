#!/usr/bin/env bash
# setup.sh — installs the Debian packages truthgpt needs, only those missing.
# Usage: scripts/setup.sh [--test] [--demo]   (--test adds test-only packages)
set -euo pipefail
want=(build-essential cmake pkg-config clang libopenblas-openmp-dev libdnnl-dev libjansson-dev libsimdjson-dev
      libmicrohttpd-dev libutf8proc-dev libarchive-dev libssl-dev fortunes fortunes-zh
      libsqlite3-dev libopenmpi-dev openmpi-bin)
for a in "$@"; do
  case "$a" in
    --test)
      want+=(valgrind python3 zip unzip chromium curl qemu-user)
      # Node.js may come from another source (with its own npm): only ask
      # Debian for it when no node is on PATH.
      command -v npm >/dev/null 2>&1 || want+=(nodejs npm) ;;
    --browser) want+=(chromium) ;;
    --torch) want+=(python3-torch) ;;
  esac
done
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
