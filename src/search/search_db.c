/*
 * search_db.c — the SQLite side of search (schema in search.h): opening and
 * checking an index, adding a corpus incrementally, and ranked queries with
 * author and date filters.
 *
 * One connection per tg_search_db behind a mutex: queries take a few
 * milliseconds, so the server's HTTP threads share it rather than each
 * opening its own. Writers are one process at a time (SQLite's lock); a
 * second writer waits BUSY_MS, then fails with "locked".
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "search/search.h"

#define BUSY_MS 3000
#define BATCH_DOCS 10000
#define DROP_MIN_DOCS 1000 /* indexes from this size on drop words in most posts from queries */

struct tg_search_db {
    sqlite3 *db;
    char *path;
    int writable;
    pthread_mutex_t mu;
    sqlite3_stmt *ins_post, *ins_fts; /* prepared on first add */
    sqlite3_stmt *vocab;              /* document frequency of a term (prepared on first query) */
    int in_tx;
};

/* An error from SQLite as a truthgpt error naming the file. Corruption and
 * "not a database" are bad input (exit 2); so is a lock held by another
 * writer, which the user resolves. */
static int db_fail(tg_search_db *d, int rc, const char *what) {
    int code = rc & 0xff;
    const char *msg = d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
        return tg_error_set(TG_ERR_INPUT, "%s: not a readable search index (%s): %s; rebuild it with truthgpt index",
                            d->path, msg, what);
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return tg_error_set(TG_ERR_INPUT, "%s: database is locked (another truthgpt index is writing it?): %s",
                            d->path, what);
    if (code == SQLITE_CANTOPEN || code == SQLITE_READONLY || code == SQLITE_PERM)
        return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", d->path, msg);
    return tg_error_set(TG_ERR_RUNTIME, "%s: %s: %s", d->path, what, msg);
}

static int exec(tg_search_db *d, const char *sql) {
    int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? TG_OK : db_fail(d, rc, sql);
}

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    /* text last: the filters read author and created_at without reading past a long text */
    "CREATE TABLE IF NOT EXISTS posts(rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, author TEXT,"
    " created_at TEXT, source TEXT, url TEXT, text TEXT NOT NULL);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS posts_fts USING fts5(body, content='',"
    " tokenize='unicode61 remove_diacritics 2');"
    "INSERT OR IGNORE INTO meta VALUES('format', '1');";

/* Checks that the open database is an index of our format (or, writable,
 * an empty database that becomes one). */
static int check_schema(tg_search_db *d) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
    if (rc != SQLITE_OK) return db_fail(d, rc, "reading the schema");
    rc = sqlite3_step(st);
    int tables = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return db_fail(d, rc, "reading the schema");
    if (tables == 0) {
        if (!d->writable) return tg_error_set(TG_ERR_INPUT, "%s: an empty database, not a search index (make one with truthgpt index)", d->path);
        TG_TRY(exec(d, SCHEMA));
    }
    rc = sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key = 'format'", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        if ((rc & 0xff) == SQLITE_ERROR)
            return tg_error_set(TG_ERR_INPUT, "%s: a SQLite database, but not a truthgpt search index (no meta table)", d->path);
        return db_fail(d, rc, "reading the format");
    }
    rc = sqlite3_step(st);
    int fmt = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(d, rc, "reading the format");
    if (fmt != TG_SEARCH_FORMAT)
        return tg_error_set(TG_ERR_INPUT, "%s: search index format %d, this program reads format %d", d->path, fmt,
                            TG_SEARCH_FORMAT);
    return TG_OK;
}

