/*
 * test_search.c — the search index (src/search): BM25 order and values
 * against a brute-force scoring of the same query (with the rule that drops
 * words found in most posts), exact recall of a planted
 * post among 100,000 generated ones, author and date filters against
 * hand-checked expectations, CJK queries, incremental re-indexing counts,
 * snippets, and bad input (corrupt, foreign and locked databases, empty,
 * huge and FTS5-syntax-breaking queries).
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "data/ingest.h"
#include "search/search.h"
#include "test_util.h"

static char g_tmp[64];

static char *tmp_path(const char *name) { return tg_path_join(g_tmp, name); }

static void write_str(const char *name, const char *s) {
    char *p = tmp_path(name);
    FILE *f = fopen(p, "wb");
    TG_ASSERT(f);
    fputs(s, f);
    fclose(f);
    free(p);
}

static tg_search_db *open_new(const char *name) {
    char *p = tmp_path(name);
    unlink(p);
    tg_search_db *db = NULL;
    TG_ASSERT(tg_search_open(p, 1, &db) == TG_OK);
    free(p);
    return db;
}

static void add(tg_search_db *db, const char *id, const char *text, const char *author, const char *date) {
    int added = 0;
    TG_ASSERT(tg_search_add(db, id, text, author, date, "test", NULL, &added) == TG_OK);
    TG_ASSERT(added);
}

/* -------------------------------------------------------- BM25 reference */

#define NDOC 3000
#define NVOCAB 40
#define MAXLEN 24

/* FTS5's bm25() with k1 = 1.2, b = 0.75 on one column (fts5_aux.c's
 * formula): sum over phrases of IDF * f*(k1+1) / (f + k1*(1 - b + b*D/avgdl)),
 * IDF = ln((N - n + 0.5)/(n + 0.5)), or 1e-6 where that is not positive. */
