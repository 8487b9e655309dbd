#!/usr/bin/env bash
# bench_search.sh — the search index at scale: generates N synthetic posts
# (default 1,000,000; once, in /tmp), times `truthgpt index` (MB/s, peak RSS),
# an incremental re-run over the same corpus (nothing new), query latency
# p50/p99 for 1- to 5-word queries (`truthgpt search --queries`, $QUERIES of
# each length, default 1,000; goal p99 < 20 ms on 2 cores), and the time grounding adds to a
# grounded chat request's first token (`serve --index`, a tiny model: the
# retrieval and the longer prompt's prefill, p50 of 20 requests each way).
# Usage: bench/bench_search.sh [TRUTHGPT] [POSTS]
set -euo pipefail
BIN=$(realpath "${1:-build/truthgpt}")
N=${2:-1000000}
QUERIES=${QUERIES:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${TMPDIR:-/tmp}/truthgpt-bench-search
mkdir -p "$DIR"
IN=$DIR/posts-$N.jsonl
if [ ! -s "$IN" ]; then
  echo "generating $IN ($N synthetic posts)..." >&2
  /usr/bin/python3 - "$IN" "$N" <<'PY'
import json, random, sys
path, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
# A Zipf-like vocabulary of 20,000 made-up words plus common English ones; some Chinese posts.
common = "the of and to a in is it you that he was for on are with as i his they be at one have this from or had by".split()
vocab = common + ["".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(rng.randint(2, 4))) for _ in range(20000)]
weights = [1.0 / (i + 1) ** 1.05 for i in range(len(vocab))]
cum, t = [], 0.0
for w in weights:
    t += w
    cum.append(t)
han = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
with open(path, "w") as f:
    for i in range(n):
        if i % 50 == 0:
            text = "".join(rng.choice(han) for _ in range(rng.randint(8, 40)))
        else:
            text = " ".join(rng.choices(vocab, cum_weights=cum, k=rng.randint(5, 40)))
        f.write(json.dumps({"id": "p%d" % i, "text": text, "author": "@user%d" % rng.randint(0, 5000),
                            "created_at": "20%02d-%02d-%02dT12:00:00Z" % (rng.randint(15, 24), rng.randint(1, 12), rng.randint(1, 28)),
                            "url": "https://x.com/i/status/%d" % (10**15 + i)}, ensure_ascii=False) + "\n")
PY
fi
MB=$(awk -v b="$(stat -c %s "$IN")" 'BEGIN { printf "%.1f", b / 1e6 }')
DB=$DIR/posts-$N.db
rm -f "$DB" "$DB-wal" "$DB-shm"
echo "== index: $N posts, $MB MB (load average $(cut -d' ' -f1-3 /proc/loadavg))"
/usr/bin/time -f "%e %M" -o "$DIR/time.txt" "$BIN" index "$IN" --out "$DB" --quiet --json >"$DIR/index.json"
read -r secs rss <"$DIR/time.txt"
cat "$DIR/index.json"
awk -v s="$secs" -v mb="$MB" -v r="$rss" 'BEGIN { printf "index build: %.1f s, %.1f MB/s, peak RSS %.0f MB\n", s, mb / s, r / 1024 }'
echo "index size: $(du -m "$DB" | cut -f1) MB"
/usr/bin/time -f "%e %M" -o "$DIR/time.txt" "$BIN" index "$IN" --out "$DB" --quiet --json >"$DIR/index2.json"
read -r secs2 rss2 <"$DIR/time.txt"
echo "incremental re-run (nothing new): $secs2 s, $(cat "$DIR/index2.json")"

echo "== query latency ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
/usr/bin/python3 - "$IN" "$DIR" "$QUERIES" <<'PY'
import json, random, sys
path, d = sys.argv[1], sys.argv[2]
rng = random.Random(11)
words = []
with open(path) as f:
    for i, line in enumerate(f):
        if i % 97 == 0:
            t = json.loads(line)["text"]
            if " " in t: words.extend(t.split())
        if len(words) > 200000: break
for k in range(1, 6):
    with open("%s/queries-%d.txt" % (d, k), "w") as q:
        for _ in range(int(sys.argv[3])): q.write(" ".join(rng.choice(words) for _ in range(k)) + "\n")
PY
for k in 1 2 3 4 5; do
  printf "%d-word queries: " "$k"
  "$BIN" search "$DB" --queries "$DIR/queries-$k.txt" --limit 10
done

echo "== grounded chat: added time to first token"
M=$DIR/model
if [ ! -d "$M/run" ]; then
  mkdir -p "$M"
  head -c 400000 "$IN" | sed 's/.*"text": "\([^"]*\)".*/\1/' >"$M/text.txt"
  "$BIN" tokenize --bytes "$M/text.txt" --out "$M/shards" >/dev/null
  "$BIN" train --data "$M/shards" --out "$M/run" --layers 4 --heads 4 --dim 256 --ctx 1024 --steps 5 --batch 2 \
    --eval-every 0 --threads 2 >/dev/null 2>&1
fi
"$BIN" serve --model "$M/run" --index "$DB" --port 0 --threads 2 --parallel 1 >"$DIR/server.log" 2>&1 &
SP=$!
trap 'kill $SP 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$DIR/server.log"); [ -n "$PORT" ] && break; sleep 0.2; done
node - "http://127.0.0.1:$PORT" "$DIR/queries-3.txt" <<'JS'
const [base, qfile] = process.argv.slice(2);
const qs = require('fs').readFileSync(qfile, 'utf8').split('\n').filter(Boolean).slice(0, 20);
async function ttft(q, grounded) {
  const t0 = performance.now();
  const r = await fetch(base + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: q }], max_tokens: 1, stream: true, temperature: 0,
                           grounding: { index: grounded, top_k: 3 } }) });
  const rd = r.body.getReader();
  let prompt = 0, buf = '';
  for (;;) { const { value, done } = await rd.read(); if (done) break; buf += Buffer.from(value).toString(); if (buf.includes('"content":"') && buf.split('data:').length > 2) break; }
  const dt = performance.now() - t0;
  rd.cancel().catch(() => {});
  return dt;
}
(async () => {
  const a = [], b = [];
  for (const q of qs) { a.push(await ttft(q, false)); b.push(await ttft(q, true)); }
  const p50 = (v) => v.slice().sort((x, y) => x - y)[Math.ceil(v.length / 2) - 1];
  console.log(JSON.stringify({ requests: qs.length, ttft_p50_ms_plain: +p50(a).toFixed(1), ttft_p50_ms_grounded: +p50(b).toFixed(1),
                               added_p50_ms: +(p50(b) - p50(a)).toFixed(1) }));
})();
JS
