#!/usr/bin/env bash
# e2e_train.sh — `truthgpt train` learns real text: ~390 KB of English
# fortunes as byte shards (90% train, 10% val), a small model (the tiny
# preset cut to L=2, C=64, T=64) for 300 steps must reach a validation loss
# at least 0.4 nats below the unigram entropy of the validation bytes
# (computed here). Also checks the run directory (checkpoint files, HF
# config, metrics.jsonl, loss.svg, manifest), that `eval` reproduces the
# logged val_loss, that `inspect` shows the provenance, and --init.
# Usage: tests/e2e_train.sh path/to/truthgpt
set -u
TG=${1:?usage: e2e_train.sh path/to/truthgpt}
TG=$(cd "$(dirname "$TG")" && pwd)/$(basename "$TG")
W=$(mktemp -d /tmp/tg_e2e_train_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"

F=/usr/share/games/fortunes
for f in people science work; do
  [ -s "$F/$f" ] || fail "$F/$f missing (scripts/setup.sh installs the 'fortunes' package)"
done
cat "$F/people" "$F/science" "$F/work" > all.txt
N=$(wc -c < all.txt)
head -c $((N * 9 / 10)) all.txt > train.txt
tail -c +$((N * 9 / 10 + 1)) all.txt > val.txt
"$TG" tokenize --bytes train.txt --out data >/dev/null || fail "tokenize train"
"$TG" tokenize --bytes val.txt --out valdata >/dev/null || fail "tokenize val"

# Unigram entropy (nats) of the validation bytes: the loss of the best
# model that ignores context.
H=$(od -An -v -tu1 val.txt | awk '{for(i=1;i<=NF;i++){c[$i]++;n++}} END{for(k in c){p=c[k]/n; h-=p*log(p)}; printf "%.6f", h}')
echo "unigram entropy of val: $H nats"

"$TG" train --preset tiny --layers 2 --heads 4 --dim 64 --ctx 64 --data data --val-data valdata \
  --batch 8 --steps 300 --warmup 20 --lr 3e-3 --eval-every 100 --eval-batches 8 --save-every 150 \
  --threads 1 --out run > train.log 2>&1 || { cat train.log; fail "train exited $?"; }

# Run directory layout.
for f in metrics.jsonl loss.svg manifest.json checkpoint-150/config.json checkpoint-300/model.safetensors \
         checkpoint-300/optimizer.safetensors checkpoint-300/trainer_state.json checkpoint-300/manifest.json; do
  [ -s "run/$f" ] || fail "run/$f missing or empty"
done
ls run | grep -q '\.tmp' && fail "a temporary checkpoint directory was left behind"
grep -q '"model_type": "gpt2"' run/checkpoint-300/config.json || fail "config.json lacks model_type gpt2"
grep -q '"GPT2LMHeadModel"' run/checkpoint-300/config.json || fail "config.json lacks architectures"
grep -q '"vocab_size": 257' run/checkpoint-300/config.json || fail "config.json vocab_size is not the true 257"
grep -q '"n_positions": 64' run/checkpoint-300/config.json || fail "config.json n_positions"
[ "$(grep -c '"loss"' run/metrics.jsonl)" = 300 ] || fail "metrics.jsonl should have 300 step lines"
[ "$(grep -c '"val_loss"' run/metrics.jsonl)" = 3 ] || fail "metrics.jsonl should have 3 eval lines"
for k in step loss lr tokens tok_per_s grad_norm; do
  head -1 run/metrics.jsonl | grep -q "\"$k\":" || fail "metrics.jsonl lacks $k"
done
grep -q '<svg' run/loss.svg && grep -q '<polyline' run/loss.svg || fail "loss.svg has no chart"
grep -q '"step": 300' run/checkpoint-300/trainer_state.json || fail "trainer_state.json step"
grep -q "$(sha256sum data/train-000000.tok | cut -c1-64)" run/manifest.json || fail "manifest lacks the shard's SHA-256"
grep -q '"command_line"' run/manifest.json && grep -q '"git_commit"' run/manifest.json || fail "manifest lacks provenance"

# Learning: the final validation loss is well below the unigram entropy,
# and below the first evaluation's.
VAL=$(grep '"val_loss"' run/metrics.jsonl | tail -1 | sed 's/.*"val_loss":\([^,}]*\).*/\1/')
VAL1=$(grep '"val_loss"' run/metrics.jsonl | head -1 | sed 's/.*"val_loss":\([^,}]*\).*/\1/')
echo "val loss: first eval $VAL1, final $VAL (unigram $H)"
awk -v v="$VAL" -v h="$H" 'BEGIN{exit !(v < h - 0.4)}' || fail "val loss $VAL not 0.4 nats below unigram entropy $H"
awk -v v="$VAL" -v a="$VAL1" 'BEGIN{exit !(v < a)}' || fail "val loss did not fall ($VAL1 -> $VAL)"

# eval on the same data and batches reproduces the logged val_loss (same
# forward, same micro-batches: to 1e-6 relative).
J=$("$TG" eval --model run --data valdata --batches 8 --batch 8 --json --threads 1) || fail "eval exited $?"
echo "eval: $J"
EL=$(echo "$J" | sed 's/.*"loss":\([^,}]*\).*/\1/')
awk -v a="$EL" -v b="$VAL" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(d <= 1e-6*b)}' || fail "eval loss $EL != logged val_loss $VAL"
echo "$J" | grep -q '"tokens":4096' || fail "eval should count 8 x 8 x 64 = 4096 tokens"
# --model takes the checkpoint directory itself too.
"$TG" eval --model run/checkpoint-150 --data valdata --batches 2 --json --threads 1 | grep -q '"ppl"' || fail "eval of a checkpoint dir"

