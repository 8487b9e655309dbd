#!/usr/bin/env bash
# e2e_serve.sh — `truthgpt serve` end to end: makes a tiny checkpoint (tokenize
# + train a few steps), serves it on a free loopback port with an API key,
# then runs the official openai npm client (serve_client.mjs), raw-HTTP abuse
# (serve_bad.mjs), the chat page in headless Chromium (web_chat.mjs, screenshot
# in <build>/test-outputs/web_chat.png), and a SIGTERM drain: a running stream
# finishes, the process exits 0. Usage: tests/e2e_serve.sh path/to/truthgpt
set -euo pipefail
BIN=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUTDIR=$(dirname "$BIN")/test-outputs
mkdir -p "$OUTDIR"
TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -9 "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
T0=$(date +%s.%N)
phase() { awk -v a="$T0" -v b="$(date +%s.%N)" -v m="$1" 'BEGIN { printf "ok   %s (%.1fs)\n", m, b - a }'; }
fail() { echo "FAIL: $*" >&2; [ -f "$TMP/server.log" ] && tail -20 "$TMP/server.log" >&2; exit 1; }

if [ ! -d "$ROOT/tests/node_modules/openai" ] || [ ! -d "$ROOT/tests/node_modules/playwright-core" ]; then
  bash "$ROOT/tests/setup_npm.sh" || fail "npm test dependencies could not be installed (tests/setup_npm.sh)"
fi

# --- usage errors: exit 2 with the flag or path named
"$BIN" serve --help | grep -q -- "--api-key" || fail "serve --help does not list --api-key"
set +e
"$BIN" serve --port 1 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--model" "$TMP/err" || fail "serve without --model: exit $rc, $(cat "$TMP/err")"
"$BIN" serve --model "$TMP/nonexistent" --port 0 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q "nonexistent" "$TMP/err" || fail "serve --model MISSING: exit $rc, $(cat "$TMP/err")"
"$BIN" serve --model "$TMP" --parallel 0 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] || fail "serve --parallel 0: exit $rc"
set -e
echo "ok   usage errors exit 2 naming the flag or path"

# --- a tiny checkpoint: byte-level shards, 10 training steps
for i in $(seq 1 300); do
  echo "The sea is calm tonight, line $i. The tide is full and the moon lies fair upon the straits."
  echo "Come to the window, sweet is the night air; listen to the grating roar of pebbles."
done > "$TMP/text.txt"
"$BIN" tokenize --bytes "$TMP/text.txt" --out "$TMP/shards" >/dev/null
"$BIN" train --data "$TMP/shards" --out "$TMP/run" --layers 2 --heads 2 --dim 64 --ctx 256 --steps 10 --batch 2 \
  --eval-every 0 --warmup 2 --lr 3e-3 --threads 2 >"$TMP/train.log" 2>&1 || { cat "$TMP/train.log"; fail "training the test checkpoint"; }
phase "tiny checkpoint trained"

# --- serve it
CAP=256
KEY="test-key-$$"
TG_BIN=$BIN
. "$ROOT/tests/lib_serve.sh"
start_server() {
  tg_serve_start "$TMP/server.log" --model "$TMP/run" --api-key "$KEY" --parallel 4 --max-queue 24 \
    --max-tokens-cap $CAP --threads 2
}
start_server
echo "ok   serving on $BASE"

node "$ROOT/tests/serve_client.mjs" "$BASE" "$KEY" run || fail "openai client checks"
phase "openai client checks"
node "$ROOT/tests/serve_bad.mjs" "$BASE" "$KEY" $CAP || fail "bad-input checks"
phase "bad-input checks"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is missing: scripts/setup.sh --test installs it"
node "$ROOT/tests/web_chat.mjs" "$BASE" "$OUTDIR/web_chat.png" "$KEY" || fail "chat page checks"
[ -s "$OUTDIR/web_chat.png" ] || fail "no screenshot"
phase "chat page checks"

# --- SIGTERM drains: a running stream still ends with [DONE], then exit 0
curl -sN --max-time 120 -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":120,\"stream\":true,\"temperature\":1}" \
  "$BASE/v1/chat/completions" >"$TMP/drain.txt" &
CURL_PID=$!
for _ in $(seq 1 200); do grep -q '"content"' "$TMP/drain.txt" 2>/dev/null && break; sleep 0.05; done
grep -q '"content"' "$TMP/drain.txt" || fail "the drain test's stream did not start"
kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"; rc=$?
set -e
SERVER_PID=""
wait "$CURL_PID" || true
[ $rc -eq 0 ] || fail "serve exited $rc after SIGTERM (expected 0)"
tail -c 200 "$TMP/drain.txt" | grep -q 'data: \[DONE\]' || fail "the running stream was cut by SIGTERM: $(tail -c 300 "$TMP/drain.txt")"
grep -q "draining" "$TMP/server.log" || fail "no drain message"
curl -s --max-time 2 "$BASE/health" >/dev/null 2>&1 && fail "the server still answers after exiting"
echo "ok   SIGTERM: the running stream finished ([DONE]) and serve exited 0"
echo "e2e_serve: all checks passed (screenshot: $OUTDIR/web_chat.png)"
