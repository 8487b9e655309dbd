#!/usr/bin/env bash
# e2e_plan.sh — `truthgpt plan` (docs/scaling.md): the table has a row for
# each of 8, 512 and 10,000 GPUs at 124m, 1.5b and 7b; one configuration in
# detail prints its assumptions and the figures of tests/test_plan.c's
# hand-worked case (GPT-2 small: 1.24e+08 parameters, 8.55e+08 FLOPs a
# token); bad input exits 2 naming the flag. (The arithmetic itself:
# tests/test_plan.c.)
# Usage: tests/e2e_plan.sh path/to/truthgpt
set -u
TG=${1:?usage: e2e_plan.sh path/to/truthgpt}
fail() { echo "FAIL: $*" >&2; exit 1; }
out=$("$TG" plan) || fail "plan exited $?"
rows=$(echo "$out" | grep -Ec '^(124m|1\.5b|7b) +(8|512|10000) ')
[ "$rows" = 9 ] || { echo "$out"; fail "the table has $rows rows, not 9"; }
echo "$out" | grep -q "assumptions" || fail "the table has no assumptions"
d=$("$TG" plan --gpus 8 --model 124m --gpu h100) || fail "plan --gpus 8 exited $?"
echo "$d" | grep -q "1.24e+08 parameters, 8.55e+08 FLOPs a token; 8 GPUs" || { echo "$d"; fail "124m figures"; }
echo "$d" | grep -q "GPU h100: 989 TFLOP/s" || { echo "$d"; fail "the GPU's assumptions"; }
echo "$d" | grep -q "(NVLink)" || { echo "$d"; fail "8 GPUs are not inside one node"; }
d=$("$TG" plan --gpus 10000 --model 7b --gpu h200 --net ib400) || fail "plan 10000 7b exited $?"
echo "$d" | grep -q "(ib400)" || { echo "$d"; fail "10000 GPUs not on the network"; }
echo "$d" | grep -q "tensor/pipeline parallelism" || { echo "$d"; fail "no word on the critical batch at 10000 GPUs"; }
for bad in "--gpu v100" "--net carrier-pigeon" "--model 3b" "--gpus -1" "--mfu 0" "--mfu 2"; do
  # shellcheck disable=SC2086
  msg=$("$TG" plan --gpus 8 $bad 2>&1 >/dev/null); rc=$?
  [ $rc = 2 ] || fail "plan $bad exited $rc, not 2"
  flag=${bad%% *}
  echo "$msg" | grep -q -- "$flag" || fail "plan $bad: the message does not name $flag: $msg"
done
"$TG" plan --help | grep -q -- "--gpus N" || fail "plan --help"
echo "PASS e2e_plan"
