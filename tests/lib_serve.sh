# lib_serve.sh — sourced by the end-to-end tests that run `truthgpt serve`.
# tg_serve_start LOG ARGS...: starts "$TG_BIN" serve ARGS... --port 0 in the
# background with its output in LOG, waits (up to 30 s) for the port it
# reports, and sets SERVER_PID, PORT and BASE. Calls the script's fail()
# if the server exits or never reports a port.
tg_serve_start() {
  local log=$1
  shift
  "$TG_BIN" serve --port 0 "$@" > "$log" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 300); do
    PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$log")
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2> /dev/null || { cat "$log" >&2; fail "the server exited at start"; }
    sleep 0.1
  done
  [ -n "$PORT" ] || fail "the server did not report its port"
  BASE="http://127.0.0.1:$PORT"
}