int tg_search_open(const char *path, int writable, tg_search_db **out) {
    *out = NULL;
    if (!writable) {
        struct stat sb;
        if (stat(path, &sb) != 0) return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
        if (!S_ISREG(sb.st_mode)) return tg_error_set(TG_ERR_INPUT, "%s: not a regular file", path);
    }
    tg_search_db *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    d->writable = writable;
    pthread_mutex_init(&d->mu, NULL);
    int flags = (writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &d->db, flags, NULL);
    int err = TG_OK;
    if (rc != SQLITE_OK) err = db_fail(d, rc, "opening");
    if (err == TG_OK) sqlite3_busy_timeout(d->db, BUSY_MS);
    /* WAL: readers (search, the server) keep reading while index writes. */
    if (err == TG_OK && writable) err = exec(d, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    /* Readers map the file (no copy into SQLite's page cache) and keep 64 MB
     * of pages: queries decode long doclists, mostly from memory. */
    if (err == TG_OK && !writable) err = exec(d, "PRAGMA mmap_size=1073741824; PRAGMA cache_size=-65536;");
    if (err == TG_OK) err = check_schema(d);
    /* Document frequencies of the index's terms, for dropping words that
     * are in most posts (tg_search_run); a temp table works read-only too. */
    if (err == TG_OK) err = exec(d, "CREATE VIRTUAL TABLE temp.posts_vocab USING fts5vocab(main, 'posts_fts', 'row')");
    if (err != TG_OK) {
        tg_search_close(d);
        return err;
    }
    *out = d;
    return TG_OK;
}

void tg_search_close(tg_search_db *d) {
    if (!d) return;
    sqlite3_finalize(d->ins_post);
    sqlite3_finalize(d->ins_fts);
    sqlite3_finalize(d->vocab);
    if (d->db) sqlite3_close(d->db);
    pthread_mutex_destroy(&d->mu);
    free(d->path);
    free(d);
}

int64_t tg_search_count(tg_search_db *d) {
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    pthread_mutex_lock(&d->mu);
    /* max(rowid), not count(*): O(log n) instead of a scan; the same while nothing is ever deleted */
    if (sqlite3_prepare_v2(d->db, "SELECT coalesce(max(rowid), 0) FROM posts", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* ------------------------------------------------------------------ adding */

int tg_search_begin(tg_search_db *d) {
    if (d->in_tx) return TG_OK;
    /* IMMEDIATE: take the write lock now (or fail on it now), not at the first insert. */
    TG_TRY(exec(d, "BEGIN IMMEDIATE"));
    d->in_tx = 1;
    return TG_OK;
}

int tg_search_commit(tg_search_db *d) {
    if (!d->in_tx) return TG_OK;
    d->in_tx = 0;
    return exec(d, "COMMIT");
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, i);
}

int tg_search_add(tg_search_db *d, const char *id, const char *text, const char *author, const char *created_at,
                  const char *source, const char *url, int *added) {
    *added = 0;
    if (!d->writable) return tg_error_set(TG_ERR_RUNTIME, "%s: opened read-only", d->path);
    int rc;
    if (!d->ins_post) {
        rc = sqlite3_prepare_v2(d->db,
                                "INSERT OR IGNORE INTO posts(id, text, author, created_at, source, url)"
                                " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                                -1, &d->ins_post, NULL);
        if (rc != SQLITE_OK) return db_fail(d, rc, "preparing the insert");
        rc = sqlite3_prepare_v2(d->db, "INSERT INTO posts_fts(rowid, body) VALUES(?1, ?2)", -1, &d->ins_fts, NULL);
        if (rc != SQLITE_OK) return db_fail(d, rc, "preparing the insert");
    }
    sqlite3_reset(d->ins_post);
    bind_text(d->ins_post, 1, id);
    bind_text(d->ins_post, 2, text);
    bind_text(d->ins_post, 3, author && author[0] ? author : NULL);
    bind_text(d->ins_post, 4, created_at);
    bind_text(d->ins_post, 5, source);
    bind_text(d->ins_post, 6, url && url[0] ? url : NULL);
    rc = sqlite3_step(d->ins_post);
    sqlite3_clear_bindings(d->ins_post);
    if (rc != SQLITE_DONE) return db_fail(d, rc, "adding a post");
    if (sqlite3_changes(d->db) == 0) return TG_OK; /* the id is indexed already */
    sqlite3_int64 rowid = sqlite3_last_insert_rowid(d->db);
    char *body = tg_search_index_text(text, strlen(text));
    if (!body) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    sqlite3_reset(d->ins_fts);
    sqlite3_bind_int64(d->ins_fts, 1, rowid);
    sqlite3_bind_text(d->ins_fts, 2, body, -1, SQLITE_STATIC);
    rc = sqlite3_step(d->ins_fts);
    sqlite3_clear_bindings(d->ins_fts);
    free(body);
    if (rc != SQLITE_DONE) return db_fail(d, rc, "indexing a post");
    *added = 1;
    return TG_OK;
}

/* The JSONL files of a corpus: DIR/train.jsonl and DIR/val.jsonl, or the file itself. */
static int corpus_files(const char *corpus, char *files[2], int *n) {
    *n = 0;
    if (!tg_path_exists(corpus)) return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", corpus, strerror(ENOENT));
    if (!tg_path_is_dir(corpus)) {
        files[(*n)++] = strdup(corpus);
        return TG_OK;
    }
    const char *names[] = {"train.jsonl", "val.jsonl"};
    for (int i = 0; i < 2; i++) {
        char *p = tg_path_join(corpus, names[i]);
        if (p && tg_path_exists(p)) files[(*n)++] = p;
        else free(p);
    }
    if (*n == 0)
        return tg_error_set(TG_ERR_INPUT, "%s: no train.jsonl or val.jsonl (not an ingest output directory)", corpus);
    return TG_OK;
}

static const char *jstr(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

/* Indexes one JSONL file; counts into st; progress over all files' bytes. */
static int index_file(tg_search_db *d, const char *path, tg_progress *prog, int64_t base, int quiet,
                      tg_index_stats *st) {
    FILE *f = fopen(path, "rb");
    if (!f) return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t lineno = 0, done = 0, in_batch = 0;
    int rc = tg_search_begin(d);
    while (rc == TG_OK && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        done += len;
        st->bytes += len;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        st->read++;
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)len, 0, &je);
        const char *text = jstr(o, "text");
        if (!text) {
            if (st->malformed++ < 5 && !quiet)
                tg_warn("%s:%lld: skipped: %s", path, (long long)lineno, o ? "no \"text\" string" : je.text);
            json_decref(o);
            continue;
        }
        const char *id = jstr(o, "id");
        char idbuf[17];
        if (!id) { /* as ingest names a document without one */
            snprintf(idbuf, sizeof idbuf, "%016llx", (unsigned long long)tg_hash64(text, strlen(text), 0x5EED0001ULL));
            id = idbuf;
        }
        int added = 0;
        rc = tg_search_add(d, id, text, jstr(o, "author"), jstr(o, "created_at"), jstr(o, "source"), jstr(o, "url"),
                           &added);
        json_decref(o);
        if (added) st->added++;
        else st->skipped++;
        if (rc == TG_OK && ++in_batch == BATCH_DOCS) {
            in_batch = 0;
            rc = tg_search_commit(d);
            if (rc == TG_OK) rc = tg_search_begin(d);
        }
        if (!quiet && (lineno & 1023) == 0) {
            char extra[96];
            snprintf(extra, sizeof extra, "%lld new, %lld already indexed", (long long)st->added, (long long)st->skipped);
            tg_progress_update(prog, (double)(base + done), extra);
        }
    }
    if (rc == TG_OK && ferror(f)) rc = tg_error_set(TG_ERR_RUNTIME, "%s: read failed: %s", path, strerror(errno));
    if (rc == TG_OK) rc = tg_search_commit(d);
    else if (d->in_tx) {
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        d->in_tx = 0;
    }
    free(line);
    fclose(f);
    return rc;
}

int tg_search_index_corpus(tg_search_db *d, const char *corpus, int quiet, tg_index_stats *st) {
    memset(st, 0, sizeof *st);
    char *files[2] = {NULL, NULL};
    int nf = 0;
    int rc = corpus_files(corpus, files, &nf);
    double t0 = tg_now();
    int64_t total = 0;
    for (int i = 0; i < nf; i++) {
        struct stat sb;
        if (stat(files[i], &sb) == 0) total += (int64_t)sb.st_size;
    }
    tg_progress prog;
    if (!quiet) tg_progress_start(&prog, "index", (double)total);
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < nf && rc == TG_OK; i++) rc = index_file(d, files[i], &prog, st->bytes, quiet, st);
    pthread_mutex_unlock(&d->mu);
    st->seconds = tg_now() - t0;
    if (!quiet && rc == TG_OK) {
        char extra[128];
        snprintf(extra, sizeof extra, "%.1f MB/s, %lld new, %lld already indexed",
                 st->seconds > 0 ? st->bytes / 1e6 / st->seconds : 0.0, (long long)st->added, (long long)st->skipped);
        tg_progress_finish(&prog, (double)total, extra);
    }
    for (int i = 0; i < nf; i++) free(files[i]);
    return rc;
}

/* ----------------------------------------------------------------- queries */

tg_search_params tg_search_default_params(void) {
    tg_search_params p;
    memset(&p, 0, sizeof p);
    p.limit = 10;
    p.snippet_chars = 160;
    return p;
}

int tg_search_check_date(const char *what, const char *v) {
    /* YYYY[-MM[-DD[THH[:MM[:SS]]...]]]: digits where the pattern has them. */
    static const char pat[] = "dddd-dd-ddTdd:dd:dd";
    size_t n = strlen(v);
    int ok = n >= 4;
    for (size_t i = 0; ok && i < n && i < sizeof pat - 1; i++)
        ok = pat[i] == 'd' ? (v[i] >= '0' && v[i] <= '9') : (v[i] == pat[i] || (pat[i] == 'T' && v[i] == ' '));
    if (ok && (n == 5 || n == 8 || n == 11 || n == 14 || n == 17)) ok = 0; /* ends on a separator */
    if (!ok)
        return tg_error_set(TG_ERR_INPUT, "%s: '%s' is not a date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)",
                            what, v);
    return TG_OK;
}

static char *dup_col(sqlite3_stmt *st, int i) {
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? strdup((const char *)s) : NULL;
}

void tg_search_results_free(tg_search_results *r) {
    for (int i = 0; i < r->n; i++) {
        tg_search_hit *h = &r->hits[i];
        free(h->id);
        free(h->text);
        free(h->author);
        free(h->created_at);
        free(h->source);
        free(h->url);
        free(h->snippet);
        free(h->highlight);
    }
    free(r->hits);
    r->hits = NULL;
    r->n = 0;
}

/* Drops the words of a query that are in more than half of the posts, as
 * long as a rarer word is left: FTS5's BM25 gives them no weight (their IDF
 * is clamped to 1e-6), so they change no ranking, but with OR they make the
 * query score nearly every post ("the" costs a scan of the whole index).
 * Posts that matched only through them are no longer returned. CJK phrases
 * are kept; indexes under DROP_MIN_DOCS posts keep every word. Call with d->mu held. Returns the new count (terms compacted). */
static int drop_common(tg_search_db *d, tg_search_term *terms, int nt, int64_t n_docs) {
    if (n_docs < DROP_MIN_DOCS) return nt; /* a small index is scanned in no time: keep every word */
    if (!d->vocab &&
        sqlite3_prepare_v2(d->db, "SELECT doc FROM temp.posts_vocab WHERE term = ?1", -1, &d->vocab, NULL) != SQLITE_OK)
        return nt; /* no vocabulary table: keep every word */
    int64_t df[TG_SEARCH_MAX_TERMS];
    int keep = 0, rarest = 0;
    for (int i = 0; i < nt; i++) {
        df[i] = 0;
        if (!terms[i].cjk) {
            sqlite3_reset(d->vocab);
            sqlite3_bind_text(d->vocab, 1, terms[i].s, (int)terms[i].len, SQLITE_STATIC);
            if (sqlite3_step(d->vocab) == SQLITE_ROW) df[i] = sqlite3_column_int64(d->vocab, 0);
            sqlite3_reset(d->vocab);
        }
        if (df[i] < df[rarest]) rarest = i;
        keep += 2 * df[i] <= n_docs;
    }
    if (keep == nt) return nt;
    int o = 0;
    for (int i = 0; i < nt; i++)
        if (2 * df[i] <= n_docs || (keep == 0 && i == rarest)) terms[o++] = terms[i];
    return o;
}

int tg_search_run(tg_search_db *d, const char *query, const tg_search_params *p, tg_search_results *r) {
    memset(r, 0, sizeof *r);
    if (p->limit < 1 || p->limit > TG_SEARCH_MAX_LIMIT)
        return tg_error_set(TG_ERR_INPUT, "limit: %d is not in 1..%d", p->limit, TG_SEARCH_MAX_LIMIT);
    if (p->since) TG_TRY(tg_search_check_date("since", p->since));
    if (p->until) TG_TRY(tg_search_check_date("until", p->until));
    tg_search_term *terms = malloc(TG_SEARCH_MAX_TERMS * sizeof *terms);
    if (!terms) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    int nt = tg_search_terms(query ? query : "", terms, TG_SEARCH_MAX_TERMS);
    if (nt == 0) {
        free(terms);
        return tg_error_set(TG_ERR_INPUT, "empty query: no words to search for");
    }
    int64_t n_docs = tg_search_count(d);
    pthread_mutex_lock(&d->mu);
    nt = drop_common(d, terms, nt, n_docs);
    pthread_mutex_unlock(&d->mu);
    char *match = tg_search_fts_query(terms, nt);
    /* The author as stored without '@', lower case: "alice" matches "@alice"
     * and "@alice@host" (LIKE's wildcards in the name are escaped). */
    char author[256] = "", author_like[520] = "";
    if (p->author) {
        const char *a = p->author;
        while (*a == '@') a++;
        size_t k = 0;
        for (; a[k] && k < sizeof author - 1; k++) author[k] = (a[k] >= 'A' && a[k] <= 'Z') ? (char)(a[k] + 32) : a[k];
        author[k] = 0;
        size_t o = 0;
        for (size_t i = 0; author[i]; i++) {
            if (author[i] == '%' || author[i] == '_' || author[i] == '\\') author_like[o++] = '\\';
            author_like[o++] = author[i];
        }
        memcpy(author_like + o, "@%", 3);
    }
    /* Ranked inside the FTS index alone, then joined: joining first would
     * read the row (the text) of every match before the sort. With a filter
     * the rows of all matches are read for their author and date (text last
     * in the row, so not the text). */
    int filtered = p->author || p->since || p->until;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT p.id, p.text, p.author, p.created_at, p.source, p.url, f.s FROM"
             " (SELECT rowid AS r, bm25(posts_fts) AS s FROM posts_fts WHERE posts_fts MATCH ?1 ORDER BY s, rowid%s) f"
             " JOIN posts p ON p.rowid = f.r WHERE 1%s%s%s ORDER BY f.s, f.r LIMIT ?5",
             filtered ? "" : " LIMIT ?5",
             p->author ? " AND (lower(ltrim(p.author, '@')) = ?2 OR lower(ltrim(p.author, '@')) LIKE ?3 ESCAPE '\\')" : "",
             p->since ? " AND p.created_at >= ?4" : "",
             p->until ? " AND substr(p.created_at, 1, length(?6)) <= ?6" : "");
    int rc = TG_OK;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&d->mu);
    int src = match ? sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) : SQLITE_NOMEM;
    if (src != SQLITE_OK) rc = db_fail(d, src, "preparing the query");
    if (rc == TG_OK) {
        sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
        if (p->author) {
            sqlite3_bind_text(st, 2, author, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, author_like, -1, SQLITE_STATIC);
        }
        if (p->since) sqlite3_bind_text(st, 4, p->since, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, p->limit);
        if (p->until) sqlite3_bind_text(st, 6, p->until, -1, SQLITE_STATIC);
        r->hits = calloc((size_t)p->limit, sizeof *r->hits);
        if (!r->hits) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    while (rc == TG_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        tg_search_hit *h = &r->hits[r->n++];
        h->id = dup_col(st, 0);
        h->text = dup_col(st, 1);
        h->author = dup_col(st, 2);
        h->created_at = dup_col(st, 3);
        h->source = dup_col(st, 4);
        h->url = dup_col(st, 5);
        h->score = -sqlite3_column_double(st, 6);
        if (!h->id || !h->text) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    if (rc == TG_OK && src != SQLITE_DONE) rc = db_fail(d, src, "searching");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; rc == TG_OK && i < r->n; i++)
        rc = tg_search_snippet(r->hits[i].text, terms, nt, p->snippet_chars > 0 ? p->snippet_chars : 160, "**", "**",
                               &r->hits[i].snippet, &r->hits[i].highlight);
    free(match);
    free(terms);
    if (rc != TG_OK || r->n == 0) tg_search_results_free(r); /* nothing to free for the caller then */
    return rc;
}

