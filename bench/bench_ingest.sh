#!/usr/bin/env bash
# bench_ingest.sh — ingest throughput on JSONL posts: generates ~200 MB of
# synthetic posts in /tmp (once), then times `truthgpt ingest` with the
# near-duplicate index on (--near-dup 0.9) and off (--near-dup 0), and prints
# MB/s and peak RSS of each. Goal (issue 3): >= 100 MB/s on 2 cores.
# Usage: bench/bench_ingest.sh [TRUTHGPT] [MB] [THREADS]
set -euo pipefail
BIN=${1:-build/truthgpt}
MB=${2:-200}
THREADS=${3:-2}
DIR=${TMPDIR:-/tmp}/truthgpt-bench-ingest
IN=$DIR/posts-${MB}mb.jsonl
mkdir -p "$DIR"
if [ ! -s "$IN" ]; then
  echo "generating $IN (${MB} MB of synthetic posts)..." >&2
  # Posts: 5-60 words from a Zipf-ish vocabulary, some repeated (exact
  # duplicates) and some lightly edited (near-duplicates), with X-like fields.
  /usr/bin/python3 - "$IN" "$MB" <<'PY'
import json, random, sys
path, mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(1234)
words = ("the of and to a in is it you that he was for on are with as I his they be at one have this from or had by "
         "hot word but what some we can out other were all there when up use your how said an each she which do their "
         "time if will way about many then them write would like so these her long make thing see him two has look more "
         "day could go come did number sound no most people my over know water than call first who may down side been "
         "now find any new work part take get place made live where after back little only round man year came show "
         "every good me give our under name very through just form sentence great think say help low line differ turn "
         "cause much mean before move right boy old too same tell does set three want air well also play small end put "
         "home read hand port large spell add even land here must big high such follow act why ask men change went "
         "light kind off need house picture try us again animal point mother world near build self earth father coffee "
         "😀 café naïve 東京 données über straße ñandú").split()
weights = [1.0 / (i + 1) for i in range(len(words))]
target = mb * 1_000_000
out = open(path, "w", encoding="utf-8")
size, n, recent = 0, 0, []
while size < target:
    r = rng.random()
    if recent and r < 0.03:
        text = rng.choice(recent)                       # exact duplicate
    elif recent and r < 0.06:
        w = rng.choice(recent).split(" ")
        w[rng.randrange(len(w))] = rng.choice(words)    # near-duplicate: one word changed
        text = " ".join(w)
    else:
        text = " ".join(rng.choices(words, weights, k=rng.randint(5, 60)))
        if rng.random() < 0.1: text += " https://example.com/" + str(rng.randrange(10**6))
    recent.append(text)
    if len(recent) > 1000: recent.pop(0)
    line = json.dumps({"id": str(10**15 + n), "created_at": "2024-03-%02dT12:00:00Z" % (1 + n % 28),
                       "user": {"name": "user%d" % (n % 5000), "followers": n % 997}, "lang": "en",
                       "text": text, "reply_count": n % 7, "retweet_count": n % 13}, ensure_ascii=False) + "\n"
    out.write(line)
    size += len(line.encode("utf-8"))
    n += 1
out.close()
PY
fi
BYTES=$(stat -c %s "$IN")
# MB/s is wall-clock; "MB per CPU-s" (input over user+sys time) is the
# figure to trust on a shared machine, where wall time includes waiting.
printf '\n%-26s %8s %9s %9s %8s %14s %9s\n' "ingest (JSONL, $THREADS thr)" "MB" "seconds" "MB/s" "CPU s" "MB per CPU-s" "peak MB"
for nd in 0.9 0; do
  rm -rf "$DIR/corpus"
  /usr/bin/time -f '%e %M %U %S' -o "$DIR/time.txt" "$BIN" ingest "$IN" --out "$DIR/corpus" --near-dup "$nd" \
      --threads "$THREADS" --quiet
  read -r secs kb usr sys < "$DIR/time.txt"
  kept=$(grep -m1 '"documents_kept"' "$DIR/corpus/stats.json" | tr -dc 0-9)
  near=$(grep -m1 '"near_duplicates"' "$DIR/corpus/stats.json" | tr -dc 0-9)
  awk -v b="$BYTES" -v s="$secs" -v kb="$kb" -v nd="$nd" -v kept="$kept" -v near="$near" -v u="$usr" -v y="$sys" 'BEGIN {
      printf "%-26s %8.1f %9.2f %9.1f %8.2f %14.1f %9.1f   (%d kept, %d near-dups)\n", "--near-dup " nd, b/1e6, s, b/1e6/s, u+y, b/1e6/(u+y), kb/1024, kept, near }'
done
rm -rf "$DIR/corpus"

# For comparison: the same file only parsed by jansson, one line at a time,
# on one thread. jansson was ingest's JSONL parser before simdjson, and this
# parse alone was slower than the whole ingest is now.
cat >"$DIR/jansson_floor.c" <<'C'
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "rb");
    if (!f) return 1;
    static char line[1 << 20];
    long n = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t e;
        json_t *o = json_loadb(line, strlen(line), 0, &e);
        if (o && json_is_string(json_object_get(o, "text"))) n++;
        json_decref(o);
    }
    fclose(f);
    printf("%ld\n", n);
    return 0;
}
C
if cc -O2 -o "$DIR/jansson_floor" "$DIR/jansson_floor.c" -ljansson 2>/dev/null; then
  /usr/bin/time -f '%e %M %U %S' -o "$DIR/time.txt" "$DIR/jansson_floor" "$IN" >/dev/null
  read -r secs kb usr sys < "$DIR/time.txt"
  awk -v b="$BYTES" -v s="$secs" -v kb="$kb" -v u="$usr" -v y="$sys" 'BEGIN {
      printf "%-26s %8.1f %9.2f %9.1f %8.2f %14.1f %9.1f   (1 thread, parse only)\n", "jansson parse alone", b/1e6, s, b/1e6/s, u+y, b/1e6/(u+y), kb/1024 }'
fi
