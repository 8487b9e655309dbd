#!/usr/bin/env bash
# e2e_chat.sh — `truthgpt sample` and `truthgpt chat` on real checkpoints:
# a tiny byte-level model trained a few steps, then fine-tuned a few steps
# on a toy chat file (so it has <|im_start|>/<|im_end|> and a tokenizer).
# Checks: sample streams text that continues the prompt, greedy sampling is
# reproducible and equal in fp32 whether alone or in a batch of samples,
# --prompt-ids and --show-probs, the stop string, exit codes and messages on
# bad input; chat reads one message a line from a pipe and writes one reply a
# line, handles /temp /system /reset /quit, is reproducible with a seed, and
# refuses a model without chat tokens (exit 2). Mechanics only: the quality
# of replies is issue 4's fine-tuning test.
# Usage: tests/e2e_chat.sh path/to/truthgpt
set -u
TG=${1:?usage: e2e_chat.sh path/to/truthgpt}
TG=$(cd "$(dirname "$TG")" && pwd)/$(basename "$TG")
W=$(mktemp -d /tmp/tg_e2e_chat_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"
export OMP_NUM_THREADS=2

F=/usr/share/games/fortunes/people
[ -s "$F" ] || fail "$F missing (scripts/setup.sh installs the 'fortunes' package)"
head -c 60000 "$F" > train.txt
"$TG" tokenize --bytes train.txt --out data >/dev/null || fail "tokenize"
"$TG" train --preset tiny --layers 2 --heads 4 --dim 64 --ctx 64 --data data --batch 8 --steps 20 \
  --warmup 2 --lr 3e-3 --threads 2 --out run > train.log 2>&1 || { cat train.log; fail "train"; }
for i in $(seq 1 20); do
  echo '{"messages":[{"role":"user","content":"Say hi"},{"role":"assistant","content":"hi there"}]}'
done > chat.jsonl
"$TG" finetune --model run --chat chat.jsonl --out ft --steps 10 --lr 3e-3 --batch 4 --threads 2 \
  > ft.log 2>&1 || { cat ft.log; fail "finetune"; }

# --- sample
"$TG" sample --model run --prompt "The " --max-tokens 30 --temperature 0 --ignore-eos > s1.txt 2> s1.err \
  || { cat s1.err; fail "sample exited $?"; }
head -c 4 s1.txt | grep -q "^The " || fail "sample output does not start with the prompt"
[ "$(wc -c < s1.txt)" -ge 30 ] || fail "sample printed too little: $(cat s1.txt)"
grep -q "30 generated" s1.err || fail "sample's summary line: $(cat s1.err)"
grep -q "finish: length" s1.err || fail "sample's finish reason: $(cat s1.err)"
"$TG" sample --model run --prompt "The " --max-tokens 30 --temperature 0 --ignore-eos > s2.txt 2>/dev/null
cmp -s s1.txt s2.txt || fail "greedy sampling is not reproducible"
# the same greedy sample three times in one batch: each equals the single run
"$TG" sample --model run --prompt "The " --max-tokens 30 --temperature 0 --ignore-eos --num-samples 3 > s3.txt 2>/dev/null \
  || fail "--num-samples 3"
[ "$(grep -c '^--- sample' s3.txt)" = 3 ] || fail "--num-samples 3 did not print 3 samples"
one=$(head -c -1 s1.txt)
for k in 1 2 3; do
  got=$(awk -v k=$k '/^--- sample/{n++; next} n==k' s3.txt)
  [ "$got" = "$one" ] || fail "batched greedy sample $k differs from the single run: '$got' vs '$one'"
done
# sampled: seeds give different texts
"$TG" sample --model run --prompt "The " --max-tokens 30 --seed 1 --ignore-eos > r1.txt 2>/dev/null
"$TG" sample --model run --prompt "The " --max-tokens 30 --seed 2 --ignore-eos > r2.txt 2>/dev/null
cmp -s r1.txt r2.txt && fail "different seeds gave the same sample"
# ids and probabilities
"$TG" sample --model run --prompt-ids 84,104,101 --max-tokens 5 --temperature 0 --show-probs --ignore-eos > p.txt 2>/dev/null \
  || fail "--show-probs"
[ "$(grep -c 'p=0\.' p.txt)" = 5 ] || fail "--show-probs should print 5 token lines: $(cat p.txt)"
# a stop string ends the text before it
stop=$(head -c 12 s1.txt | tail -c 2)
"$TG" sample --model run --prompt "The " --max-tokens 30 --temperature 0 --ignore-eos --stop "$stop" > st.txt 2> st.err
grep -q "finish: stop" st.err || fail "stop string did not stop: $(cat st.err)"
grep -qF -- "$stop" <(tail -c +5 st.txt) && fail "the stop string '$stop' was printed"
# bad input: exit 2 with the file or flag named
"$TG" sample --model "$W/nope" > /dev/null 2> e1.txt; [ $? = 2 ] || fail "missing model should exit 2"
grep -q nope e1.txt || fail "missing model message should name the path"
"$TG" sample --model run --prompt-ids 1,999 > /dev/null 2> e2.txt; [ $? = 2 ] || fail "bad id should exit 2"
grep -q 999 e2.txt || fail "bad id message: $(cat e2.txt)"
"$TG" sample --model run --temperature -1 > /dev/null 2>&1; [ $? = 2 ] || fail "negative temperature should exit 2"
"$TG" sample --model run --bogus > /dev/null 2>&1; [ $? = 2 ] || fail "unknown flag should exit 2"
"$TG" sample --help | grep -q -- "--num-samples" || fail "sample --help"

# --- chat
printf 'Say hi\n/temp 0\nSay hi\n/system be brief\n/reset\nhello\n/quit\nnot read\n' \
  | "$TG" chat --model ft --seed 5 --max-tokens 12 > c1.txt 2> c1.err || { cat c1.err; fail "chat exited $?"; }
[ "$(wc -l < c1.txt)" = 6 ] || fail "chat should print 6 lines (3 replies, 3 commands): $(cat -A c1.txt)"
[ -n "$(sed -n 1p c1.txt)" ] || fail "chat's first reply is empty"
printf 'Say hi\n/temp 0\nSay hi\n/system be brief\n/reset\nhello\n/quit\n' \
  | "$TG" chat --model ft --seed 5 --max-tokens 12 > c2.txt 2>/dev/null
cmp -s c1.txt c2.txt || fail "chat with a seed is not reproducible"
"$TG" chat --model run < /dev/null > /dev/null 2> c3.err; [ $? = 2 ] || fail "chat on a model without chat tokens should exit 2"
grep -q "chat" c3.err || fail "chat refusal message: $(cat c3.err)"
"$TG" chat --help | grep -q "/reset" || fail "chat --help"
echo "e2e_chat: ok"
