#!/usr/bin/env bash
# e2e_grounding.sh — `truthgpt serve --index`: a tiny byte-level model trained
# on text full of citation markers ([1], [2]) so that its answers cite; an
# index of a few posts; then tests/grounding_client.mjs (the official openai
# client and fetch) and tests/web_grounding.mjs (the chat page in headless
# Chromium, screenshot in <build>/test-outputs/web_grounding.png) against the
# server on a free loopback port; a server
# without an index answers 404 on /v1/search and 400 to grounding; a bad
# --index exits 2. Usage: tests/e2e_grounding.sh path/to/truthgpt
set -euo pipefail
BIN=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUTDIR=$(dirname "$BIN")/test-outputs
mkdir -p "$OUTDIR"
TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$TMP/server.log" ] && tail -20 "$TMP/server.log" >&2; exit 1; }
[ -d "$ROOT/tests/node_modules/openai" ] || bash "$ROOT/tests/setup_npm.sh" || fail "npm test dependencies (tests/setup_npm.sh)"

cat >"$TMP/posts.jsonl" <<'P'
{"id":"p1","text":"Sourdough starter needs flour and water every day.","author":"@carol","created_at":"2024-01-08T10:00:00Z","url":"https://x.com/carol/status/501"}
{"id":"p2","text":"The lighthouse keeper waved at our ferry.","author":"@dave@social.example","created_at":"2024-03-12T08:00:00Z","url":"https://social.example/@dave/9"}
{"id":"p3","text":"Bread rises slowly in a cold kitchen, sourdough bread most of all.","author":"@erin"}
{"id":"p4","text":"灯塔的光照着渡船。","author":"@li","created_at":"2023-05-01"}
{"id":"p5","text":"Tea or coffee with the bread in the morning?","author":"@carol","created_at":"2024-02-01T07:00:00Z","url":"https://x.com/carol/status/502"}
P
"$BIN" index "$TMP/posts.jsonl" --out "$TMP/posts.db" --quiet >/dev/null

set +e
"$BIN" serve --model "$TMP" --index "$TMP/missing.db" --port 0 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q "missing.db" "$TMP/err" || fail "serve --index MISSING: exit $rc, $(cat "$TMP/err")"
"$BIN" serve --model "$TMP" --ground-top-k 3 --port 0 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--index" "$TMP/err" || fail "serve --ground-top-k without --index: exit $rc, $(cat "$TMP/err")"
set -e
echo "ok   serve --index MISSING and --ground-top-k without an index exit 2"

for i in $(seq 1 400); do
  echo "The tide is full [1] and the moon lies fair [2] upon the straits [1]. Sourdough bread [1] rises slowly [2]."
done >"$TMP/text.txt"
"$BIN" tokenize --bytes "$TMP/text.txt" --out "$TMP/shards" >/dev/null
"$BIN" train --data "$TMP/shards" --out "$TMP/run" --layers 2 --heads 2 --dim 64 --ctx 1024 --steps 60 --batch 2 \
  --eval-every 0 --warmup 5 --lr 3e-3 --seed 1 --threads 2 >"$TMP/train.log" 2>&1 || { cat "$TMP/train.log"; fail "training"; }
echo "ok   tiny citing model trained"

KEY="k-$$"
TG_BIN=$BIN
. "$ROOT/tests/lib_serve.sh"
start_server() { tg_serve_start "$TMP/server.log" --model "$TMP/run" --api-key "$KEY" --parallel 2 --threads 2 "$@"; }
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" || fail "server exit status $?"; SERVER_PID=""; }

start_server --index "$TMP/posts.db"
node "$ROOT/tests/grounding_client.mjs" "http://127.0.0.1:$PORT" "$KEY" run || fail "grounding_client.mjs"
if [ -x /usr/bin/chromium ] && [ -d "$ROOT/tests/node_modules/playwright-core" ]; then
  node "$ROOT/tests/web_grounding.mjs" "http://127.0.0.1:$PORT" "$OUTDIR/web_grounding.png" "$KEY" || fail "web_grounding.mjs"
  [ -s "$OUTDIR/web_grounding.png" ] || fail "no screenshot"
else
  echo "skip the chat page (no /usr/bin/chromium or playwright-core)"
fi
stop_server

start_server
code=$(curl -s -o "$TMP/out" -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/search?q=bread")
[ "$code" = 404 ] && grep -q "no search index" "$TMP/out" || fail "/v1/search without --index: $code $(cat "$TMP/out")"
code=$(curl -s -o "$TMP/out" -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/chat/completions" \
  -d '{"messages":[{"role":"user","content":"bread?"}],"max_tokens":4,"grounding":{"index":true}}')
[ "$code" = 400 ] && grep -q -- "--index" "$TMP/out" || fail "grounding without an index: $code $(cat "$TMP/out")"
stop_server
echo "ok   without --index: /v1/search 404, grounding 400"
echo "e2e_grounding: all passed"