json_t *tg_search_hit_json(const tg_search_hit *h, int with_text) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "id", json_string(h->id));
    json_object_set_new(o, "score", json_real(h->score));
    json_object_set_new(o, "author", h->author ? json_string(h->author) : json_null());
    json_object_set_new(o, "created_at", h->created_at ? json_string(h->created_at) : json_null());
    json_object_set_new(o, "url", h->url ? json_string(h->url) : json_null());
    json_object_set_new(o, "source", h->source ? json_string(h->source) : json_null());
    json_object_set_new(o, "snippet", json_string(h->snippet ? h->snippet : ""));
    json_object_set_new(o, "highlight", json_string(h->highlight ? h->highlight : ""));
    if (with_text) json_object_set_new(o, "text", json_string(h->text));
    return o;
}

int tg_search_each(tg_search_db *d, int (*fn)(void *ctx, const tg_search_hit *post), void *ctx) {
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&d->mu);
    int src = sqlite3_prepare_v2(d->db, "SELECT id, text, author, created_at, source, url FROM posts ORDER BY rowid",
                                 -1, &st, NULL);
    int rc = src == SQLITE_OK ? TG_OK : db_fail(d, src, "reading the posts");
    while (rc == TG_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        tg_search_hit h;
        memset(&h, 0, sizeof h);
        h.id = (char *)sqlite3_column_text(st, 0);
        h.text = (char *)sqlite3_column_text(st, 1);
        h.author = (char *)sqlite3_column_text(st, 2);
        h.created_at = (char *)sqlite3_column_text(st, 3);
        h.source = (char *)sqlite3_column_text(st, 4);
        h.url = (char *)sqlite3_column_text(st, 5);
        if (h.id && h.text) rc = fn(ctx, &h);
    }
    if (rc == TG_OK && src != SQLITE_DONE) rc = db_fail(d, src, "reading the posts");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->mu);
    return rc;
}