static void test_bm25_reference(void) {
    tg_search_db *db = open_new("bm25.db");
    static int words[NDOC][MAXLEN], len[NDOC];
    tg_rng rng;
    tg_rng_seed(&rng, 42);
    TG_ASSERT(tg_search_begin(db) == TG_OK);
    for (int d = 0; d < NDOC; d++) {
        len[d] = 3 + (int)(tg_rng_next(&rng) % (MAXLEN - 3));
        char text[MAXLEN * 8] = "", id[16];
        for (int i = 0; i < len[d]; i++) {
            /* Zipf-like: low word numbers are common, high ones rare. */
            double u = tg_rng_uniform(&rng);
            words[d][i] = (int)(NVOCAB * u * u * u);
            char w[8];
            snprintf(w, sizeof w, "%sw%d", i ? " " : "", words[d][i]);
            strcat(text, w);
        }
        snprintf(id, sizeof id, "d%d", d);
        add(db, id, text, NULL, NULL);
    }
    TG_ASSERT(tg_search_commit(db) == TG_OK);
    double avgdl = 0;
    for (int d = 0; d < NDOC; d++) avgdl += len[d];
    avgdl /= NDOC;
    const int queries[3][3] = {{3, 17, 30}, {0, 39, 25}, {12, 12, 12}};
    for (int q = 0; q < 3; q++) {
        char qs[64];
        snprintf(qs, sizeof qs, "W%d w%d, w%d!", queries[q][0], queries[q][1], queries[q][2]);
        int qw[3], nq = 0;
        for (int k = 0; k < 3; k++) {
            int dup = 0;
            for (int j = 0; j < nq; j++) dup |= qw[j] == queries[q][k];
            if (!dup) qw[nq++] = queries[q][k];
        }
        double *want = calloc(NDOC, sizeof *want);
        int matching = 0;
        /* A word in more than half of the posts is dropped while a rarer one
         * is left (tg_search_run, from 1000 posts on: its IDF is clamped to
         * 1e-6 anyway). */
        int n_with[3] = {0, 0, 0}, keep = 0, rarest = 0;
        for (int k = 0; k < nq; k++) {
            for (int d = 0; d < NDOC; d++) {
                int f = 0;
                for (int i = 0; i < len[d]; i++) f += words[d][i] == qw[k];
                n_with[k] += f > 0;
            }
            keep += 2 * n_with[k] <= NDOC;
            if (n_with[k] < n_with[rarest]) rarest = k;
        }
        if (q == 1) CHECK(keep == nq - 1); /* w0 is in most posts: this query tests the dropping */
        for (int k = 0; k < nq; k++) {
            if (2 * n_with[k] > NDOC && !(keep == 0 && k == rarest)) continue;
            double idf = log((NDOC - n_with[k] + 0.5) / (n_with[k] + 0.5));
            if (idf <= 0) idf = 1e-6;
            for (int d = 0; d < NDOC; d++) {
                int f = 0;
                for (int i = 0; i < len[d]; i++) f += words[d][i] == qw[k];
                if (f) want[d] += idf * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * len[d] / avgdl));
            }
        }
        for (int d = 0; d < NDOC; d++) matching += want[d] > 0;
        tg_search_params p = tg_search_default_params();
        p.limit = TG_SEARCH_MAX_LIMIT;
        tg_search_results r;
        CHECK(tg_search_run(db, qs, &p, &r) == TG_OK);
        CHECK_EQ_INT(r.n, matching < p.limit ? matching : p.limit);
        /* Each hit's score is its reference score, and the order is by score
         * (ties by insertion order). Tolerance 1e-9 relative: FTS5 sums in
         * another order. */
        int bad = 0;
        for (int i = 0; i < r.n; i++) {
            int d = atoi(r.hits[i].id + 1);
            if (fabs(r.hits[i].score - want[d]) > 1e-9 * want[d]) {
                if (bad++ < 3) fprintf(stderr, "query %s hit %d (%s): score %.12g, reference %.12g\n", qs, i,
                                       r.hits[i].id, r.hits[i].score, want[d]);
            }
            if (i > 0 && r.hits[i].score > r.hits[i - 1].score + 1e-12) bad++;
        }
        /* No document left out scores above the last one returned. */
        double last = r.n ? r.hits[r.n - 1].score : 0;
        int above = 0;
        for (int d = 0; d < NDOC; d++) {
            int in = 0;
            for (int i = 0; i < r.n && !in; i++) in = atoi(r.hits[i].id + 1) == d;
            if (!in && want[d] > last * (1 + 1e-9)) above++;
        }
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(above, 0);
        tg_search_results_free(&r);
        free(want);
    }
    tg_search_close(db);
}

/* ------------------------------------------------- recall at 100k posts */

static void test_planted_recall(void) {
    char *corpus = tmp_path("big.jsonl");
    FILE *f = fopen(corpus, "wb");
    TG_ASSERT(f);
    static const char *vocab[] = {"the", "a", "post", "today", "coffee", "train", "late", "again", "why", "is",
                                  "my", "code", "slow", "love", "this", "city", "rain", "weekend", "music", "new",
                                  "phone", "who", "else", "thinks", "so", "good", "bad", "team", "game", "win"};
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    const int N = 100000, planted = 73411;
    for (int d = 0; d < N; d++) {
        char text[512];
        int o = 0, n = 6 + (int)(tg_rng_next(&rng) % 20);
        for (int i = 0; i < n; i++) o += snprintf(text + o, sizeof text - (size_t)o, "%s%s", i ? " " : "", vocab[tg_rng_next(&rng) % 30]);
        if (d == planted) o += snprintf(text + o, sizeof text - (size_t)o, " the zeppelin landed in Reykjavik");
        fprintf(f, "{\"id\":\"g%d\",\"text\":\"%s\",\"author\":\"@u%d\",\"created_at\":\"2024-01-01T00:00:00Z\"}\n", d, text,
                d % 97);
    }
    fclose(f);
    tg_search_db *db = open_new("big.db");
    tg_index_stats st;
    CHECK(tg_search_index_corpus(db, corpus, 1, &st) == TG_OK);
    CHECK_EQ_INT(st.added, N);
    CHECK_EQ_INT(tg_search_count(db), N);
    tg_search_params p = tg_search_default_params();
    tg_search_results r;
    CHECK(tg_search_run(db, "zeppelin reykjavik", &p, &r) == TG_OK);
    CHECK_EQ_INT(r.n, 1);
    if (r.n == 1) {
        CHECK(!strcmp(r.hits[0].id, "g73411"));
        CHECK(strstr(r.hits[0].highlight, "**zeppelin**") != NULL);
        CHECK(strstr(r.hits[0].highlight, "**Reykjavik**") != NULL);
    }
    tg_search_results_free(&r);
    /* Rare words among common ones: the planted post still comes first. */
    CHECK(tg_search_run(db, "why is the zeppelin so late today", &p, &r) == TG_OK);
    CHECK_EQ_INT(r.n, 10);
    if (r.n) CHECK(!strcmp(r.hits[0].id, "g73411"));
    tg_search_results_free(&r);
    tg_search_close(db);
    free(corpus);
}

