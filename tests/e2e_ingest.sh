#!/usr/bin/env bash
# e2e_ingest.sh — `truthgpt ingest` through the real program: --help, exit
# codes and messages on bad usage and bad input (nothing written to CORPUS),
# an X archive zipped by the `zip` command, and the bundled fortunes (English
# with --split %, Chinese with ANSI colour codes) when installed.
# Usage: tests/e2e_ingest.sh path/to/truthgpt
set -u
BIN=${1:?usage: e2e_ingest.sh TRUTHGPT}
T=$(mktemp -d /tmp/tg_e2e_ingest.XXXXXX)
. "$(cd "$(dirname "$0")" && pwd)/lib_e2e.sh" # ok, bad, expect, has, hasnt; $fails
empty_dir() { if [ -z "$(ls -A "$1" 2>/dev/null)" ]; then ok "$2"; else bad "$2: $(ls -A "$1")"; fi; }

expect 0 "--help" -- "$BIN" ingest --help
has "$T/out" "--split" "--help lists --split"
has "$T/out" "--near-dup" "--help lists --near-dup"
has "$T/out" "mastodon" "--help explains the formats"
expect 2 "no INPUT" -- "$BIN" ingest --out "$T/c"
expect 2 "no --out" -- "$BIN" ingest "$T/x"
expect 2 "bad --near-dup value" -- "$BIN" ingest x --out "$T/c" --near-dup abc
has "$T/err" "near-dup" "message names --near-dup"
expect 2 "unknown flag" -- "$BIN" ingest x --out "$T/c" --bogus

expect 2 "missing file" -- "$BIN" ingest "$T/nope.txt" --out "$T/c_missing"
has "$T/err" "nope.txt" "message names the missing file"
printf 'not a zip at all\n' >"$T/fake.zip"
expect 2 "a zip that is not a zip" -- "$BIN" ingest "$T/fake.zip" --out "$T/c_fake"
has "$T/err" "fake.zip" "message names the fake zip"
empty_dir "$T/c_fake" "nothing written for the fake zip"

printf 'first document here\n\nsecond\000document\n' >"$T/nul.txt"
expect 2 "NUL byte with --strict" -- "$BIN" ingest "$T/nul.txt" --out "$T/c_nul" --strict
has "$T/err" "nul.txt:3:" "message names file:line of the NUL byte"
empty_dir "$T/c_nul" "nothing written after the NUL byte"
expect 0 "NUL byte without --strict (rest of file skipped)" -- "$BIN" ingest "$T/nul.txt" --out "$T/c_nul2" --min-chars 1
has "$T/err" "nul.txt:3:" "warning names file:line"
has "$T/c_nul2/stats.json" '"malformed_files": 1' "stats count the skipped file"

# An X archive zipped by the zip command, with a split part file.
mkdir -p "$T/xa/data"
cat >"$T/xa/data/tweets.js" <<'JS'
window.YTD.tweets.part0 = [ {
  "tweet" : { "id_str" : "42", "created_at" : "Mon Jan 01 12:00:00 +0000 2024",
    "full_text" : "New blog post &gt;&gt; https://t.co/Ab12", "entities" : { "urls" : [ { "url" : "https://t.co/Ab12", "expanded_url" : "https://blog.example/new" } ] } }
}, {
  "tweet" : { "id_str" : "43", "created_at" : "Mon Jan 01 13:00:00 +0000 2024", "full_text" : "RT @x: not mine at all", "entities" : { } }
} ]
JS
cat >"$T/xa/data/tweets-part1.js" <<'JS'
window.YTD.tweets.part1 = [ { "tweet" : { "id_str" : "44", "full_text" : "from the second part file", "entities" : { } } } ]
JS
if command -v zip >/dev/null; then
  (cd "$T/xa" && zip -qr ../x.zip data)
  expect 0 "X archive (zip command)" -- "$BIN" ingest "$T/x.zip" --out "$T/c_x" --val-frac 0
  has "$T/c_x/train.jsonl" '"text":"New blog post >> https://blog.example/new"' "t.co link expanded, entities decoded"
  has "$T/c_x/train.jsonl" '"created_at":"2024-01-01T12:00:00Z"' "created_at kept (ISO 8601)"
  has "$T/c_x/train.jsonl" '"text":"from the second part file"' "split part file read"
  if grep -q 'not mine' "$T/c_x/train.jsonl"; then bad "retweet kept"; else ok "retweet skipped"; fi
  has "$T/out" "X retweets" "summary table shows the retweet"
else
  echo "skip X zip via the zip command (zip not installed)"
fi

# The bundled fortunes: English with --split %, Chinese with ANSI colours.
F=/usr/share/games/fortunes
if [ -f "$F/fortunes" ] && [ -f "$F/tang300" ]; then
  expect 0 "fortunes (English + Chinese)" -- "$BIN" ingest "$F/fortunes" "$F/tang300" "$F/song100" --split % --out "$T/c_f"
  n=$(wc -l <"$T/c_f/train.jsonl")
  if [ "$n" -gt 500 ]; then ok "fortunes: $n training documents"; else bad "fortunes: only $n documents"; fi
  if grep -q $'\x1b' "$T/c_f/train.jsonl" || grep -q 'u001b' "$T/c_f/train.jsonl"; then bad "escape codes left in the corpus"; else ok "no escape codes left"; fi
  has "$T/c_f/train.jsonl" '《' "Chinese text kept"
  if grep -q '"escape_sequences_removed": [1-9]' "$T/c_f/stats.json"; then ok "escape sequences counted"; else bad "escape sequences not counted"; fi
  has "$T/out" "kept" "summary table printed"
  has "$T/err" "MB/s" "progress line with MB/s"
else
  echo "skip fortunes (not installed)"
fi

if [ $fails -eq 0 ]; then rm -rf "$T"; echo "e2e_ingest: all passed"; exit 0; fi
echo "e2e_ingest: $fails failed (files in $T)"; exit 1
