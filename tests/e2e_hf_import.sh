#!/usr/bin/env bash
# e2e_hf_import.sh — Hugging Face GPT-2 directories, as the hub serves them,
# work with every command that takes --model (docs/interop.md). The models
# are tests/fixtures/hf/ (written by tests/ref/gen_hf_fixtures.py with plain
# PyTorch: F32 without the "transformer." prefix plus the attention buffers
# and vocab.json + merges.txt; F16 with the prefix, a tied lm_head.weight and
# tokenizer.json; BF16 with encoder.json + vocab.bpe).
# Checks: `eval` equals PyTorch's loss within 1e-5 for each (the references
# run fp32 on the stored, rounded weights, so 1e-5 holds for F16/BF16 too);
# `sample --temperature 0` gives PyTorch's 16 greedy tokens; the three
# tokenizer file styles encode alike; `train --init`'s first loss is the
# model's loss on that micro-batch; finetune adds the chat tokens and chat
# answers; serve answers a completion; config.json fields we cannot honour
# and a pytorch_model.bin-only or sharded directory are refused (exit 2)
# with the field or file named (an untied head and unknown tensors:
# tests/test_hf_import.c). The other way round: a checkpoint truthgpt wrote
# (fixtures/hf/ours_tiny) has the loss a plain PyTorch HF-layout loader
# computes for it (ours_expected.json, from tests/ref/check_hf_checkpoint.py).
# Usage: tests/e2e_hf_import.sh path/to/truthgpt
set -u
TG=${1:?usage: e2e_hf_import.sh path/to/truthgpt}
TG=$(cd "$(dirname "$TG")" && pwd)/$(basename "$TG")
FX=$(cd "$(dirname "$0")/fixtures/hf" && pwd)
W=$(mktemp -d /tmp/tg_e2e_hf_import_XXXXXX)
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill $SERVER_PID 2>/dev/null; rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"
export OMP_NUM_THREADS=2
PROMPT=$(sed -n '1s/.*after prompt \([0-9,]*\)).*/\1/p' "$FX/expected.tsv")
[ -n "$PROMPT" ] || fail "no prompt in $FX/expected.tsv"

# --- eval and greedy sampling against PyTorch
while IFS=$'\t' read -r name loss greedy; do
  case "$name" in \#*|'') continue ;; esac
  J=$("$TG" eval --model "$FX/$name" --data "$FX/val.tok" --batch 2 --ctx 32 --batches 2 --json --threads 1) \
    || fail "$name: eval exited $?"
  ours=$(echo "$J" | sed 's/.*"loss":\([^,}]*\).*/\1/')
  awk -v a="$ours" -v b="$loss" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5) }' \
    || fail "$name: eval loss $ours, PyTorch $loss (tolerance 1e-5)"
  got=$("$TG" sample --model "$FX/$name" --prompt-ids "$PROMPT" --max-tokens 16 --temperature 0 --ignore-eos \
    --show-probs --threads 1 2>/dev/null | awk 'NF { printf "%s%s", (n++ ? "," : ""), $1 }')
  [ "$got" = "$greedy" ] || fail "$name: greedy tokens $got, PyTorch $greedy"
  echo "ok $name: loss $ours (PyTorch $loss), greedy tokens equal"
done < "$FX/expected.tsv"

# --- and the other way: a checkpoint truthgpt wrote (ours_tiny), read by a
# plain Hugging Face layout loader in PyTorch (tests/ref/check_hf_checkpoint.py,
# which wrote ours_expected.json), has the loss truthgpt computes
want=$(sed -n 's/.*"loss": \([0-9.e+-]*\).*/\1/p' "$FX/ours_expected.json")
J=$("$TG" eval --model "$FX/ours_tiny" --data "$FX/ours_val.tok" --batch 4 --ctx 16 --batches 8 --json --threads 1) \
  || fail "ours_tiny: eval exited $?"
ours=$(echo "$J" | sed 's/.*"loss":\([^,}]*\).*/\1/')
awk -v a="$ours" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5) }' \
  || fail "ours_tiny: eval loss $ours, PyTorch's HF-layout loader $want (tolerance 1e-5)"
echo "ok ours_tiny: loss $ours (PyTorch HF loader $want)"

# --- the three tokenizer file styles encode alike. The ids follow from the
# fixture's merges (Ġt+he = 258, Ġan+d = 279, a+t = 265, Ġ+c = 272, h+e = 257;
# 'Ġ' alone is 220, as in GPT-2's byte order).
want='{"ids":[83,257,272,265,279,258,220,67,78,70]}'
for m in gpt2_f32 gpt2_f16 gpt2_bf16; do
  got=$(echo '{"text":"the cat and the dog"}' | "$TG" tokenizer encode --tokenizer "$FX/$m" --jsonl) \
    || fail "$m: tokenizer encode exited $?"
  [ "$got" = "$want" ] || fail "$m: tokenizer ids $got, expected $want"
done
# --prompt text needs the model's tokenizer: vocab.json + merges.txt here
"$TG" sample --model "$FX/gpt2_f32" --prompt "the cat" --max-tokens 4 --temperature 0 > s.txt 2> s.err \
  || { cat s.err; fail "sample --prompt on a vocab.json + merges.txt model"; }
grep -q "^the cat" s.txt || fail "sample --prompt output: $(cat s.txt)"

# --- train --init: starts from the HF weights (the first step's loss is the
# model's loss on micro-batch 0, shuffle off)
mkdir data && cp "$FX/val.tok" data/train-000000.tok
L0=$("$TG" eval --model "$FX/gpt2_bf16" --data data --batch 2 --ctx 32 --batches 1 --json --threads 1 \
  | sed 's/.*"loss":\([^,}]*\).*/\1/')