/* -------------------------------------------- filters, CJK, incremental */

static const char *SMALL =
    "{\"id\":\"1\",\"text\":\"The compiler optimises loops with vector instructions.\",\"author\":\"@alice\","
    "\"created_at\":\"2024-01-05T10:00:00Z\",\"url\":\"https://x.com/alice/status/1\"}\n"
    "{\"id\":\"2\",\"text\":\"Baking bread on Sundays: the compiler of recipes is my grandmother.\","
    "\"author\":\"@bob@m.example\",\"created_at\":\"2024-03-01T09:00:00Z\",\"url\":\"https://m.example/@bob/2\"}\n"
    "{\"id\":\"3\",\"text\":\"人生如梦，一尊还酹江月。\",\"author\":\"@su\",\"created_at\":\"1082-07-01\"}\n"
    "{\"id\":\"4\",\"text\":\"Compiler bugs are rare; usually it is your code, says the compiler team.\","
    "\"author\":\"@alice\",\"created_at\":\"2024-05-20T00:00:00Z\"}\n"
    "{\"id\":\"5\",\"text\":\"学而时习之，不亦说乎？有朋自远方来，不亦乐乎？\",\"author\":\"@kongzi\"}\n"
    "not json at all\n"
    "{\"text\":\"A post without an id, about compilers.\"}\n";

static int ids(tg_search_db *db, const char *q, const tg_search_params *p, char *out, size_t n) {
    tg_search_results r;
    out[0] = 0;
    int rc = tg_search_run(db, q, p, &r);
    if (rc != TG_OK) return rc;
    for (int i = 0; i < r.n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%s", i ? "," : "", strlen(r.hits[i].id) > 8 ? "H" : r.hits[i].id);
    }
    tg_search_results_free(&r);
    return TG_OK;
}

