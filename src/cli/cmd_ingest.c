/*
 * cmd_ingest.c — `truthgpt ingest INPUT... --out CORPUS`: posts into a
 * clean, deduplicated corpus (src/data/ingest.c does the work).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"
#include "data/ingest.h"

static const char *DESCRIPTION =
    "Reads posts and writes a clean, deduplicated corpus: CORPUS/train.jsonl and\n"
    "CORPUS/val.jsonl (one {\"id\",\"text\",\"source\",\"created_at\"} a line) and\n"
    "CORPUS/stats.json, then prints a summary table.\n"
    "\n"
    "INPUT formats (detected from names and archive contents, or --format):\n"
    "  text      plain text files; documents split by --split\n"
    "  jsonl     .jsonl/.ndjson/.json, one object a line, text at --field\n"
    "  x         an X/Twitter archive: the .zip or its folder (data/tweets.js,\n"
    "            older tweet.js, split tweets-partN.js); t.co links expanded,\n"
    "            retweets skipped, HTML entities decoded, id_str and created_at kept\n"
    "  mastodon  a Mastodon archive (.zip, .tar.gz or folder with outbox.json):\n"
    "            Notes kept as plain text, boosts dropped\n"
    "\n"
    "Every document: invalid UTF-8 bytes become U+FFFD (counted); terminal escape\n"
    "sequences and control characters other than newline and tab are removed;\n"
    "line endings become \\n; empty and short documents are dropped; exact\n"
    "duplicates (content hash) and near-duplicates (MinHash + LSH over character\n"
    "5-grams) are dropped, the first one seen is kept; the train/val split is a\n"
    "function of the content hash, so a post always lands on the same side.\n"
    "\n"
    "Inputs stream: memory stays bounded by --max-bytes and the batch, whatever\n"
    "the input size, except for the duplicate indexes (about 8 bytes a document,\n"
    "plus 8 a band with --near-dup), whose size is reported. A malformed line or\n"
    "file is reported with its name and line and skipped (--strict: fatal).\n"
    "Files are written under temporary names and renamed at the end: a failed\n"
    "run leaves CORPUS as it was.\n"
    "\n"
    "Exit status: 0 done, 1 runtime failure, 2 bad usage or input (no documents\n"
    "kept, a missing or unreadable INPUT, or a malformed line with --strict).\n"
    "\n"
    "examples:\n"
    "  truthgpt ingest /usr/share/games/fortunes/fortunes --split % --out corpus\n"
    "  truthgpt ingest twitter-2024.zip --drop-links --out corpus\n"
    "  truthgpt ingest posts.jsonl --field tweet.full_text --near-dup 0 --out corpus";

int tg_cmd_ingest(int argc, char **argv) {
    tg_ingest_opts o = tg_ingest_default_opts();
    const char *out = NULL;
    o.threads = 0;
    tg_opt opts[] = {
        {"out", TG_OPT_STR, &out, "CORPUS", "output directory (created if missing)"},
        {"format", TG_OPT_STR, &o.format, "F", "text, jsonl, x or mastodon (default: detect per input)"},
        {"split", TG_OPT_STR, &o.split, "MODE", "text: blank-line, line, or a separator line such as %"},
        {"field", TG_OPT_STR, &o.field, "PATH", "jsonl: dotted path of the text, e.g. tweet.full_text"},
        {"min-chars", TG_OPT_INT, &o.min_chars, "N", "drop documents with fewer characters"},
        {"max-bytes", TG_OPT_I64, &o.max_bytes, "N", "skip longer lines/documents (bounds memory)"},
        {"near-dup", TG_OPT_DOUBLE, &o.near_dup, "J", "near-duplicate Jaccard threshold, 0 = off"},
        {"val-frac", TG_OPT_DOUBLE, &o.val_frac, "F", "fraction of documents for val.jsonl"},
        {"drop-links", TG_OPT_FLAG, &o.drop_links, NULL, "x: drop t.co links instead of expanding them"},
        {"keep-retweets", TG_OPT_FLAG, &o.keep_retweets, NULL, "x: keep retweets (\"RT @user: ...\")"},
        {"strict", TG_OPT_FLAG, &o.strict, NULL, "a malformed line or file is fatal (exit 2)"},
        {"threads", TG_OPT_INT, &o.threads, "N", "worker threads, 0 = all cores"},
        {"quiet", TG_OPT_FLAG, &o.quiet, NULL, "no progress line, warnings or summary"},
        {0},
    };
    char *pos[4096];
    int npos;
    int rc = tg_args_parse("truthgpt ingest INPUT... --out CORPUS [options]", DESCRIPTION, opts, argc, argv, pos,
                           4096, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (!out) {
        fprintf(stderr, "truthgpt: ingest: --out CORPUS is required (see --help)\n");
        return 2;
    }
    if (npos == 0) {
        fprintf(stderr, "truthgpt: ingest: no INPUT given (see --help)\n");
        return 2;
    }
    tg_ingest_stats st;
    rc = tg_ingest_run(&o, pos, npos, out, &st);
    if (rc != TG_OK) return tg_cli_fail(rc);
    if (!o.quiet) tg_ingest_print_summary(&st, out, stdout);
    return 0;
}
