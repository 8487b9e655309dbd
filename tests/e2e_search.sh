#!/usr/bin/env bash
# e2e_search.sh — `truthgpt index` and `truthgpt search` through the real
# program: an X archive and a Mastodon outbox ingested and indexed (author and
# URL carried through), incremental re-indexing, ranked and filtered results
# as text and JSON, the Chinese fortunes found by Chinese words when
# installed, and bad input (missing, corrupt and foreign databases, empty and
# FTS5-syntax queries, bad dates) exiting 2 with a message.
# Usage: tests/e2e_search.sh path/to/truthgpt
set -u
BIN=${1:?usage: e2e_search.sh TRUTHGPT}
T=$(mktemp -d /tmp/tg_e2e_search.XXXXXX)
. "$(cd "$(dirname "$0")" && pwd)/lib_e2e.sh" # ok, bad, expect, has, hasnt; $fails

expect 0 "index --help" -- "$BIN" index --help
has "$T/out" "--out" "index --help lists --out"
expect 0 "search --help" -- "$BIN" search --help
has "$T/out" "--author" "search --help lists --author"
expect 2 "index without --out" -- "$BIN" index "$T"
expect 2 "index of a missing corpus" -- "$BIN" index "$T/nope" --out "$T/x.db"
has "$T/err" "nope" "message names the corpus"

mkdir -p "$T/xa/data" "$T/ma"
cat >"$T/xa/data/account.js" <<'X'
window.YTD.account.part0 = [ {"account": {"username": "carol", "accountId": "1"}} ]
X
cat >"$T/xa/data/tweets.js" <<'X'
window.YTD.tweets.part0 = [
 {"tweet": {"id_str": "501", "created_at": "Mon Jan 08 10:00:00 +0000 2024", "full_text": "Sourdough starter is finally alive after ten days", "entities": {}}},
 {"tweet": {"id_str": "502", "created_at": "Tue Mar 12 10:00:00 +0000 2024", "full_text": "The lighthouse keeper waved at our ferry this morning", "entities": {}}}
]
X
cat >"$T/ma/outbox.json" <<'X'
{"orderedItems": [
 {"type": "Create", "actor": "https://social.example/users/dave", "object": {"type": "Note", "id": "https://social.example/users/dave/statuses/9",
  "url": "https://social.example/@dave/9", "published": "2024-06-01T08:00:00Z", "content": "<p>My sourdough starter died. Again.</p>"}}
]}
X
expect 0 "ingest X + Mastodon" -- "$BIN" ingest "$T/xa" "$T/ma" --out "$T/corpus" --val-frac 0
expect 0 "index the corpus" -- "$BIN" index "$T/corpus" --out "$T/posts.db" --json
has "$T/out" '"added":3' "3 documents added"
expect 0 "index again" -- "$BIN" index "$T/corpus" --out "$T/posts.db" --json
has "$T/out" '"added":0,"skipped":3' "re-indexing adds nothing"
printf '{"id":"n1","text":"A new post about the sourdough festival"}\n' >"$T/more.jsonl"
expect 0 "index a new file" -- "$BIN" index "$T/more.jsonl" --out "$T/posts.db" --json
has "$T/out" '"added":1,' "one new document"
has "$T/out" '"documents":4' "4 documents in all"