static void test_filters_cjk_incremental(void) {
    write_str("small.jsonl", SMALL);
    char *corpus = tmp_path("small.jsonl");
    tg_search_db *db = open_new("small.db");
    tg_index_stats st;
    CHECK(tg_search_index_corpus(db, corpus, 1, &st) == TG_OK);
    CHECK_EQ_INT(st.read, 7);
    CHECK_EQ_INT(st.added, 6);
    CHECK_EQ_INT(st.malformed, 1);
    char got[256];
    tg_search_params p = tg_search_default_params();
    /* "compiler" twice in 4 (longer), once in 1 and 2; 1 is the shortest. */
    CHECK(ids(db, "compiler", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "4,1,2"));
    if (strcmp(got, "4,1,2")) fprintf(stderr, "compiler: %s\n", got);
    p.author = "Alice";
    CHECK(ids(db, "compiler", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "4,1"));
    p.author = "@bob";
    CHECK(ids(db, "compiler", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "2"));
    p.author = "bo%";
    CHECK(ids(db, "compiler", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "")); /* LIKE wildcards are literal */
    p.author = NULL;
    p.since = "2024-02";
    CHECK(ids(db, "compiler", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "4,2"));
    p.until = "2024-03";
    CHECK(ids(db, "compiler", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "2"));
    p.since = NULL;
    p.until = "2024-01-05";
    CHECK(ids(db, "compiler", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "1"));
    p.until = "2024-13-5x";
    CHECK(tg_search_run(db, "compiler", &p, &(tg_search_results){0}) == TG_ERR_INPUT);
    p.until = NULL;
    p.limit = 1;
    CHECK(ids(db, "compiler", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "4"));
    p.limit = 0;
    CHECK(tg_search_run(db, "compiler", &p, &(tg_search_results){0}) == TG_ERR_INPUT);
    p = tg_search_default_params();
    /* "compilers" is another word: only the post without an id (keyed by its hash). */
    CHECK(ids(db, "compilers", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "H"));

    /* CJK: two-character words, a run inside a sentence, one character, and no match across punctuation. */
    CHECK(ids(db, "江月", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "3"));
    CHECK(ids(db, "有朋自远方来", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "5"));
    CHECK(ids(db, "梦", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "3"));
    CHECK(ids(db, "乐", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "5"));
    CHECK(ids(db, "如梦一", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, ""));
    CHECK(ids(db, "不亦 compiler", &p, got, sizeof got) == TG_OK);
    CHECK(strstr(got, "5") != NULL && strstr(got, "4") != NULL);
    tg_search_results r;
    CHECK(tg_search_run(db, "远方", &p, &r) == TG_OK);
    if (r.n == 1) CHECK(strstr(r.hits[0].highlight, "**远方**") != NULL);
    tg_search_results_free(&r);

    /* Incremental: the same corpus adds nothing; two new lines add two. */
    CHECK(tg_search_index_corpus(db, corpus, 1, &st) == TG_OK);
    CHECK_EQ_INT(st.added, 0);
    CHECK_EQ_INT(st.skipped, 6);
    write_str("small2.jsonl", "{\"id\":\"1\",\"text\":\"changed text, same id\"}\n"
                              "{\"id\":\"6\",\"text\":\"a sixth post about zebras\"}\n"
                              "{\"id\":\"7\",\"text\":\"a seventh post about zebras\"}\n");
    char *c2 = tmp_path("small2.jsonl");
    CHECK(tg_search_index_corpus(db, c2, 1, &st) == TG_OK);
    CHECK_EQ_INT(st.added, 2);
    CHECK_EQ_INT(st.skipped, 1);
    CHECK_EQ_INT(tg_search_count(db), 8);
    CHECK(ids(db, "zebras", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "6,7"));
    CHECK(ids(db, "changed", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "")); /* the first version of id 1 stays */
    tg_search_close(db);

    /* A read-only open sees the same; reopening for writing keeps everything. */
    char *path = tmp_path("small.db");
    CHECK(tg_search_open(path, 0, &db) == TG_OK);
    if (db) {
        CHECK_EQ_INT(tg_search_count(db), 8);
        int added = 0;
        CHECK(tg_search_add(db, "9", "x", NULL, NULL, NULL, NULL, &added) != TG_OK);
        tg_search_close(db);
    }
    free(path);
    free(c2);
    free(corpus);
}

/* --------------------------------------------------------------- queries */

