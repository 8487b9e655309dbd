#!/usr/bin/env bash
# e2e_chat_grounded.sh — `truthgpt chat-data --grounded` and `truthgpt chat
# --index` through the program: grounded conversations from an index (counts,
# the template, determinism), a tiny model fine-tuned a few steps on them, a
# grounded terminal chat listing its sources (stderr from a pipe, one reply a
# line on stdout), and bad input exiting 2 with a message. Mechanics only: how
# well a model cites is tests/cite_eval.mjs's measurement (docs/search.md).
# Usage: tests/e2e_chat_grounded.sh path/to/truthgpt
set -u
BIN=${1:?usage: e2e_chat_grounded.sh TRUTHGPT}
T=$(mktemp -d /tmp/tg_e2e_chatg.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$T/out" 2>"$T/err" <"${STDIN:-/dev/null}"; local got=$?
  if [ "$got" = "$want" ]; then ok "$what (exit $got)"; else bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/err" | head -5; fi
}
has() { if grep -q -- "$2" "$1"; then ok "$3"; else bad "$3: '$2' not in $1"; sed 's/^/    /' "$1" | head -5; fi; }
export OMP_NUM_THREADS=2

nouns=(otter kettle lantern violin pebble walrus tulip anchor bagel compass dragon falcon glacier harbor igloo)
places=(market bridge garden station library bakery)
for i in $(seq 0 119); do
  printf '{"id":"q%d","text":"I saw a %s near the %s on day %d.","author":"@u%d","created_at":"2024-0%d-1%d"}\n' \
    "$i" "${nouns[$((i % 15))]}" "${places[$((i % 6))]}" "$i" "$((i % 4))" "$((1 + i % 9))" "$((i % 10))"
done >"$T/posts.jsonl"
"$BIN" index "$T/posts.jsonl" --out "$T/posts.db" --quiet >/dev/null || bad "index"

expect 0 "chat-data --grounded" -- "$BIN" chat-data --grounded "$T/posts.db" --out "$T/g.jsonl" --top-k 3 --val-frac 0.1
has "$T/out" "120 posts" "counts the index's posts"
n=$(wc -l <"$T/g.jsonl"); v=$(wc -l <"$T/g_val.jsonl")
[ $((n + v)) -eq 120 ] && [ "$v" -ge 4 ] && ok "120 conversations, $v held out" || bad "conversations: $n + $v"
head -1 "$T/g.jsonl" | grep -q '"role":"system","content":"Sources:\\n\[1\] @u' && ok "the system message is the sources template" \
  || bad "template: $(head -c 300 "$T/g.jsonl")"
"$BIN" chat-data --grounded "$T/posts.db" --out "$T/g2.jsonl" --top-k 3 --val-frac 0.1 >/dev/null 2>&1
cmp -s "$T/g.jsonl" "$T/g2.jsonl" && ok "deterministic" || bad "two runs differ"
expect 2 "--grounded with a CORPUS too" -- "$BIN" chat-data "$T/posts.jsonl" --grounded "$T/posts.db" --out "$T/x.jsonl"
expect 2 "--grounded without --out" -- "$BIN" chat-data --grounded "$T/posts.db"
expect 2 "--grounded --top-k 1" -- "$BIN" chat-data --grounded "$T/posts.db" --out "$T/x.jsonl" --top-k 1
has "$T/err" "top-k" "message names --top-k"
expect 2 "--grounded on a missing index" -- "$BIN" chat-data --grounded "$T/none.db" --out "$T/x.jsonl"
has "$T/err" "none.db" "message names the index"
head -c 3000 /dev/urandom >"$T/junk.db"
expect 2 "--grounded on a corrupt index" -- "$BIN" chat-data --grounded "$T/junk.db" --out "$T/x.jsonl"
[ ! -e "$T/x.jsonl" ] && ok "nothing written on errors" || bad "x.jsonl written"

# a tiny byte-level chat model (a few steps: mechanics, not quality)
cut -c1-200 "$T/posts.jsonl" | sed 's/.*"text":"\([^"]*\)".*/\1/' >"$T/text.txt"
"$BIN" tokenize --bytes "$T/text.txt" --out "$T/shards" >/dev/null
"$BIN" train --data "$T/shards" --out "$T/base" --layers 2 --heads 2 --dim 64 --ctx 1024 --steps 4 --batch 2 \
  --warmup 1 --lr 3e-3 --eval-every 0 --threads 2 >"$T/train.log" 2>&1 || { tail -3 "$T/train.log"; bad "train"; }
"$BIN" finetune --model "$T/base" --chat "$T/g.jsonl" --out "$T/ft" --steps 4 --batch 2 --lr 3e-3 --threads 2 \
  >"$T/ft.log" 2>&1 || { tail -3 "$T/ft.log"; bad "finetune"; }

printf 'Who wrote about the walrus?\nzzyzx qwv\n' >"$T/in.txt"
STDIN="$T/in.txt" expect 0 "chat --index from a pipe" -- "$BIN" chat --model "$T/ft" --index "$T/posts.db" --top-k 2 \
  --temperature 0 --max-tokens 12 --threads 2
[ "$(wc -l <"$T/out")" -eq 2 ] && ok "one reply a line on stdout" || bad "stdout has $(wc -l <"$T/out") lines"
has "$T/err" "^sources:" "sources listed (stderr from a pipe)"
has "$T/err" "walrus" "the walrus posts are the sources"
[ "$(grep -c '^  \[[12]\]' "$T/err")" -eq 2 ] && ok "two numbered sources" || bad "sources: $(cat "$T/err")"
has "$T/err" "no posts matched" "a message without matches says so"
expect 2 "chat --index on a missing index" -- "$BIN" chat --model "$T/ft" --index "$T/none.db"
has "$T/err" "none.db" "message names the index"
expect 2 "chat --top-k 0" -- "$BIN" chat --model "$T/ft" --index "$T/posts.db" --top-k 0
has "$T/err" "top-k" "message names --top-k"

[ "$fails" = 0 ] && echo "e2e_chat_grounded: all passed" || echo "e2e_chat_grounded: $fails failed"
[ "$fails" = 0 ]
