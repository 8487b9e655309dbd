#!/usr/bin/env bash
# gpu-check.sh — everything that needs an NVIDIA GPU, in one run from a fresh
# checkout, within 8 minutes: build with CUDA, the op conformance test (the
# CUDA backend against the CPU backend), whole-model training steps and
# greedy generation CPU vs GPU, --device on every command, checkpoints
# resumed across devices, and the GPU benchmarks (bench train GPT-2 124M at
# T=1024 in bf16, bench generate). Prints ONE JSON object on stdout (progress
# goes to stderr); exits 0 when every stage passed, 1 otherwise.
#
# Made to run right the first time on a machine that may be lent for only a
# few minutes: nothing hangs (every stage has a timeout, and stages that no
# longer fit in the budget are reported as skipped), every failure is in the
# JSON with the last lines of its log (the conformance test prints the op,
# the shapes and the first mismatching values), and the logs stay in
# $GPU_CHECK_LOGS (default build-gpu/gpu-check) for a second look.
# Without a GPU it still configures and builds, then reports each GPU stage
# as skipped with the reason (that is what was checked before any GPU ran).
#
# Usage: scripts/gpu-check.sh            (from the repository root or anywhere)
#   GPU_CHECK_BUDGET=480   seconds for the whole run
#   GPU_CHECK_JOBS=N       build jobs (default: all cores)
#   GPU_CHECK_QUICK=1      skip the benchmarks
#   GPU_CHECK_DEVICE=cpu   a dry run of this script's own logic on a machine
#                          without a GPU: every stage with --device cpu (and
#                          the tiny preset for the benchmarks); proves nothing
#                          about CUDA
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=$ROOT/build-gpu
LOGS=${GPU_CHECK_LOGS:-$BUILD/gpu-check}
BUDGET=${GPU_CHECK_BUDGET:-480}
JOBS=${GPU_CHECK_JOBS:-$(nproc 2>/dev/null || echo 4)}
QUICK=${GPU_CHECK_QUICK:-0}
DEV=${GPU_CHECK_DEVICE:-cuda}
mkdir -p "$LOGS" || exit 1
T0=$(date +%s)
STAGES=()   # JSON objects, one a stage
FIG=()      # "key": value pairs of figures
ALL_OK=1
GPU_OK=0
GPU_WHY=""

elapsed() { echo $(($(date +%s) - T0)); }
say() { echo "gpu-check [$(elapsed)s] $*" >&2; }

# A JSON string: backslashes, quotes, newlines, tabs escaped; other control bytes dropped.
json_str() {
  local s
  s=$(printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037')
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/}
  s=${s//$'\n'/\\n}
  printf '"%s"' "$s"
}

# record NAME OK(0|1|skip) RC SECONDS DETAIL [LOG]
record() {
  local name=$1 ok=$2 rc=$3 secs=$4 detail=$5 log=${6:-} tail="" okj
  case $ok in
    1) okj=true ;;
    skip) okj=null ;;
    *) okj=false; ALL_OK=0 ;;
  esac
  if [ "$ok" != 1 ] && [ -n "$log" ] && [ -f "$log" ]; then tail=$(tail -n 25 "$log"); fi
  STAGES+=("{\"stage\": $(json_str "$name"), \"ok\": $okj, \"rc\": $rc, \"seconds\": $secs, \"detail\": $(json_str "$detail")$([ -n "$tail" ] && printf ', "log_tail": %s' "$(json_str "$tail")")}")
  local word=FAILED
  [ "$ok" = 1 ] && word=ok
  [ "$ok" = skip ] && word=skipped
  say "$name: $word ($detail)"
}

