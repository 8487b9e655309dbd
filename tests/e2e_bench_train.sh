#!/usr/bin/env bash
# e2e_bench_train.sh — `truthgpt bench train` runs a real (tiny) training
# benchmark in both dtypes and its --json last line carries the documented
# keys with sane values; bad flags exit 2 naming the flag. $1: the program.
set -euo pipefail
TG=${1:?usage: e2e_bench_train.sh path/to/truthgpt}
fail() { echo "FAIL: $*" >&2; exit 1; }
for d in fp32 bf16; do
  out=$("$TG" bench train --preset tiny --dtype "$d" --batch 2 --ctx 32 --vocab 300 --steps 2 --warmup 1 --json 2>/dev/null)
  last=$(printf '%s\n' "$out" | tail -1)
  /usr/bin/python3 - "$last" "$d" <<'PY' || fail "bad --json line for $d: $last"
import json, sys
o = json.loads(sys.argv[1])
for k in ("preset", "dtype", "tok_per_s", "mfu", "peak_gflops", "peak_rss_mb"):
    assert k in o, k
assert o["preset"] == "tiny" and o["dtype"] == sys.argv[2], o
assert o["tok_per_s"] > 0 and o["peak_gflops"] > 1 and 0 < o["mfu"], o
assert o["peak_rss_mb"] > 1 and o["expected_mb"] > 1, o
assert 0 < o["loss"] < 10, o   # ln(300) = 5.7 at the start
PY
done
set +e
msg=$("$TG" bench train --dtype fp16 2>&1); rc=$?
set -e
[ "$rc" -eq 2 ] || fail "--dtype fp16 exited $rc, expected 2"
grep -q -- "--dtype" <<<"$msg" || fail "--dtype error does not name the flag: $msg"
set +e
msg=$("$TG" bench train --preset nope 2>&1); rc=$?
set -e
[ "$rc" -eq 2 ] || fail "--preset nope exited $rc, expected 2"
"$TG" bench train --help | grep -q -- "--preset" || fail "--help lacks --preset"
echo "e2e_bench_train: OK"
