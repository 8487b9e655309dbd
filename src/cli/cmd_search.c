/*
 * cmd_search.c — `truthgpt search DB "query"`: ranked posts of an index
 * (docs/search.md) with highlighted snippets, author, date and URL; filters
 * by author and date range; --json for scripts.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "search/search.h"

/* Prints s with its **match** marks as bold on a terminal, as they are otherwise. */
static void print_marked(const char *s, int tty) {
    if (!tty) {
        fputs(s, stdout);
        return;
    }
    int bold = 0;
    for (const char *p = s; *p; p++) {
        if (p[0] == '*' && p[1] == '*') {
            fputs(bold ? "\033[0m" : "\033[1m", stdout);
            bold = !bold;
            p++;
        } else putchar(*p);
    }
    if (bold) fputs("\033[0m", stdout);
}

int tg_cmd_search(int argc, char **argv) {
    tg_search_params p = tg_search_default_params();
    int json = 0;
    tg_opt opts[] = {
        {"limit", TG_OPT_INT, &p.limit, "N", "results to show (1..1000, default 10)"},
        {"author", TG_OPT_STR, &p.author, "A", "only posts by this handle (alice, @alice, @alice@host)"},
        {"since", TG_OPT_STR, &p.since, "DATE", "only posts from DATE on (YYYY, YYYY-MM, YYYY-MM-DD[THH:MM:SS])"},
        {"until", TG_OPT_STR, &p.until, "DATE", "only posts up to DATE, inclusive (2024-05: to the end of May)"},
        {"snippet-chars", TG_OPT_INT, &p.snippet_chars, "N", "characters of each snippet (default 160)"},
        {"json", TG_OPT_FLAG, &json, NULL, "print {\"query\", \"results\": [...]} as JSON"},
        {0},
    };
    char *pos[3];
    int npos;
    int rc = tg_args_parse("truthgpt search DB QUERY [--limit N] [--author A] [--since DATE] [--until DATE] [--json]",
                           "Searches the posts of DB (made by truthgpt index) for QUERY's words, best first by BM25.\n"
                           "Any word may match (more matching words rank higher); punctuation and FTS5 operators\n"
                           "in QUERY are plain text. Chinese, Japanese and Korean words are matched as substrings.",
                           opts, argc, argv, pos, 2, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (npos != 2) {
        fprintf(stderr, "truthgpt: search: give DB and QUERY (truthgpt search posts.db \"words\")\n");
        return 2;
    }
    if (p.limit < 1 || p.limit > TG_SEARCH_MAX_LIMIT) {
        fprintf(stderr, "truthgpt: search: --limit: %d is not in 1..%d\n", p.limit, TG_SEARCH_MAX_LIMIT);
        return 2;
    }
    if (p.since && tg_search_check_date("--since", p.since) != TG_OK) return tg_cli_fail(TG_ERR_INPUT);
    if (p.until && tg_search_check_date("--until", p.until) != TG_OK) return tg_cli_fail(TG_ERR_INPUT);
    tg_search_term t[1];
    if (tg_search_terms(pos[1], t, 1) == 0) {
        fprintf(stderr, "truthgpt: search: QUERY '%s' has no words to search for\n", pos[1]);
        return 2;
    }
    tg_search_db *db;
    if ((rc = tg_search_open(pos[0], 0, &db)) != TG_OK) return tg_cli_fail(rc);
    tg_search_results r;
    rc = tg_search_run(db, pos[1], &p, &r);
    tg_search_close(db);
    if (rc != TG_OK) return tg_cli_fail(rc);
    if (json) {
        json_t *o = json_object(), *arr = json_array();
        json_object_set_new(o, "query", json_string(pos[1]));
        for (int i = 0; i < r.n; i++) json_array_append_new(arr, tg_search_hit_json(&r.hits[i], 1));
        json_object_set_new(o, "results", arr);
        char *s = json_dumps(o, JSON_COMPACT);
        puts(s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        int tty = isatty(1);
        if (r.n == 0) printf("no posts match '%s'\n", pos[1]);
        for (int i = 0; i < r.n; i++) {
            const tg_search_hit *h = &r.hits[i];
            printf("%d. %s  %s  score %.2f  id %s\n", i + 1, h->author ? h->author : "(no author)",
                   h->created_at ? h->created_at : "(no date)", h->score, h->id);
            if (h->url) printf("   %s\n", h->url);
            fputs("   ", stdout);
            print_marked(h->highlight, tty);
            fputs("\n\n", stdout);
        }
    }
    tg_search_results_free(&r);
    return 0;
}