static void test_query_safety(void) {
    tg_search_db *db = open_new("q.db");
    add(db, "a", "He said \"NEAR\" (twice) and then: a*b OR c AND NOT d", "@x", NULL);
    add(db, "b", "plain words only here", "@y", NULL);
    tg_search_params p = tg_search_default_params();
    const char *hostile[] = {"\"", "\"NEAR\"", "NEAR(a b)", "a*", "*", "(((", ")", "a OR", "AND", "NOT d",
                             "col:term", "^start", "{body}: x", "a\"b", "'; DROP TABLE posts; --", "\xff\xfe bad utf8",
                             "said\xc3"};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        tg_search_results r;
        int rc = tg_search_run(db, hostile[i], &p, &r);
        /* Either no words (an input error naming the query) or a result: never an SQL error. */
        CHECK(rc == TG_OK || (rc == TG_ERR_INPUT && strstr(tg_error_message(), "empty query")));
        if (rc == TG_OK) tg_search_results_free(&r);
    }
    char got[64];
    CHECK(ids(db, "\"NEAR\"", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "a"));
    CHECK(ids(db, "NOT", &p, got, sizeof got) == TG_OK);
    CHECK(!strcmp(got, "a"));
    CHECK(tg_search_run(db, "", &p, &(tg_search_results){0}) == TG_ERR_INPUT);
    CHECK(tg_search_run(db, "  ,;!? ", &p, &(tg_search_results){0}) == TG_ERR_INPUT);
    /* 100 KB of words: the first TG_SEARCH_MAX_TERMS are used. */
    size_t big = 100 * 1024;
    char *q = malloc(big + 1);
    for (size_t i = 0; i < big; i++) q[i] = "plain words (\"*"[i % 15];
    q[big] = 0;
    tg_search_results r;
    CHECK(tg_search_run(db, q, &p, &r) == TG_OK);
    CHECK_EQ_INT(r.n, 1);
    tg_search_results_free(&r);
    /* One 100 KB word is cut, not an error. */
    memset(q, 'z', big);
    CHECK(tg_search_run(db, q, &p, &r) == TG_OK);
    CHECK_EQ_INT(r.n, 0);
    free(q);
    tg_search_close(db);
}

/* --------------------------------------------------------------- snippets */

static void test_snippets(void) {
    tg_search_term t[4];
    int n = tg_search_terms("Zebra stripes", t, 4);
    CHECK_EQ_INT(n, 2);
    char *s, *h;
    const char *text = "Short text about a zebra.\nIt has stripes.";
    CHECK(tg_search_snippet(text, t, n, 160, "[", "]", &s, &h) == TG_OK);
    CHECK(!strcmp(s, "Short text about a zebra. It has stripes."));
    CHECK(!strcmp(h, "Short text about a [zebra]. It has [stripes]."));
    free(s);
    free(h);
    /* A long text: the window holds both words, with … at the cuts; "zebras" is not "zebra". */
    char longt[2048] = "";
    for (int i = 0; i < 30; i++) strcat(longt, "filler words go here ");
    strcat(longt, "zebras graze; a zebra with stripes runs ");
    for (int i = 0; i < 30; i++) strcat(longt, "more filler text ");
    CHECK(tg_search_snippet(longt, t, n, 60, "[", "]", &s, &h) == TG_OK);
    CHECK(strncmp(s, "\xE2\x80\xA6", 3) == 0);
    CHECK(strcmp(s + strlen(s) - 3, "\xE2\x80\xA6") == 0);
    CHECK(strstr(h, "a [zebra] with [stripes]") != NULL);
    CHECK(strstr(h, "[zebras]") == NULL);
    free(s);
    free(h);
    /* CJK: cut on code points, never inside one. */
    n = tg_search_terms("远方", t, 4);
    const char *zh = "学而时习之，不亦说乎？有朋自远方来，不亦乐乎？人不知而不愠，不亦君子乎？";
    CHECK(tg_search_snippet(zh, t, n, 16, "<", ">", &s, &h) == TG_OK);
    CHECK(strstr(h, "<远方>") != NULL);
    CHECK(tg_utf8_valid_prefix((const uint8_t *)s, strlen(s)) == strlen(s));
    free(s);
    free(h);
    /* Index text: bigrams and the last character. */
    char *b = tg_search_index_text("ab人生如梦c", strlen("ab人生如梦c"));
    CHECK(!strcmp(b, "ab 人生 生如 如梦 梦 c"));
    if (strcmp(b, "ab 人生 生如 如梦 梦 c")) fprintf(stderr, "index text: [%s]\n", b);
    free(b);
    n = tg_search_terms("Hello, 世界 \"x\" hello", t, 4);
    CHECK_EQ_INT(n, 3);
    char *fq = tg_search_fts_query(t, n);
    CHECK(!strcmp(fq, "\"hello\" OR \" 世界 \" OR \"x\""));
    free(fq);
}

/* ------------------------------------------------------------- bad files */

