#!/usr/bin/env bash
# setup_npm.sh — installs the test-only npm packages from tests/package-lock.json
# (install scripts off: none of the packages we use needs one, and some would
# try to download binaries). Skipped when node_modules matches the lockfile.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
# Not `npm ci`: node-llama-cpp lists optional prebuilts for other platforms
# that the registry reachable here does not serve, so npm leaves them out of
# the lock and then `npm ci` refuses the lock as out of sync. `npm install`
# installs exactly the locked versions and skips the missing optional ones.
npm install --ignore-scripts --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
