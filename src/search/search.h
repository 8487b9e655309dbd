/*
 * search.h — the search index of a corpus (docs/search.md): a SQLite
 * database with an FTS5 full-text index of every post, BM25 ranking, and
 * the pieces the CLI (`index`, `search`) and the server's grounding share.
 *
 * Schema (format 1):
 *   meta(key, value)                 'format' = '1'
 *   posts(rowid, id UNIQUE, text, author, created_at, source, url)
 *   posts_fts(body)                  contentless FTS5, unicode61; body is
 *                                    the text with each run of CJK
 *                                    characters replaced by its overlapping
 *                                    bigrams (tg_search_index_text), so that
 *                                    Chinese, Japanese and Korean posts are
 *                                    found by any two-character word.
 *
 * Queries never reach FTS5 as typed: tg_search_fts_query turns the user's
 * words into quoted FTS5 strings joined by OR, so quotes, NEAR, `*` or
 * unbalanced parentheses are plain words, never syntax errors.
 */
#ifndef TG_SEARCH_H
#define TG_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "truthgpt.h"

#define TG_SEARCH_FORMAT 1
#define TG_SEARCH_MAX_TERMS 32      /* words of a query used (the rest ignored) */
#define TG_SEARCH_MAX_TERM_BYTES 64 /* longer words are cut */
#define TG_SEARCH_MAX_LIMIT 1000

typedef struct tg_search_db tg_search_db;

/* Opens an index. writable: create it (and its schema) when missing, WAL
 * mode; else read-only, and a missing file is an error. A file that is not
 * SQLite, is corrupt, or is SQLite but not an index is TG_ERR_INPUT naming
 * path. Safe to share between threads (one connection behind a mutex). */
int tg_search_open(const char *path, int writable, tg_search_db **out);
void tg_search_close(tg_search_db *db);
/* Documents in the index. */
int64_t tg_search_count(tg_search_db *db);

typedef struct {
    int64_t read;      /* corpus lines read */
    int64_t added;     /* new documents indexed */
    int64_t skipped;   /* ids already in the index */
    int64_t malformed; /* lines that are not {"text": ...} objects */
    int64_t bytes;     /* corpus bytes read */
    double seconds;
} tg_index_stats;

/* Adds every document of corpus (an ingest directory: its train.jsonl and
 * val.jsonl; or one JSONL file) whose id is not in the index yet; lines
 * without an id are keyed by a hash of their text. Commits every 10,000
 * documents, so an interrupted run leaves a consistent index that the next
 * run completes. quiet: no progress line. */
int tg_search_index_corpus(tg_search_db *db, const char *corpus, int quiet, tg_index_stats *st);
/* Adds one document (for tests and callers with their own input); *added is
 * 0 when the id was already there. Fields other than id and text may be NULL. */
int tg_search_add(tg_search_db *db, const char *id, const char *text, const char *author, const char *created_at,
                  const char *source, const char *url, int *added);
/* Bulk adding: tg_search_add calls between begin and commit share one transaction. */
int tg_search_begin(tg_search_db *db);
int tg_search_commit(tg_search_db *db);

typedef struct {
    int limit;             /* results (1..TG_SEARCH_MAX_LIMIT), default 10 */
    const char *author;    /* NULL or a handle: "alice", "@alice" match "@alice" and "@alice@host" */
    const char *since;     /* NULL or an ISO 8601 date or date-time prefix, inclusive */
    const char *until;     /* NULL or the same, inclusive (2024-05 is all of May) */
    int snippet_chars;     /* code points of a snippet, default 160 */
} tg_search_params;
tg_search_params tg_search_default_params(void);

typedef struct {
    char *id, *text, *author, *created_at, *source, *url; /* author, created_at, source, url may be NULL */
    char *snippet;     /* an excerpt around the best matches, one line */
    char *highlight;   /* the same excerpt with each match as **match** */
    double score;      /* BM25 (higher is better; FTS5's bm25() negated) */
} tg_search_hit;
typedef struct {
    tg_search_hit *hits;
    int n;
} tg_search_results;