# inspect shows the provenance.
"$TG" inspect run > inspect.txt || fail "inspect exited $?"
grep -q "checkpoint-300" inspect.txt && grep -q "sha256" inspect.txt && grep -q "command" inspect.txt ||
  { cat inspect.txt; fail "inspect output lacks checkpoint/sha256/command"; }

# --init: fresh optimizer at step 0 from the trained weights: its first
# loss is far below a fresh model's first loss.
"$TG" train --init run --data data --batch 8 --steps 2 --warmup 1 --lr 1e-4 --eval-every 0 --threads 1 --out run_init \
  > init.log 2>&1 || { cat init.log; fail "train --init exited $?"; }
L0=$(head -1 run_init/metrics.jsonl | sed 's/.*"loss":\([^,}]*\).*/\1/')
F0=$(head -1 run/metrics.jsonl | sed 's/.*"loss":\([^,}]*\).*/\1/')
echo "first loss: fresh $F0, --init $L0"
awk -v a="$L0" -v b="$F0" 'BEGIN{exit !(a < b - 1.5)}' || fail "--init did not start from the trained weights ($L0 vs $F0)"
grep -q '"step": 2' run_init/checkpoint-2/trainer_state.json || fail "--init run should count steps from 0"

# --doc-attention on: 60 one-fortune documents (each behind an
# <|endoftext|>), so every 64-token row holds several. Attention and
# positions then differ from the plain windows: the second step's loss
# differs from an otherwise identical run with it off; the setting is in the manifest
# and the checkpoint's trainer_state.json.
mkdir docs
awk 'BEGIN{RS="%\n"} NR<=60 && length($0) > 0 {f=sprintf("docs/%02d.txt", NR); printf "%s", $0 > f; close(f)}' "$F/people"
"$TG" tokenize --bytes docs/*.txt --out docdata >/dev/null || fail "tokenize docs"
for d in on off; do
  "$TG" train --preset tiny --layers 2 --heads 4 --dim 64 --ctx 64 --data docdata --batch 4 --steps 2 --warmup 1 \
    --eval-every 0 --threads 1 --doc-attention $d --out run_doc_$d > doc_$d.log 2>&1 || { cat doc_$d.log; fail "train --doc-attention $d exited $?"; }
done
D1=$(sed -n 2p run_doc_on/metrics.jsonl | sed 's/.*"loss":\([^,}]*\).*/\1/')
D0=$(sed -n 2p run_doc_off/metrics.jsonl | sed 's/.*"loss":\([^,}]*\).*/\1/')
echo "step 2 loss: --doc-attention on $D1, off $D0"
[ "$D1" != "$D0" ] || fail "--doc-attention on changed nothing ($D1)"
grep -q '"doc_attention": "on"' run_doc_on/manifest.json || fail "manifest lacks doc_attention on"
grep -q '"doc_attention":"on"\|"doc_attention": "on"' run_doc_on/checkpoint-2/trainer_state.json || fail "trainer_state lacks doc_attention"
# eval takes the same setting: a different loss from the same weights.
E1=$("$TG" eval --model run_doc_on --data docdata --batches 2 --batch 4 --doc-attention on --json --threads 1) || fail "eval --doc-attention on"
E0=$("$TG" eval --model run_doc_on --data docdata --batches 2 --batch 4 --json --threads 1) || fail "eval"
[ "$E1" != "$E0" ] || fail "eval --doc-attention on changed nothing ($E1)"
"$TG" train --preset tiny --data docdata --doc-attention maybe --out run_bad > bad.log 2>&1
[ $? -eq 2 ] && grep -q -- "--doc-attention" bad.log || { cat bad.log; fail "--doc-attention maybe should exit 2 naming the flag"; }

echo "e2e_train: OK"