"$TG" train --init "$FX/gpt2_bf16" --data data --batch 2 --ctx 32 --steps 2 --warmup 1 --lr 1e-3 --shuffle off \
  --eval-every 0 --threads 1 --out run > train.log 2>&1 || { cat train.log; fail "train --init exited $?"; }
first=$(head -1 run/metrics.jsonl | sed 's/.*"loss":\([^,}]*\).*/\1/')
awk -v a="$first" -v b="$L0" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4) }' \
  || fail "train --init's first loss $first is not the model's loss $L0 on that batch"
[ -f run/checkpoint-2/model.safetensors ] || fail "train --init wrote no checkpoint"
echo "ok train --init: first loss $first = eval $L0"

# --- finetune from a hub directory, then chat with the result
for i in $(seq 1 12); do
  echo '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"the cat"}]}'
done > chat.jsonl
"$TG" finetune --model "$FX/gpt2_f32" --chat chat.jsonl --out ft --steps 3 --batch 2 --ctx 32 --lr 1e-3 --threads 1 \
  > ft.log 2>&1 || { cat ft.log; fail "finetune exited $?"; }
grep -q "vocabulary 281 -> 283" ft.log || fail "finetune did not add the chat tokens: $(cat ft.log)"
printf 'hello\n/quit\n' | "$TG" chat --model ft --seed 1 --max-tokens 5 --threads 1 > c.txt 2> c.err \
  || { cat c.err; fail "chat on the fine-tuned hub model exited $?"; }
[ -s c.txt ] || fail "chat printed nothing"
echo "ok finetune + chat"

# --- serve
TG_BIN=$TG
. "$FX/../../lib_serve.sh"
tg_serve_start server.log --model "$FX/gpt2_f16" --threads 1
R=$(curl -s -m 30 "http://127.0.0.1:$PORT/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"m","prompt":"the cat","max_tokens":4,"temperature":0}') || fail "curl"
echo "$R" | grep -q '"choices"' || fail "serve's completion: $R"
echo "$R" | grep -q '"completion_tokens":4' || fail "serve's completion usage: $R"
kill $SERVER_PID; wait $SERVER_PID 2>/dev/null; SERVER_PID=
echo "ok serve"

# --- refusals: each exits 2 and names what it refuses
refuse() { # DIR WORD...: eval on DIR exits 2 and stderr has each WORD
  local d=$1; shift
  "$TG" eval --model "$d" --data "$FX/val.tok" --batch 2 --ctx 32 --batches 1 > /dev/null 2> err.txt; local rc=$?
  [ $rc = 2 ] || fail "$d: exit $rc, expected 2 ($(cat err.txt))"
  for w in "$@"; do grep -qF -- "$w" err.txt || fail "$d: the message does not name '$w': $(cat err.txt)"; done
}
edit() { # NAME SED-EXPR: a copy of gpt2_f32 with config.json edited
  rm -rf "$1"; cp -r "$FX/gpt2_f32" "$1"; sed -i "$2" "$1/config.json"
  grep -q . "$1/config.json" || fail "edit $1"
}
edit act 's/"activation_function": "gelu_new"/"activation_function": "relu"/';  refuse act activation_function relu
edit inner 's/"n_inner": null/"n_inner": 64/';                                    refuse inner n_inner
edit inv 's/"scale_attn_by_inverse_layer_idx": false/"scale_attn_by_inverse_layer_idx": true/'
refuse inv scale_attn_by_inverse_layer_idx
edit noscale 's/"scale_attn_weights": true/"scale_attn_weights": false/';          refuse noscale scale_attn_weights
edit arch 's/"GPT2LMHeadModel"/"GPT2ForSequenceClassification"/';                  refuse arch architectures
edit untie 's/"use_cache": true/"use_cache": true, "tie_word_embeddings": false/';   refuse untie tie_word_embeddings
# accepted: n_inner = 4 * n_embd, gelu_pytorch_tanh, reorder_and_upcast_attn
edit ok4c 's/"n_inner": null/"n_inner": 128/; s/"gelu_new"/"gelu_pytorch_tanh"/; s/"reorder_and_upcast_attn": false/"reorder_and_upcast_attn": true/'
"$TG" eval --model ok4c --data "$FX/val.tok" --batch 2 --ctx 32 --batches 1 > /dev/null 2> err.txt \
  || fail "n_inner 128 (= 4C) / gelu_pytorch_tanh / reorder_and_upcast_attn refused: $(cat err.txt)"
# pytorch_model.bin only: says how to convert
rm -rf bin; cp -r "$FX/gpt2_f32" bin; mv bin/model.safetensors bin/pytorch_model.bin
refuse bin pytorch_model.bin model.safetensors save_file
rm -rf shard; cp -r "$FX/gpt2_f32" shard; mv shard/model.safetensors shard/model-00001-of-00002.safetensors
echo '{}' > shard/model.safetensors.index.json
refuse shard model.safetensors.index.json
# a tokenizer pair with a file missing
rm -rf half; cp -r "$FX/gpt2_f32" half; rm half/merges.txt
echo '{"text":"x"}' | "$TG" tokenizer encode --tokenizer half --jsonl > /dev/null 2> err.txt; rc=$?
[ $rc = 2 ] && grep -q "merges.txt" err.txt || fail "vocab.json without merges.txt: exit $rc, $(cat err.txt)"
echo "ok refusals"
echo "PASS e2e_hf_import"