/* Ranked posts for query. An empty query (no words) or bad parameters are
 * TG_ERR_INPUT; no query text is ever an SQL error. With no results (or an
 * error) r holds nothing to free; else free it with tg_search_results_free. */
int tg_search_run(tg_search_db *db, const char *query, const tg_search_params *p, tg_search_results *r);
void tg_search_results_free(tg_search_results *r);
/* A hit as JSON: {"id","score","author","created_at","url","source",
 * "snippet","highlight"} plus "text" when with_text (null for what is unknown). */
struct json_t;
struct json_t *tg_search_hit_json(const tg_search_hit *h, int with_text);
/* Checks a --since/--until value (YYYY, YYYY-MM, YYYY-MM-DD, or a date-time
 * after it); TG_ERR_INPUT naming what otherwise. */
int tg_search_check_date(const char *what, const char *value);

/* Calls fn for every post of the index in indexing order (the hit's score
 * 0, snippet and highlight NULL; the strings are valid during the call).
 * fn returns TG_OK to go on, anything else stops and is returned; it must
 * not use db (the connection is held during the walk). */
int tg_search_each(tg_search_db *db, int (*fn)(void *ctx, const tg_search_hit *post), void *ctx);

/* ----------------------------------------------- text (search_text.c) */

/* Is cp a CJK character that is indexed by bigrams (Han, kana, Hangul)? */
int tg_search_is_cjk(uint32_t cp);
/* The body indexed for text: each CJK run of two or more characters becomes
 * its overlapping bigrams and its last character, separated by spaces
 * ("人生如梦" -> " 人生 生如 如梦 梦 ").
 * Returns a malloc'd string (NULL when out of memory). */
char *tg_search_index_text(const char *text, size_t n);

/* One word of a query: its bytes (ASCII lower-cased), and whether it is a
 * CJK run (matched as a substring, not at word boundaries). */
typedef struct {
    char s[TG_SEARCH_MAX_TERM_BYTES * 4 + 1];
    size_t len;
    int cjk;
} tg_search_term;
/* Splits query into at most max terms (duplicates dropped); returns how many. */
int tg_search_terms(const char *query, tg_search_term *terms, int max);
/* The FTS5 MATCH expression for terms: each a quoted string ("" doubled),
 * CJK runs as bigram phrases (one character: a prefix query), joined by OR. malloc'd, NULL when out of memory. */
char *tg_search_fts_query(const tg_search_term *terms, int n);
/* An excerpt of text of about chars code points around the window holding
 * the most distinct terms; newlines and tabs become spaces; "…" marks a cut.
 * *snippet is plain, *highlight has each match as open + match + close.
 * Both malloc'd. */
int tg_search_snippet(const char *text, const tg_search_term *terms, int n, int chars, const char *open,
                      const char *close, char **snippet, char **highlight);

/* ------------------------------------- grounding (search_text.c) */

/* The sources block of a grounded prompt, fixed so that the fine-tuning
 * data (chat-data --grounded) and the server build the same text:
 *     Sources:
 *     [1] @alice 2024-01-05: the post's text, on one line [1]
 *     [2] (unknown) 2023-11-30: ... [2]
 *     Answer from the sources and cite them by number, like [1].
 * The number is repeated after the text so that a small model can cite a
 * post by copying on from the words it quotes (see chat-data --grounded).
 * Each text is cut to max_chars code points (with "…"; 0: whole).
 * malloc'd, NULL when out of memory. */
char *tg_search_sources_prompt(const tg_search_hit *hits, int n, int max_chars);

/* A citation marker "[N]" in an answer, 1 <= N <= n_sources. */
typedef struct {
    size_t byte_start, byte_end; /* the marker's bytes in the text */
    int64_t start, end;          /* the same in Unicode code points */
    int source;                  /* N (1-based) */
} tg_search_citation;
/* Finds the markers of text in order; returns how many (at most max). */
int tg_search_citations(const char *text, size_t n, int n_sources, tg_search_citation *out, int max);

#endif /* TG_SEARCH_H */