# run NAME TIMEOUT LOG CMD...: runs with a timeout (and a kill 10 s later); sets RC and SECS
run() {
  local name=$1 to=$2 log=$3 t
  shift 3
  t=$(date +%s)
  say "$name (timeout ${to}s): $*"
  timeout -k 10 "$to" "$@" > "$log" 2>&1
  RC=$?
  SECS=$(($(date +%s) - t))
  if [ $RC = 124 ] || [ $RC = 137 ]; then echo "gpu-check: $name timed out after ${to}s" >> "$log"; fi
  return 0
}

# fits NEED_SECONDS: true while the budget has room for a stage that long
fits() { [ $(($(elapsed) + $1)) -le "$BUDGET" ]; }
# stage_or_skip NAME NEED: false (and recorded as skipped) when no GPU or no time
can_run() {
  local name=$1 need=$2
  if [ "$GPU_OK" != 1 ]; then record "$name" skip 0 0 "no GPU: $GPU_WHY"; return 1; fi
  if ! fits "$need"; then record "$name" skip 0 0 "skipped: $(elapsed)s of the ${BUDGET}s budget used"; return 1; fi
  return 0
}

finish() {
  local s="" f="" i
  for i in "${!STAGES[@]}"; do s+="${s:+, }${STAGES[$i]}"; done
  for i in "${!FIG[@]}"; do f+="${f:+, }${FIG[$i]}"; done
  local ok=false
  [ "$ALL_OK" = 1 ] && [ "$GPU_OK" = 1 ] && ok=true
  local out
  out="{\"ok\": $ok, \"gpu\": $(json_str "${GPU_NAME:-none}"), \"gpu_present\": $([ "$GPU_OK" = 1 ] && [ "$DEV" != cpu ] && echo true || echo false), \"dry_run\": $([ "$DEV" = cpu ] && echo true || echo false), \"commit\": $(json_str "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"), \"elapsed_s\": $(elapsed), \"budget_s\": $BUDGET, \"figures\": {$f}, \"stages\": [$s]}"
  printf '%s\n' "$out" > "$LOGS/summary.json"
  printf '%s\n' "$out"
  [ "$ok" = true ] && exit 0
  exit 1
}
trap 'record interrupted 0 130 0 "interrupted"; finish' INT TERM

# ------------------------------------------------------------ the machine
GPU_NAME=""
if [ "$DEV" = cpu ]; then
  GPU_OK=1
  GPU_NAME="none: a dry run on the CPU (GPU_CHECK_DEVICE=cpu)"
  record gpu 1 0 0 "$GPU_NAME"
elif command -v nvidia-smi > /dev/null; then
  run nvidia-smi 20 "$LOGS/nvidia-smi.log" nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
    --format=csv,noheader
  if [ $RC = 0 ] && [ -s "$LOGS/nvidia-smi.log" ]; then
    GPU_OK=1
    GPU_NAME=$(head -1 "$LOGS/nvidia-smi.log")
    record gpu 1 0 "$SECS" "$GPU_NAME"
  else
    GPU_WHY="nvidia-smi failed (rc $RC): $(head -1 "$LOGS/nvidia-smi.log")"
    record gpu skip "$RC" "$SECS" "$GPU_WHY" "$LOGS/nvidia-smi.log"
  fi
else
  GPU_WHY="no nvidia-smi on PATH (no NVIDIA driver)"
  record gpu skip 0 0 "$GPU_WHY"
fi

# ------------------------------------------------------------ build
run configure 120 "$LOGS/configure.log" cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release
if [ $RC != 0 ]; then
  record configure 0 $RC "$SECS" "cmake failed" "$LOGS/configure.log"
  finish
fi
if ! grep -q "✓ CUDA" "$LOGS/configure.log"; then
  record configure 0 1 "$SECS" "$(grep -m1 "✗ CUDA" "$LOGS/configure.log" || echo "no CUDA line")" "$LOGS/configure.log"
  finish
fi
record configure 1 0 "$SECS" "$(grep -m1 "✓ CUDA" "$LOGS/configure.log" | sed 's/^-- //')"
run build 300 "$LOGS/build.log" cmake --build "$BUILD" -j "$JOBS"
if [ $RC != 0 ]; then
  record build 0 $RC "$SECS" "build failed" "$LOGS/build.log"
  finish
