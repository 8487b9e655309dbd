#!/usr/bin/env bash
# e2e_dist.sh — data-parallel training under mpirun (docs/distributed.md):
#  - 2 ranks with batch B make the same run as 1 process with --accum 2
#    (shuffle on and off; with and without --zero 1): every step's loss and
#    the validation loss within 1e-6 relative, final weights and AdamW
#    moments within 1e-5 absolute (the gradients are summed in another order:
#    a rank's own gradient plus the other's, against += in one process);
#  - rank 0 alone writes: the same files as the single-process run's;
#  - cross-resume (ZeRO-1 checkpoints hold the whole optimizer state):
#    2 ranks -> checkpoint -> 1 process (--accum 2) continues as the 2-rank
#    run did; 1 process -> 2 ranks likewise; 2 ranks -> 3 ranks continues as
#    1 process with --accum 3 resumed from the same checkpoint.
# Open MPI as root needs --allow-run-as-root (and the two OMPI_ALLOW_* env
# variables); --oversubscribe lets 3 ranks share 2 cores.
# Exits 77 (skipped) without mpirun; a build without MPI must refuse to run
# as 2 ranks (checked, then skipped).
# Usage: tests/e2e_dist.sh path/to/truthgpt
set -u
TG=${1:?usage: e2e_dist.sh path/to/truthgpt}
TG=$(cd "$(dirname "$TG")" && pwd)/$(basename "$TG")
CMP=$(cd "$(dirname "$0")" && pwd)/dist_compare.py
PY=/usr/bin/python3
W=$(mktemp -d /tmp/tg_e2e_dist_XXXXXX)
trap 'rm -rf "$W"' EXIT
. "$(dirname "$CMP")/dist_setup.sh"

ARGS=(--preset tiny --layers 2 --heads 2 --dim 64 --ctx 32 --batch 4 --steps 6 --warmup 2 --lr 2e-3
      --data data --val-data valdata --eval-every 3 --eval-batches 3 --save-every 3 --seed 7 --threads 1)

RTOL=1e-6
ATOL=1e-5
same_run() { # same_run DIR_A DIR_B: metrics, weights, moments of the last checkpoint
  $PY "$CMP" metrics "$1/metrics.jsonl" "$2/metrics.jsonl" 1 6 $RTOL || fail "$1 vs $2: losses"
  $PY "$CMP" tensors "$1/checkpoint-6/model.safetensors" "$2/checkpoint-6/model.safetensors" $ATOL || fail "$1 vs $2: weights"
  $PY "$CMP" tensors "$1/checkpoint-6/optimizer.safetensors" "$2/checkpoint-6/optimizer.safetensors" $ATOL ||
    fail "$1 vs $2: optimizer state"
}

for shuffle in on off; do
  "$TG" train "${ARGS[@]}" --shuffle $shuffle --accum 2 --out one-$shuffle > one-$shuffle.log 2>&1 ||
    { cat one-$shuffle.log; fail "1 process, --accum 2, shuffle $shuffle"; }
  for zero in 0 1; do
    d=two-$shuffle-z$zero
    "${MPI[@]}" -np 2 "$TG" train "${ARGS[@]}" --shuffle $shuffle --zero $zero --out $d > $d.log 2>&1 ||
      { cat $d.log; fail "2 ranks, shuffle $shuffle, zero $zero"; }
    grep -q "data parallel: 2 ranks" $d.log || { cat $d.log; fail "$d: not a 2-rank job"; }
    echo "2 ranks vs 1 process --accum 2 (shuffle $shuffle, --zero $zero):"
    same_run one-$shuffle $d
    # Rank 0 alone wrote, and the same files as one process.
    diff <(cd one-$shuffle && find . -type f | sort) <(cd $d && find . -type f | sort) ||
      fail "$d: other files than the single-process run's"
    [ "$(grep -c '"loss"' $d/metrics.jsonl)" = 6 ] || fail "$d: metrics.jsonl has $(grep -c '"loss"' $d/metrics.jsonl) step lines"
    [ "$(grep -c 'val loss' $d.log)" = 2 ] || fail "$d: the log is not rank 0's alone"
  done
done

# continue FROM TO: a new run directory TO holding FROM's checkpoint-3 only.
continue_from() {
  rm -rf "$2"; mkdir "$2"
  cp -r "$1/checkpoint-3" "$1/metrics.jsonl" "$1/manifest.json" "$2/"
}
# 2 ranks (ZeRO-1) -> 1 process with --accum 2.
continue_from two-on-z1 r21
"$TG" train "${ARGS[@]}" --accum 2 --resume --out r21 > r21.log 2>&1 || { cat r21.log; fail "2 -> 1 resume"; }
grep -q "resuming from" r21.log || fail "2 -> 1 did not resume"
echo "2 ranks -> 1 process:"; same_run two-on-z1 r21
# 1 process -> 2 ranks (ZeRO-1).
continue_from one-on r12
"${MPI[@]}" -np 2 "$TG" train "${ARGS[@]}" --accum 1 --zero 1 --resume --out r12 > r12.log 2>&1 || { cat r12.log; fail "1 -> 2 resume"; }
echo "1 process -> 2 ranks:"; same_run one-on r12
# 2 ranks -> 3 ranks (ZeRO-1), against 1 process --accum 3 from the same checkpoint.
continue_from two-on-z1 r23
continue_from two-on-z1 r13
"${MPI[@]}" -np 3 "$TG" train "${ARGS[@]}" --zero 1 --resume --out r23 > r23.log 2>&1 || { cat r23.log; fail "2 -> 3 resume"; }
"$TG" train "${ARGS[@]}" --accum 3 --resume --out r13 > r13.log 2>&1 || { cat r13.log; fail "2 -> 1 (--accum 3) resume"; }
echo "2 ranks -> 3 ranks vs -> 1 process --accum 3:"; same_run r13 r23
$PY "$CMP" metrics two-on-z1/metrics.jsonl r23/metrics.jsonl 1 3 0 || fail "2 -> 3 lost the first 3 steps' log"
# What must not run data parallel, or with a bad flag, says so.
"${MPI[@]}" -np 2 "$TG" finetune --model one-on --chat none.jsonl --out ft > ft.log 2>&1 && fail "finetune ran under mpirun -np 2"
grep -q "finetune does not run data parallel" ft.log || { cat ft.log; fail "finetune under mpirun: no message"; }
[ -e ft ] && fail "finetune under mpirun wrote ft/"
"$TG" train "${ARGS[@]}" --zero 2 --out bad > bad.log 2>&1; rc=$?
[ $rc = 2 ] && grep -q -- "--zero must be 0 or 1" bad.log || { cat bad.log; fail "--zero 2: exit $rc"; }
echo "PASS e2e_dist"
