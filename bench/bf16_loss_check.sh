#!/usr/bin/env bash
# bf16_loss_check.sh — bf16 matrix multiplies must not cost accuracy: trains
# the tiny preset for 500 steps in fp32 and in bf16 on the same synthetic
# tokens (same seed, same weights) and fails unless bf16's final loss (mean
# of the last 10 steps) is within 2% of fp32's.
#
#   bench/bf16_loss_check.sh [TRUTHGPT]      (default build/truthgpt)
#   env: STEPS=500 BATCH=4 CTX=64 VOCAB=512 LR=1e-3 TOL=0.02 THREADS=0 (all)
# The vocabulary is small so that 500 steps of 256 tokens see each of the
# synthetic stream's 4*VOCAB transitions often enough to learn them.
# Exit 0 within tolerance, 1 outside, 2 on a usage or run error.
set -euo pipefail
cd "$(dirname "$0")/.."
TRUTHGPT=${1:-${TRUTHGPT:-build/truthgpt}}
STEPS=${STEPS:-500} BATCH=${BATCH:-4} CTX=${CTX:-64} VOCAB=${VOCAB:-512} LR=${LR:-1e-3} TOL=${TOL:-0.02}
THREADS=${THREADS:-0}
# Idle OpenMP threads sleep instead of spinning: on a shared machine a
# spinning thread holds a core another thread of ours is waiting for.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
[ -x "$TRUTHGPT" ] || { echo "bf16_loss_check.sh: $TRUTHGPT not built" >&2; exit 2; }
run() {
  "$TRUTHGPT" bench train --preset tiny --dtype "$1" --steps "$STEPS" --warmup 0 --batch "$BATCH" --ctx "$CTX" \
    --vocab "$VOCAB" --threads "$THREADS" --lr "$LR" --seed 7 --json | tail -1 | sed -n 's/.*"loss": \([0-9.eE+-]*\).*/\1/p'
}
l32=$(run fp32); l16=$(run bf16)
[ -n "$l32" ] && [ -n "$l16" ] || { echo "bf16_loss_check.sh: no loss in the output" >&2; exit 2; }
awk -v a="$l32" -v b="$l16" -v tol="$TOL" -v steps="$STEPS" -v v="$VOCAB" 'BEGIN {
  d = (b - a) / a; if (d < 0) d = -d;
  printf "tiny after %d steps: fp32 loss %.4f, bf16 loss %.4f, relative difference %.2f%% (limit %.0f%%)\n", steps, a, b, 100*d, 100*tol;
  if (a == b) { print "FAIL: identical losses: the model does not run its matrix multiplies in bf16"; exit 1 }
  if (!(a < 0.8 * log(v))) { printf "FAIL: fp32 did not learn (loss should fall well below ln V = %.2f)\n", log(v); exit 1 }
  if (!(d <= tol)) { print "FAIL: bf16 loss differs by more than the limit"; exit 1 }
  print "OK" }'