fi
record build 1 0 "$SECS" "$JOBS jobs"
FIG+=("\"build_s\": $SECS")
TG=$BUILD/truthgpt

# ------------------------------------------------------------ conformance: every op, cuda vs the CPU
if can_run conformance 90; then
  run conformance 90 "$LOGS/test_backend.log" "$BUILD/test_backend"
  if [ $RC = 0 ] && grep -q "^backend $DEV (" "$LOGS/test_backend.log"; then
    n=$(sed -n "/^backend $DEV (/,\$p" "$LOGS/test_backend.log" | grep -c " ok$")
    record conformance 1 0 "$SECS" "$n $DEV op checks within tolerance"
  else
    record conformance 0 $RC "$SECS" "$(grep -m1 -E "FAIL|SKIPPED|check failed" "$LOGS/test_backend.log" || echo "rc $RC")" \
      "$LOGS/test_backend.log"
  fi
  # the table, cuda's section: op, max error, tolerance
  table=$(sed -n "/^backend $DEV (/,/^backend \|^  device names/p" "$LOGS/test_backend.log" | grep "max err" |
    sed 's/^ *//; s/  */ /g')
  FIG+=("\"conformance_table\": $(json_str "$table")")
fi

# ------------------------------------------------------------ the whole model: training steps and generation
if can_run model 150; then
  run model 150 "$LOGS/test_cuda_model.log" env TG_TEST_DEVICE="$DEV" "$BUILD/test_cuda_model"
  if [ $RC = 0 ] && ! grep -q SKIPPED "$LOGS/test_cuda_model.log"; then
    record model 1 0 "$SECS" "$(grep -c "loss cpu" "$LOGS/test_cuda_model.log") training steps matched; $(grep -m1 greedy "$LOGS/test_cuda_model.log" | sed 's/^ *//')"
  else
    record model 0 $RC "$SECS" "$(grep -m1 -E "FAIL|SKIPPED|check failed|DIFFER" "$LOGS/test_cuda_model.log" || echo "rc $RC")" \
      "$LOGS/test_cuda_model.log"
  fi
  FIG+=("\"model_steps\": $(json_str "$(grep -E "loss cpu|greedy|generation vs" "$LOGS/test_cuda_model.log" | sed 's/^ *//')")")
fi

# ------------------------------------------------------------ --device on every command
if can_run device_flags 90; then
  run device_flags 90 "$LOGS/e2e_device.log" bash "$ROOT/tests/e2e_device.sh" "$TG"
  want=gpu
  [ "$DEV" = cpu ] && want=nogpu
  if [ $RC = 0 ] && grep -q "($want)" "$LOGS/e2e_device.log"; then record device_flags 1 0 "$SECS" "8 commands"
  else record device_flags 0 $RC "$SECS" "$(tail -1 "$LOGS/e2e_device.log")" "$LOGS/e2e_device.log"
  fi
fi