static void test_bad_files(void) {
    tg_search_db *db = NULL;
    char *p = tmp_path("missing.db");
    CHECK(tg_search_open(p, 0, &db) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "missing.db") != NULL);
    free(p);
    write_str("junk.db", "this is not a database, just some text that is long enough to look like one......");
    p = tmp_path("junk.db");
    CHECK(tg_search_open(p, 0, &db) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "not a readable search index") != NULL);
    CHECK(tg_search_open(p, 1, &db) == TG_ERR_INPUT); /* index --out on a junk file: refused, not overwritten */
    free(p);
    /* A SQLite database of something else. */
    p = tmp_path("other.db");
    sqlite3 *s;
    TG_ASSERT(sqlite3_open(p, &s) == SQLITE_OK);
    sqlite3_exec(s, "CREATE TABLE t(x); INSERT INTO t VALUES(1);", NULL, NULL, NULL);
    sqlite3_close(s);
    CHECK(tg_search_open(p, 0, &db) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "not a truthgpt search index") != NULL);
    CHECK(tg_search_open(p, 1, &db) == TG_ERR_INPUT);
    free(p);
    /* A truncated index: its pages are gone. */
    db = open_new("trunc.db");
    for (int i = 0; i < 500; i++) {
        char id[16], text[128];
        snprintf(id, sizeof id, "t%d", i);
        snprintf(text, sizeof text, "post number %d about truncation and the pages of a database file", i);
        add(db, id, text, NULL, NULL);
    }
    tg_search_close(db);
    p = tmp_path("trunc.db");
    char *wal = tg_path_join(g_tmp, "trunc.db-wal");
    /* Check the WAL into the main file, then cut the file in half. */
    TG_ASSERT(sqlite3_open(p, &s) == SQLITE_OK);
    sqlite3_exec(s, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;", NULL, NULL, NULL);
    sqlite3_close(s);
    FILE *f = fopen(p, "r+b");
    TG_ASSERT(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    TG_ASSERT(ftruncate(fileno(f), sz / 2) == 0);
    fclose(f);
    int rc = tg_search_open(p, 0, &db);
    if (rc == TG_OK) {
        tg_search_results r;
        tg_search_params prm = tg_search_default_params();
        rc = tg_search_run(db, "truncation pages", &prm, &r);
        if (rc == TG_OK) tg_search_results_free(&r);
        tg_search_close(db);
    }
    CHECK(rc == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "trunc.db") != NULL);
    free(wal);
    free(p);
    /* Locked: another connection holds the write lock; index fails after the busy wait, naming the lock. */
    db = open_new("locked.db");
    tg_search_close(db);
    p = tmp_path("locked.db");
    TG_ASSERT(sqlite3_open(p, &s) == SQLITE_OK);
    TG_ASSERT(sqlite3_exec(s, "BEGIN IMMEDIATE; INSERT INTO meta VALUES('x', 'y');", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(tg_search_open(p, 1, &db) == TG_OK);
    if (db) {
        write_str("one.jsonl", "{\"id\":\"1\",\"text\":\"one post\"}\n");
        char *c = tmp_path("one.jsonl");
        tg_index_stats st;
        CHECK(tg_search_index_corpus(db, c, 1, &st) == TG_ERR_INPUT);
        CHECK(strstr(tg_error_message(), "locked") != NULL);
        free(c);
        tg_search_close(db);
    }
    sqlite3_exec(s, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(s);
    free(p);
    /* A corpus that is not there, and a folder without ingest output. */
    db = open_new("empty.db");
    tg_index_stats st;
    CHECK(tg_search_index_corpus(db, "/nonexistent/corpus", 1, &st) == TG_ERR_INPUT);
    CHECK(tg_search_index_corpus(db, g_tmp, 1, &st) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "train.jsonl") != NULL);
    tg_search_close(db);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tg_test_search_XXXXXX");
    TG_ASSERT(mkdtemp(g_tmp));
    tg_log_quiet = 1;
    test_snippets();
    test_query_safety();
    test_filters_cjk_incremental();
    test_bm25_reference();
    test_bad_files();
    test_planted_recall();
    int rc = test_summary("test_search");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    return rc;
}
