#!/usr/bin/env bash
# run.sh — runs the libFuzzer targets of a TG_FUZZ build over their seed
# corpora for SECONDS each and prints, per target, the executions, the
# coverage (libFuzzer's cov: edges and ft: features) and the corpus size.
# New inputs go to BUILD/fuzz-corpus/TARGET (the committed seeds in
# tests/fuzz/corpus stay as they are); a crash leaves its input in
# BUILD/fuzz-crashes/TARGET/ and makes the script exit 1: fix the bug, then
# add the input to tests/fuzz/corpus/TARGET/ so it stays fixed.
# Usage: bash tests/fuzz/run.sh BUILD SECONDS [TARGET...]   (`make fuzz`)
set -u
cd "$(dirname "$0")/../.."
B=${1:?usage: run.sh BUILD SECONDS [TARGET...]}
S=${2:?usage: run.sh BUILD SECONDS [TARGET...]}
shift 2
targets=("$@")
if [ ${#targets[@]} = 0 ]; then
  for t in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$t" .c)"); done
fi
fail=0
printf '%-22s %10s %8s %8s %7s  %s\n' target execs cov ft corpus result
for t in "${targets[@]}"; do
  bin="$B/$t"
  [ -x "$bin" ] || { echo "$t: not built ($bin)"; fail=1; continue; }
  work="$B/fuzz-corpus/$t" crash="$B/fuzz-crashes/$t/"
  mkdir -p "$work" "$crash"
  log="$B/$t.fuzz.log"
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a leak or a
  # runaway allocation; -max_len: archive members and bodies need room.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$bin" -max_total_time="$S" -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$crash" "$work" "tests/fuzz/corpus/$t" > "$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
  if [ $rc = 0 ]; then res=ok; else res="FAILED (exit $rc; $log, input in $crash)"; fail=1; fi
  printf '%-22s %10s %8s %8s %7s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$res"
  [ $rc = 0 ] || grep -E "ERROR|runtime error|SUMMARY" "$log" | head -5
done
exit $fail
