/*
 * cmd_index.c — `truthgpt index CORPUS --out posts.db`: the search index of
 * a corpus (docs/search.md). Incremental: documents whose id is indexed
 * already are skipped, so re-running after a new ingest adds only the new ones.
 */
#include <stdio.h>

#include "cli.h"
#include "core/core.h"
#include "search/search.h"

int tg_cmd_index(int argc, char **argv) {
    const char *out = NULL;
    int quiet = 0, json = 0;
    tg_opt opts[] = {
        {"out", TG_OPT_STR, &out, "DB", "the index to create or extend (SQLite, e.g. posts.db)"},
        {"quiet", TG_OPT_FLAG, &quiet, NULL, "no progress line"},
        {"json", TG_OPT_FLAG, &json, NULL, "print the counts as one JSON object"},
        {0},
    };
    char *pos[2];
    int npos;
    int rc = tg_args_parse("truthgpt index CORPUS --out DB [--quiet] [--json]",
                           "Indexes every document of CORPUS (an ingest output directory, or a JSONL file of\n"
                           "{\"id\",\"text\",\"author\",\"created_at\",\"source\",\"url\"} lines) for full-text search:\n"
                           "SQLite FTS5 with BM25 ranking, unicode61 words, and bigrams for Chinese, Japanese and\n"
                           "Korean. Documents whose id is already in DB are skipped, so running it again after a new\n"
                           "ingest adds only what is new. DB is in WAL mode: searches keep working while it grows.",
                           opts, argc, argv, pos, 1, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (npos != 1) {
        fprintf(stderr, "truthgpt: index: give one CORPUS (an ingest directory or a JSONL file)\n");
        return 2;
    }
    if (!out) {
        fprintf(stderr, "truthgpt: index: --out DB is required (the index file to create or extend)\n");
        return 2;
    }
    if (!tg_path_exists(pos[0])) {
        tg_error_set(TG_ERR_INPUT, "%s: cannot open: no such file or directory", pos[0]);
        return tg_cli_fail(TG_ERR_INPUT);
    }
    tg_search_db *db;
    if ((rc = tg_search_open(out, 1, &db)) != TG_OK) return tg_cli_fail(rc);
    tg_index_stats st;
    rc = tg_search_index_corpus(db, pos[0], quiet || json, &st);
    int64_t total = rc == TG_OK ? tg_search_count(db) : 0;
    tg_search_close(db);
    if (rc != TG_OK) return tg_cli_fail(rc);
    if (json)
        printf("{\"read\":%lld,\"added\":%lld,\"skipped\":%lld,\"malformed\":%lld,\"documents\":%lld,\"seconds\":%.3f}\n",
               (long long)st.read, (long long)st.added, (long long)st.skipped, (long long)st.malformed,
               (long long)total, st.seconds);
    else
        printf("indexed %s: %lld new, %lld already there, %lld malformed lines skipped; %s holds %lld documents\n",
               pos[0], (long long)st.added, (long long)st.skipped, (long long)st.malformed, out, (long long)total);
    return 0;
}
