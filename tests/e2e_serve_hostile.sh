#!/usr/bin/env bash
# e2e_serve_hostile.sh — `truthgpt serve` against smuggling and starvation
# (tests/serve_hostile.mjs, raw sockets to 127.0.0.1): a tiny checkpoint is
# trained, served with --max-connections 8 --max-connections-per-client 4
# --request-timeout 3, and the script's cases run against it; the flags'
# bad values exit 2. About 30 s.
# Usage: tests/e2e_serve_hostile.sh path/to/truthgpt
set -u
BIN=${1:?usage: e2e_serve_hostile.sh path/to/truthgpt}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/tg_e2e_serve_hostile_XXXXXX)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$TMP/server.log" ] && tail -20 "$TMP/server.log" >&2; exit 1; }
command -v node >/dev/null || fail "node is missing (scripts/setup.sh --test)"

for bad in "--max-connections 0" "--max-connections-per-client -1" "--request-timeout 0" \
           "--max-connections 4 --max-connections-per-client 5"; do
  # shellcheck disable=SC2086
  "$BIN" serve --model "$TMP" $bad 2>"$TMP/err"; rc=$?
  flag=${bad%% *}; [ "${bad#*per-client}" != "$bad" ] && flag=--max-connections-per-client
  [ $rc -eq 2 ] && grep -q -- "$flag" "$TMP/err" || fail "serve $bad: exit $rc, $(cat "$TMP/err")"
done
echo "ok   bad limit flags exit 2 naming the flag"

head -c 20000 /usr/share/games/fortunes/science > "$TMP/t.txt" 2>/dev/null || fail "fortunes missing (scripts/setup.sh)"
"$BIN" tokenize --bytes "$TMP/t.txt" --out "$TMP/data" >/dev/null || fail "tokenize"
"$BIN" train --data "$TMP/data" --out "$TMP/run" --layers 1 --heads 2 --dim 32 --ctx 128 --steps 2 --batch 2 \
  --eval-every 0 --warmup 1 --threads 1 >"$TMP/train.log" 2>&1 || { cat "$TMP/train.log"; fail "training"; }

TG_BIN=$BIN
. "$ROOT/tests/lib_serve.sh"
tg_serve_start "$TMP/server.log" --model "$TMP/run" --parallel 2 --threads 1 --max-connections 8 \
  --max-connections-per-client 4 --request-timeout 3
timeout 120 node "$ROOT/tests/serve_hostile.mjs" "http://127.0.0.1:$PORT" || fail "hostile HTTP checks"
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"; rc=$?
SERVER_PID=""
[ $rc -eq 0 ] || fail "serve exited $rc after SIGTERM"
echo "e2e_serve_hostile: OK"
