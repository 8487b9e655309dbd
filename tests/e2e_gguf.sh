#!/usr/bin/env bash
# e2e_gguf.sh — `truthgpt export gguf` files run unchanged in llama.cpp
# (docs/interop.md). llama.cpp is node-llama-cpp's CPU prebuilt binary
# (tests/package.json), run in a child process per file by gguf_check.mjs,
# which also parses each file with @huggingface/gguf (keys, names, shapes,
# types, offsets, alignment).
# Models: the Hugging Face fixture tests/fixtures/hf/gpt2_f32 (PyTorch's
# logits known: tests/ref/gen_hf_fixtures.py), a byte-level model trained
# here (no tokenizer file) and its chat fine-tune (tokenizer.json with
# <|im_start|>/<|im_end|>, so the ChatML template goes in); each exported as
# f32, f16 and q8_0 (the chat one: its template must render our ChatML).
# Bounds (max |logit error| over the prompt's positions,
# logits up to ~6.5 in size):
#   f32  vs PyTorch with ggml's GELU (a table of fp16 values)  1e-4
#   f32  vs PyTorch's exact GELU                                3e-3
#   f16  vs PyTorch                                             1e-2
#   q8_0 vs PyTorch                                             0.3
# Greedy tokens: llama.cpp's equal `truthgpt sample --temperature 0` for
# every f32 export (32 tokens for our models, 16 for the fixture, whose
# context is 32), and llama.cpp's tokenizer gives our ids on the tokenizer
# conformance strings (tests/fixtures/tokenizer/gpt2_conformance.jsonl).
# Also: bad --type and a missing --model exit 2, nothing is left behind.
# Usage: tests/e2e_gguf.sh path/to/truthgpt
set -u
TG=${1:?usage: e2e_gguf.sh path/to/truthgpt}
TG=$(cd "$(dirname "$TG")" && pwd)/$(basename "$TG")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FX=$ROOT/tests/fixtures/hf
W=$(mktemp -d /tmp/tg_e2e_gguf_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ ! -d "$ROOT/tests/node_modules/node-llama-cpp" ] || [ ! -d "$ROOT/tests/node_modules/@huggingface/gguf" ]; then
  bash "$ROOT/tests/setup_npm.sh" || fail "npm test dependencies could not be installed (tests/setup_npm.sh)"
fi
cd "$W"
export OMP_NUM_THREADS=2
CHECK="node $ROOT/tests/gguf_check.mjs"
TEXTS=$ROOT/tests/fixtures/tokenizer/gpt2_conformance.jsonl

# --- usage errors
"$TG" export gguf --model "$FX/gpt2_f32" --out x.gguf --type q4_0 2> err.txt; rc=$?
[ $rc = 2 ] && grep -q -- "--type" err.txt || fail "--type q4_0: exit $rc, $(cat err.txt)"
"$TG" export gguf --model nowhere --out x.gguf 2> err.txt; rc=$?
[ $rc = 2 ] && grep -q "nowhere" err.txt || fail "--model nowhere: exit $rc, $(cat err.txt)"
[ ! -e x.gguf ] || fail "a failed export left x.gguf behind"
"$TG" export gguf --help | grep -q -- "--type" || fail "export gguf --help"

# --- the Hugging Face fixture, against PyTorch's logits
PROMPT=$(sed -n '1s/.*after prompt \([0-9,]*\)).*/\1/p' "$FX/expected.tsv")
GREEDY=$(awk -F'\t' '$1 == "gpt2_f32" { print $3 }' "$FX/expected.tsv")
"$TG" tokenizer encode --tokenizer "$FX/gpt2_f32" --jsonl < "$TEXTS" > hf_ids.jsonl || fail "tokenizer encode"
for t in f32 f16 q8_0; do
  "$TG" export gguf --model "$FX/gpt2_f32" --out hf_$t.gguf --type $t 2> export.log || { cat export.log; fail "export $t"; }
  ls hf_$t.gguf.* 2>/dev/null && fail "export left a temporary file"
  case $t in f32) tol="--tol-exact 3e-3 --tol-ggml 1e-4" ;; f16) tol="--tol-exact 1e-2" ;; q8_0) tol="--tol-exact 0.3" ;; esac
  g="--greedy-info $GREEDY"; [ $t = f32 ] && g="--greedy $GREEDY"
  tx=; [ $t = f32 ] && tx="--texts $TEXTS --ids hf_ids.jsonl" # the same tokenizer in every type
  $CHECK hf_$t.gguf --config "$FX/gpt2_f32/config.json" --type $t --prompt-ids "$PROMPT" $g \
    --ref-logits "$FX/prompt_logits.json" $tol $tx || fail "hf_$t.gguf"
done

# --- our own checkpoints: byte-level, and a chat fine-tune
F=/usr/share/games/fortunes/people
[ -s "$F" ] || fail "$F missing (scripts/setup.sh installs the 'fortunes' package)"
head -c 40000 "$F" > train.txt
"$TG" tokenize --bytes train.txt --out data > /dev/null || fail "tokenize"
"$TG" train --preset tiny --layers 2 --heads 4 --dim 64 --ctx 64 --data data --batch 8 --steps 30 --warmup 3 \
  --lr 3e-3 --eval-every 0 --threads 2 --out run > train.log 2>&1 || { cat train.log; fail "train"; }
for i in $(seq 1 16); do
  echo '{"messages":[{"role":"user","content":"Say hi"},{"role":"assistant","content":"hi there"}]}'
done > chat.jsonl
"$TG" finetune --model run --chat chat.jsonl --out ft --steps 5 --lr 3e-3 --batch 4 --threads 2 > ft.log 2>&1 \
  || { cat ft.log; fail "finetune"; }
"$TG" tokenizer encode --tokenizer ft/checkpoint-5 --jsonl < "$TEXTS" > ft_ids.jsonl || fail "tokenizer encode (ft)"
P2=256,84,104,101,32 # <|endoftext|>"The "
for m in run/checkpoint-30 ft/checkpoint-5; do
  ours=$("$TG" sample --model $m --prompt-ids $P2 --max-tokens 32 --temperature 0 --ignore-eos --show-probs \
    --threads 1 2>/dev/null | awk 'NF { printf "%s%s", (n++ ? "," : ""), $1 }')
  [ "$(echo "$ours" | tr ',' '\n' | wc -l)" = 32 ] || fail "$m: sample gave '$ours'"
  chat=; [ $m = ft/checkpoint-5 ] && chat=--chat
  for t in f32 f16 q8_0; do
    out=$(echo $m | tr '/' '_')_$t.gguf
    "$TG" export gguf --model $m --out $out --type $t 2> export.log || { cat export.log; fail "export $m $t"; }
    g="--greedy-info $ours"; [ $t = f32 ] && g="--greedy $ours"
    tx=; [ $m = ft/checkpoint-5 ] && [ $t = f32 ] && tx="--texts $TEXTS --ids ft_ids.jsonl"
    $CHECK $out --config $m/config.json --type $t $chat --prompt-ids $P2 $g $tx || fail "$out"
  done
done
echo "PASS e2e_gguf"