# ------------------------------------------------------------ checkpoints across devices
# 4 fp32 steps on one device resumed to 8 on the other, against the same
# (4, then --resume to 8: --steps sets the schedule) all on the CPU: the
# step-8 loss within 1e-4 relative (TF32 is off; only summation order differs).
if can_run resume 150; then
  R=$LOGS/resume
  rm -rf "$R" && mkdir -p "$R"
  log=$R/resume.log
  : > "$log"
  head -c 40000 /usr/share/games/fortunes/science > "$R/t.txt" 2>/dev/null ||
    for i in $(seq 1 400); do echo "line $i of a small training text for the resume check"; done > "$R/t.txt"
  SMALL=(--preset tiny --layers 2 --heads 2 --dim 64 --ctx 32 --batch 4 --warmup 1 --eval-every 0 --save-every 4
    --data "$R/data")
  t=$(date +%s)
  ok=1
  step() { timeout -k 5 60 "$TG" "$@" >> "$log" 2>&1 || { echo "gpu-check: failed: $*" >> "$log"; ok=0; }; }
  step tokenize --bytes "$R/t.txt" --out "$R/data"
  step train --device cpu "${SMALL[@]}" --steps 4 --out "$R/cpu"
  step train --device cpu "${SMALL[@]}" --steps 8 --out "$R/cpu" --resume
  step train --device "$DEV" "${SMALL[@]}" --steps 4 --out "$R/g2c"
  step train --device cpu "${SMALL[@]}" --steps 8 --out "$R/g2c" --resume
  step train --device cpu "${SMALL[@]}" --steps 4 --out "$R/c2g"
  step train --device "$DEV" "${SMALL[@]}" --steps 8 --out "$R/c2g" --resume
  loss8() { grep '"step":8,' "$1/metrics.jsonl" 2>/dev/null | tail -1 | sed 's/.*"loss":\([-0-9.eE+]*\).*/\1/'; }
  a=$(loss8 "$R/cpu") b=$(loss8 "$R/g2c") c=$(loss8 "$R/c2g")
  detail="step-8 loss: cpu->cpu ${a:-none}, $DEV->cpu ${b:-none}, cpu->$DEV ${c:-none}"
  if [ "$ok" = 1 ] && [ -n "$a" ] && [ -n "$b" ] && [ -n "$c" ] &&
     awk -v a="$a" -v b="$b" -v c="$c" 'function ab(x){return x<0?-x:x} BEGIN{exit !(ab(a-b)<=1e-4*ab(a) && ab(a-c)<=1e-4*ab(a))}'; then
    record resume 1 0 $(($(date +%s) - t)) "$detail"
  else
    record resume 0 1 $(($(date +%s) - t)) "$detail (tolerance 1e-4 relative)" "$log"
  fi
fi

# ------------------------------------------------------------ benchmarks
json_line() { grep '^{' "$1" | tail -1; }
PRESET=gpt2 CTX=1024 BATCH=16
[ "$DEV" = cpu ] && PRESET=tiny CTX=64 BATCH=4
if [ "$QUICK" = 1 ]; then
  record bench_train skip 0 0 "GPU_CHECK_QUICK=1"
elif can_run bench_train 150; then
  run bench_train 150 "$LOGS/bench_train.log" "$TG" bench train --device "$DEV" --preset $PRESET --ctx $CTX \
    --batch $BATCH --dtype bf16 --steps 10 --warmup 2 --json
  j=$(json_line "$LOGS/bench_train.log")
  if [ $RC = 0 ] && [ -n "$j" ]; then
    record bench_train 1 0 "$SECS" "$PRESET, B=$BATCH, T=$CTX, bf16; on a GPU MFU is against the stated peak"
    FIG+=("\"bench_train\": $j")
  else
    record bench_train 0 $RC "$SECS" "bench train failed" "$LOGS/bench_train.log"
  fi
fi
if [ "$QUICK" = 1 ]; then
  record bench_generate skip 0 0 "GPU_CHECK_QUICK=1"
elif can_run bench_generate 120; then
  run bench_generate 120 "$LOGS/bench_generate.log" "$TG" bench generate --device "$DEV" --preset $PRESET \
    --dtype bf16 --streams 64 --prompt-len $((CTX / 2)) --gen-tokens 32 --requests 0 --json
  j=$(json_line "$LOGS/bench_generate.log")
  if [ $RC = 0 ] && [ -n "$j" ]; then
    record bench_generate 1 0 "$SECS" "$PRESET, bf16, 1 and 64 streams"
    FIG+=("\"bench_generate\": $j")
  else
    record bench_generate 0 $RC "$SECS" "bench generate failed" "$LOGS/bench_generate.log"
  fi
fi

finish
