#!/usr/bin/env bash
# compare_train.sh — truthgpt and PyTorch training the same GPT-2 on the same
# config, one after the other in one invocation, and a side-by-side table.
#
#   bench/compare_train.sh [PRESET...]        (default: small)
#   env: DTYPES="fp32 bf16"  STEPS=10  PT_STEPS=$STEPS  THREADS=2
#        TRUTHGPT=build/truthgpt  PYTHON=/usr/bin/python3
#
# Both sides run with OMP_WAIT_POLICY=PASSIVE and the same thread count (see
# bench/README.md for why this is PyTorch's best setting here). The machine's
# load average is printed beside each row: on a shared machine compare the
# ratios of one run, not figures across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
TRUTHGPT=${TRUTHGPT:-build/truthgpt}
PYTHON=${PYTHON:-/usr/bin/python3}
DTYPES=${DTYPES:-fp32 bf16}
STEPS=${STEPS:-10}
PT_STEPS=${PT_STEPS:-$STEPS}
THREADS=${THREADS:-2}
PRESETS=("$@")
[ ${#PRESETS[@]} -eq 0 ] && PRESETS=(small)
[ -x "$TRUTHGPT" ] || { echo "compare_train.sh: $TRUTHGPT not built (make build)" >&2; exit 2; }
"$PYTHON" -c 'import torch' 2>/dev/null || { echo "compare_train.sh: $PYTHON has no torch (apt-get install python3-torch)" >&2; exit 2; }
export OMP_WAIT_POLICY=PASSIVE

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rows=()
for p in "${PRESETS[@]}"; do
  for d in $DTYPES; do
    load1=$(cut -d' ' -f1 /proc/loadavg)
    echo "== truthgpt $p $d (load $load1)" >&2
    "$TRUTHGPT" bench train --preset "$p" --dtype "$d" --steps "$STEPS" --threads "$THREADS" --json | tail -1 > "$tmp/ours.json"
    load2=$(cut -d' ' -f1 /proc/loadavg)
    echo "== pytorch $p $d (load $load2)" >&2
    # Some machines set OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE to work around old
    # OpenBLAS bugs; they force slower kernels (Haswell's AVX2 here, measured
    # 916 vs 1308 tok/s on small fp32). Unset both for PyTorch's best setting.
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PYTHON" bench/train_pytorch.py --preset "$p" --dtype "$d" --steps "$PT_STEPS" --threads "$THREADS" --json | tail -1 > "$tmp/pt.json"
    rows+=("$("$PYTHON" - "$tmp/ours.json" "$tmp/pt.json" "$load1" "$load2" <<'PY'
import json, sys
o = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))
print(f"{o['preset']:<7} {o['dtype']:<5} {o['tok_per_s']:>10.0f} {100*o['mfu']:>6.1f}% {o['peak_gflops']:>8.1f} "
      f"{o['peak_rss_mb']:>7.0f}/{o['expected_mb']:<6.0f} {o['loss']:>7.3f} | {t['tok_per_s']:>10.0f} {t['peak_rss_mb']:>8.0f} "
      f"{t['loss']:>7.3f} | {o['tok_per_s']/t['tok_per_s']:>5.2f}x {o['tok_per_cpu_s']/t['tok_per_cpu_s']:>5.2f}x  {sys.argv[3]}/{sys.argv[4]}")
PY
)")
  done
done
echo
echo "                      truthgpt                                          |        pytorch              | ours/pt: tok/s  tok/CPU-s  load"
echo "preset  dtype      tok/s    MFU  peak GF/s  RSS/expected MB   loss |      tok/s   RSS MB    loss |                        (ours/pt)"
for r in "${rows[@]}"; do echo "$r"; done