expect 0 "search" -- "$BIN" search "$T/posts.db" "sourdough starter"
has "$T/out" "https://x.com/carol/status/501" "X post's URL shown"
has "$T/out" "@dave@social.example" "Mastodon author shown"
has "$T/out" "\*\*sourdough\*\*" "match highlighted"
expect 0 "search --json" -- "$BIN" search "$T/posts.db" "sourdough starter" --json --limit 2
if node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const ids = r.results.map(x => x.id);
if (r.results.length !== 2) throw new Error("want 2 results, got " + ids);
if (!r.results[0].score || r.results[0].score < r.results[1].score) throw new Error("not by score");
if (!ids.includes("501")) throw new Error("no 501 in " + ids);
if (r.results.find(x => x.id === "501").author !== "@carol") throw new Error("author");
' "$T/out"; then ok "JSON results ranked, with authors"; else bad "JSON results"; fi
expect 0 "author filter" -- "$BIN" search "$T/posts.db" "sourdough" --author dave --json
has "$T/out" 'statuses/9' "dave's post"
hasnt "$T/out" '"501"' "not carol's"
expect 0 "date filter" -- "$BIN" search "$T/posts.db" "sourdough lighthouse" --since 2024-02 --until 2024-03 --json
has "$T/out" '"502"' "March post inside the range"
hasnt "$T/out" '"501"' "January post outside the range"
expect 0 "FTS5 syntax is plain text" -- "$BIN" search "$T/posts.db" 'sourdough" NEAR( * )) OR'
has "$T/out" "sourdough" "still finds sourdough"
expect 0 "no match" -- "$BIN" search "$T/posts.db" "zzyzx"
has "$T/out" "no posts match" "says so"

expect 2 "empty query" -- "$BIN" search "$T/posts.db" ""
has "$T/err" "no words" "message says the query has no words"
expect 2 "punctuation-only query" -- "$BIN" search "$T/posts.db" '"*()'
expect 2 "bad --since" -- "$BIN" search "$T/posts.db" x --since yesterday
has "$T/err" "since" "message names --since"
expect 2 "bad --limit" -- "$BIN" search "$T/posts.db" x --limit 0
expect 2 "missing db" -- "$BIN" search "$T/none.db" x
has "$T/err" "none.db" "message names the missing db"
head -c 5000 /dev/urandom >"$T/corrupt.db"
expect 2 "corrupt db" -- "$BIN" search "$T/corrupt.db" x
has "$T/err" "corrupt.db" "message names the corrupt db"
cp "$T/corrupt.db" "$T/corrupt2.db"
expect 2 "index --out onto a corrupt file" -- "$BIN" index "$T/corpus" --out "$T/corrupt2.db"
cmp -s "$T/corrupt.db" "$T/corrupt2.db" && ok "corrupt file left as it was" || bad "corrupt file changed"
expect 2 "search a directory" -- "$BIN" search "$T" x
printf 'sourdough\nlighthouse keeper\n\n' >"$T/q.txt"
expect 0 "--queries FILE" -- "$BIN" search "$T/posts.db" --queries "$T/q.txt"
has "$T/out" '"queries":2' "two queries timed (the blank line skipped)"
expect 2 "--queries with a QUERY too" -- "$BIN" search "$T/posts.db" x --queries "$T/q.txt"
expect 2 "--queries FILE missing" -- "$BIN" search "$T/posts.db" --queries "$T/none.txt"
has "$T/err" "none.txt" "message names the queries file"

# The Chinese fortunes, found by Chinese words (when fortunes-zh is installed).
ZH=/usr/share/games/fortunes
[ -f "$ZH/tang300" ] || ZH=/usr/share/games/fortunes/zh
if [ -f "$ZH/tang300" ]; then
  expect 0 "ingest Chinese fortunes" -- "$BIN" ingest "$ZH"/tang300 "$ZH"/song100 --split % --out "$T/zh" --val-frac 0
  expect 0 "index them" -- "$BIN" index "$T/zh" --out "$T/zh.db" --quiet
  expect 0 "search 明月" -- "$BIN" search "$T/zh.db" "明月" --json --limit 5
  if node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
if (r.results.length !== 5) throw new Error("want 5 results, got " + r.results.length);
for (const x of r.results) if (!x.text.includes("明月")) throw new Error("no 明月 in " + x.text.slice(0, 40));
if (!r.results[0].highlight.includes("**明月**")) throw new Error("not highlighted: " + r.results[0].highlight);
' "$T/out"; then ok "every hit holds 明月, highlighted"; else bad "Chinese search"; fi
else
  echo "skip Chinese fortunes (fortunes-zh not installed)"
fi

rm -rf "$T"
[ "$fails" = 0 ] && echo "e2e_search: all passed" || echo "e2e_search: $fails failed"
[ "$fails" = 0 ]
