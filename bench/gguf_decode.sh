#!/usr/bin/env bash
# gguf_decode.sh — `truthgpt export gguf` sizes and decode speed: for one
# model, the export time and file size of each type, and greedy decode
# tokens/s of llama.cpp (node-llama-cpp's CPU prebuilt, bench/gguf_decode.mjs)
# on each export beside `truthgpt sample` on the checkpoint, one after the
# other in one invocation, with the load average (on a shared machine
# compare the ratios of one run).
#
#   bench/gguf_decode.sh [MODEL_DIR]     (default: a random-init GPT-2 124M
#                                          shape, byte vocabulary, ctx 256)
#   env: TOKENS=128  THREADS=2  TRUTHGPT=build/truthgpt
set -euo pipefail
cd "$(dirname "$0")/.."
TRUTHGPT=${TRUTHGPT:-build/truthgpt}
TOKENS=${TOKENS:-128}
THREADS=${THREADS:-2}
[ -x "$TRUTHGPT" ] || { echo "gguf_decode.sh: $TRUTHGPT not built (make build)" >&2; exit 2; }
[ -d tests/node_modules/node-llama-cpp ] || bash tests/setup_npm.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MODEL=${1:-}
if [ -z "$MODEL" ]; then
  head -c 100000 /usr/share/games/fortunes/science > "$tmp/t.txt"
  "$TRUTHGPT" tokenize --bytes "$tmp/t.txt" --out "$tmp/data" > /dev/null
  "$TRUTHGPT" train --preset gpt2 --ctx 256 --data "$tmp/data" --steps 1 --batch 1 --eval-every 0 \
    --threads "$THREADS" --out "$tmp/run" > "$tmp/train.log" 2>&1
  MODEL=$tmp/run/checkpoint-1
fi
eos=$(sed -n 's/.*"eos_token_id": \([0-9]*\).*/\1/p' "$MODEL/config.json")
load() { cut -d' ' -f1 /proc/loadavg; }
printf '%-26s %10s %12s %10s %6s\n' "what" "MB" "export s" "tok/s" "load"
s=$(OMP_NUM_THREADS=$THREADS "$TRUTHGPT" sample --model "$MODEL" --prompt-ids "$eos" --max-tokens "$TOKENS" \
  --temperature 0 --ignore-eos --threads "$THREADS" 2>&1 >/dev/null | sed -n 's/.*(\([0-9.]*\) tokens\/s.*/\1/p')
mb=$(du -m "$MODEL/model.safetensors" | cut -f1)
printf '%-26s %10s %12s %10s %6s\n' "truthgpt sample (fp32)" "$mb" "-" "$s" "$(load)"
for t in f32 f16 q8_0; do
  t0=$(date +%s.%N)
  "$TRUTHGPT" export gguf --model "$MODEL" --out "$tmp/m_$t.gguf" --type $t 2>/dev/null
  t1=$(date +%s.%N)
  mb=$(awk -v b="$(stat -c %s "$tmp/m_$t.gguf")" 'BEGIN { printf "%.1f", b / 1e6 }')
  r=$(node bench/gguf_decode.mjs "$tmp/m_$t.gguf" "$TOKENS" "$THREADS" "$eos" | sed -n 's/.*"tok_per_s":\([0-9.]*\).*/\1/p')
  printf '%-26s %10s %12.2f %10.1f %6s\n' "llama.cpp $t" "$mb" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$r" "$(load)"
done
