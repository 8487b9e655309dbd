#!/usr/bin/env bash
# dist_train.sh — data parallel against threads on the same cores:
# `mpirun -np 2 truthgpt train --threads 1` against `truthgpt train
# --threads 2 --accum 2` (the same global batch, the same run: see
# tests/e2e_dist.sh), one after the other in one invocation. Prints each
# one's tokens/s (median of the steps after the first 3), their ratio, and
# the share of rank 0's run spent waiting on collectives.
#
#   bench/dist_train.sh            env: PRESET=small STEPS=20 BATCH=8 CTX=256
#                                       TRUTHGPT=build/truthgpt
# Byte-level tokens (V=257) of the fortunes files. On a shared machine compare
# the ratio of one invocation, not figures across runs (the load average is
# printed).
set -euo pipefail
cd "$(dirname "$0")/.."
TRUTHGPT=$(realpath "${TRUTHGPT:-build/truthgpt}")
PRESET=${PRESET:-small} STEPS=${STEPS:-20} BATCH=${BATCH:-8} CTX=${CTX:-256}
command -v mpirun >/dev/null || { echo "dist_train.sh: no mpirun (scripts/setup.sh)" >&2; exit 2; }
MPI=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && { MPI+=(--allow-run-as-root); export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; }
export OMP_WAIT_POLICY=PASSIVE
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat /usr/share/games/fortunes/{science,people,computers} > "$tmp/train.txt"
"$TRUTHGPT" tokenize --bytes "$tmp/train.txt" --out "$tmp/data" > /dev/null
ARGS=(--preset "$PRESET" --ctx "$CTX" --batch "$BATCH" --steps "$STEPS" --warmup 2 --data "$tmp/data" --eval-every 0
      --eval-batches 0 --save-every 0)
median_tps() { # median tok_per_s of steps > 3
  grep '"loss"' "$1" | sed -E 's/.*"step":([0-9]+).*"tok_per_s":([0-9.]+).*/\1 \2/' | awk '$1 > 3 {print $2}' | sort -g |
    awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
load=$(cut -d' ' -f1 /proc/loadavg)
"$TRUTHGPT" train "${ARGS[@]}" --threads 2 --accum 2 --out "$tmp/threads" > "$tmp/threads.log" 2>&1
t=$(median_tps "$tmp/threads/metrics.jsonl")
"${MPI[@]}" -np 2 "$TRUTHGPT" train "${ARGS[@]}" --threads 1 --out "$tmp/ranks" > "$tmp/ranks.log" 2>&1
r=$(median_tps "$tmp/ranks/metrics.jsonl")
wait_line=$(grep "waited" "$tmp/ranks.log" | tail -1)
echo "preset $PRESET, batch $BATCH x $CTX, $STEPS steps, global batch 2 micro-batches (load average $load at start)"
printf "1 process x 2 threads (--accum 2): %10.1f tok/s\n" "$t"
printf "2 ranks x 1 thread (mpirun):       %10.1f tok/s\n" "$r"
awk -v a="$r" -v b="$t" 'BEGIN {printf "ratio ranks/threads: %.3f\n", a / b}'
echo "${wait_line#*: }"
