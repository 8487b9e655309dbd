/*
 * cmd_search.c — `truthgpt search DB "query"`: ranked posts of an index
 * (docs/search.md) with highlighted snippets, author, date and URL; filters
 * by author and date range; --json for scripts.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "search/search.h"

/* Prints s with its **match** marks as bold on a terminal, as they are otherwise. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

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

/* The q-quantile of sorted v[0..n) by nearest rank: v[ceil(q*n) - 1]. */
static double pct(const double *v, size_t n, double q) {
    size_t k = (size_t)ceil(q * (double)n);
    return v[k ? k - 1 : 0];
}

/* --queries FILE: every line a query, timed; prints the latency figures as JSON. */
static int run_query_file(tg_search_db *db, const char *path, const tg_search_params *p) {
    FILE *f = fopen(path, "rb");
    if (!f) return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    double *ms = NULL;
    size_t n = 0, cap = 0;
    int64_t hits = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int rc = TG_OK;
    double t_all = tg_now();
    while (rc == TG_OK && (len = getline(&line, &lcap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        tg_search_results r;
        double t0 = tg_now();
        int qr = tg_search_run(db, line, p, &r);
        double dt = (tg_now() - t0) * 1e3;
        if (qr == TG_ERR_INPUT) continue; /* a line without words */
        if ((rc = qr) != TG_OK) break;
        hits += r.n;
        tg_search_results_free(&r);
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            double *m = realloc(ms, cap * sizeof *m);
            if (!m) {
                rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
                break;
            }
            ms = m;
        }
        ms[n++] = dt;
    }
    t_all = tg_now() - t_all;
    free(line);
    fclose(f);
    if (rc == TG_OK && n == 0) rc = tg_error_set(TG_ERR_INPUT, "%s: no queries with words", path);
    if (rc == TG_OK) {
        qsort(ms, n, sizeof *ms, cmp_double);
        double sum = 0;
        for (size_t i = 0; i < n; i++) sum += ms[i];
        printf("{\"queries\":%zu,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
               "\"results_per_query\":%.2f,\"queries_per_s\":%.1f}\n",
               n, sum / (double)n, pct(ms, n, 0.5), pct(ms, n, 0.9), pct(ms, n, 0.99), ms[n - 1], (double)hits / (double)n,
               (double)n / t_all);
    }
    free(ms);
    return rc;
}

int tg_cmd_search(int argc, char **argv) {
    tg_search_params p = tg_search_default_params();
    int json = 0;
    const char *queries = NULL;
    tg_opt opts[] = {
        {"limit", TG_OPT_INT, &p.limit, "N", "results to show (1..1000, default 10)"},
        {"author", TG_OPT_STR, &p.author, "A", "only posts by this handle (alice, @alice, @alice@host)"},
        {"since", TG_OPT_STR, &p.since, "DATE", "only posts from DATE on (YYYY, YYYY-MM, YYYY-MM-DD[THH:MM:SS])"},
        {"until", TG_OPT_STR, &p.until, "DATE", "only posts up to DATE, inclusive (2024-05: to the end of May)"},
        {"snippet-chars", TG_OPT_INT, &p.snippet_chars, "N", "characters of each snippet (default 160)"},
        {"json", TG_OPT_FLAG, &json, NULL, "print {\"query\", \"results\": [...]} as JSON"},
        {"queries", TG_OPT_STR, &queries, "FILE", "run every line of FILE as a query (no QUERY); print latency as JSON"},
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
    if (queries && npos != 1) {
        fprintf(stderr, "truthgpt: search: --queries FILE takes DB only (the queries come from FILE)\n");
        return 2;
    }
    if (queries) {
        tg_search_db *db;
        if ((rc = tg_search_open(pos[0], 0, &db)) != TG_OK) return tg_cli_fail(rc);
        rc = run_query_file(db, queries, &p);
        tg_search_close(db);
        return rc == TG_OK ? 0 : tg_cli_fail(rc);
    }
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
