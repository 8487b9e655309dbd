/*
 * ingest.h — `truthgpt ingest`: posts (plain text, JSONL, X/Twitter and
 * Mastodon archives) into a clean, deduplicated corpus
 * (docs/architecture.md "Pipeline", "File formats"): CORPUS/train.jsonl,
 * CORPUS/val.jsonl, CORPUS/stats.json.
 *
 * The first part is the API the CLI uses; the second the pieces the ingest
 * files share (readers, text clean-up, MinHash), kept out of truthgpt.h.
 */
#ifndef TG_DATA_INGEST_H
#define TG_DATA_INGEST_H

#include <stdint.h>
#include <stdio.h>

#include "truthgpt.h"

/* ------------------------------------------------------------------- API */

typedef struct {
    const char *format;    /* NULL: detect per input; or "text", "jsonl", "x", "mastodon" */
    const char *split;     /* text: "blank-line" (default), "line", or a separator line such as "%" */
    const char *field;     /* jsonl: dotted path of the text ("text") */
    int drop_links;        /* x: drop t.co links instead of expanding them */
    int keep_retweets;     /* x: keep "RT @user: ..." retweets */
    int strict;            /* a malformed line or file is fatal instead of skipped */
    int min_chars;         /* drop documents with fewer characters (code points) */
    int64_t max_bytes;     /* longest line / document accepted; longer ones are skipped unread */
    double near_dup;       /* Jaccard threshold for near-duplicates; 0 disables */
    double val_frac;       /* fraction of documents in val.jsonl (by content hash) */
    int threads;           /* 0: all cores */
    int quiet;             /* no progress line, no warnings on stderr */
} tg_ingest_opts;

tg_ingest_opts tg_ingest_default_opts(void);

/* Why documents were dropped; stats.json and the summary use these names. */
#define TG_INGEST_DROPS(X)                                                   \
    X(empty, "empty after cleaning")                                         \
    X(too_short, "shorter than --min-chars")                                 \
    X(too_long, "longer than --max-bytes")                                   \
    X(malformed, "malformed line or record")                                 \
    X(retweet, "X retweets (--keep-retweets keeps them)")                    \
    X(boost, "Mastodon boosts (Announce)")                                   \
    X(not_note, "Mastodon activities that are not Notes")                    \
    X(duplicate, "exact duplicates")                                         \
    X(near_duplicate, "near-duplicates (--near-dup)")

typedef enum {
#define TG_X(name, help) TG_DROP_##name,
    TG_INGEST_DROPS(TG_X)
#undef TG_X
    TG_DROP_COUNT
} tg_drop_reason;

typedef struct {
    int64_t inputs;            /* INPUT arguments */
    int64_t files;             /* files read (archive members included) */
    int64_t malformed_files;   /* files skipped as a whole */
    int64_t read;              /* documents read */
    int64_t kept, train, val;  /* documents written */
    int64_t dropped[TG_DROP_COUNT];
    int64_t invalid_bytes;     /* invalid UTF-8 bytes replaced by U+FFFD */
    int64_t escapes;           /* terminal escape sequences removed */
    int64_t controls;          /* other control characters removed */
    int64_t bytes_in;          /* input bytes read */
    int64_t bytes_kept;        /* UTF-8 bytes of kept texts */
    int64_t chars_kept;        /* code points of kept texts */
    int64_t dedup_bytes;       /* memory of the exact-duplicate hash set */
    int64_t near_dup_bytes;    /* memory of the near-duplicate index */
    int lsh_bands, lsh_rows;
    double seconds;
} tg_ingest_stats;

/* Reads every input, writes out_dir/{train,val}.jsonl and stats.json
 * atomically (nothing is renamed into place unless everything succeeded).
 * Returns TG_ERR_INPUT for bad input (message names the file and line). */
int tg_ingest_run(const tg_ingest_opts *o, char *const *inputs, int n_inputs, const char *out_dir,
                  tg_ingest_stats *st);
/* Prints the summary table of a run. */
void tg_ingest_print_summary(const tg_ingest_stats *st, const char *out_dir, FILE *f);

/* ------------------------------------------------------ shared internals */

/* Text clean-up (clean.c). */
typedef struct {
    int64_t escapes, controls; /* removed */
    int64_t chars;             /* code points in the result */
} tg_clean_counts;
/* (UTF-8 validation and repair: tg_utf8_* in core/core.h.) */
/* Valid UTF-8 in -> out (n bytes suffice): removes terminal escape
 * sequences and control characters other than \n and \t, turns CRLF/CR into
 * LF, drops trailing spaces of lines and blank edges. Returns the length. */
size_t tg_clean_text(const char *in, size_t n, char *out, tg_clean_counts *c);
/* Decodes HTML entities (named ones that occur in posts, and numeric). out
 * needs n bytes (decoding never grows text). */
size_t tg_html_unescape(const char *in, size_t n, char *out);
/* HTML to plain text: tags removed, <p> blocks separated by a blank line,
 * <br> a newline, entities decoded, source newlines as spaces. out: n bytes. */
size_t tg_html_to_text(const char *in, size_t n, char *out);

/* A set of 64-bit hashes (minhash.c). */
typedef struct {
    uint64_t *keys;
    size_t cap, count;
} tg_u64set;
int tg_u64set_init(tg_u64set *s, size_t initial);
void tg_u64set_free(tg_u64set *s);
int tg_u64set_contains(const tg_u64set *s, uint64_t key);
int tg_u64set_insert(tg_u64set *s, uint64_t key, int *was_present);
size_t tg_u64set_bytes(const tg_u64set *s);
/* Starts loading key's slot into cache (the sets are far larger than cache). */
void tg_u64set_prefetch(const tg_u64set *s, uint64_t key);

/* MinHash + LSH (minhash.c). */
#define TG_MINHASH_LOG2K 6
#define TG_MINHASH_K (1 << TG_MINHASH_LOG2K) /* signature length */
#define TG_SHINGLE 5                         /* characters per shingle */
/* Signature of text's character 5-grams (case and whitespace folded).
 * Returns the number of shingles (0 for empty text). */
size_t tg_minhash_signature(const char *text, size_t n, uint64_t sig[TG_MINHASH_K]);
/* Bands and rows (bands*rows <= K) for a Jaccard threshold: the S-curve
 * is centred 0.1 below it (high recall); candidates are then verified
 * against the threshold with their stored signatures. */
void tg_lsh_choose(double threshold, int *bands, int *rows);
/* A document's LSH block: `bands` band keys, then the signature truncated
 * to 16 bits a value (K/4 uint64 words). tg_lsh_stride() words in all. */
void tg_lsh_block(const uint64_t sig[TG_MINHASH_K], int bands, int rows, uint64_t *block);
/* One band's table: band key -> index of the first document that had it,
 * packed in one word a slot (32-bit key fingerprint, document + 1) so that a
 * lookup costs one cache miss. A fingerprint collision only costs a
 * signature comparison: every candidate is verified. */
typedef struct {
    uint64_t *slots;
    size_t cap, count;
} tg_lsh_band;
typedef struct {
    int bands, rows;
    double threshold;
    tg_lsh_band *tabs;   /* (bands) */
    uint16_t *sigs;      /* (n_docs, K) 16-bit signatures of indexed documents */
    size_t n_docs, cap_docs;
} tg_lsh;
int tg_lsh_init(tg_lsh *l, double threshold);
void tg_lsh_free(tg_lsh *l);
int tg_lsh_stride(const tg_lsh *l);
/* *is_dup = 1 if an indexed document shares a band with this one and their
 * signatures agree on at least threshold*K values (nothing inserted); else
 * the document is indexed and *is_dup = 0. */
int tg_lsh_check_insert(tg_lsh *l, const uint64_t *block, int *is_dup);
size_t tg_lsh_bytes(const tg_lsh *l);
void tg_lsh_prefetch(const tg_lsh *l, const uint64_t *block);

/* The pipeline readers feed (ingest.c). */
typedef struct tg_ingest tg_ingest;
typedef enum {
    TG_ITEM_TEXT,      /* raw text: UTF-8 repair + clean */
    TG_ITEM_JSONL,     /* one JSONL line: repair, parse, take --field, clean */
} tg_item_kind;
const tg_ingest_opts *tg_ingest_options(const tg_ingest *g);
/* Registers a source name (file, or archive/member) and returns its index. */
int tg_ingest_source(tg_ingest *g, const char *name);
/* Queues one document. id and created_at may be NULL. line: 1-based line of
 * its start (0 if none). The data is copied. */
int tg_ingest_add(tg_ingest *g, tg_item_kind kind, int source, int64_t line, const char *data, size_t len,
                  const char *id, const char *created_at);
/* What an archive knows about a post besides its text; any field may be
 * NULL. author and url reach the corpus line as "author" and "url" (only
 * when present, so text corpora keep their four keys). */
typedef struct {
    const char *id, *created_at;
    const char *author; /* handle: "@name" (X), "@name@host" (Mastodon) */
    const char *url;    /* the post's own page */
} tg_ingest_meta;
/* tg_ingest_add with all of a post's metadata. */
int tg_ingest_add_post(tg_ingest *g, tg_item_kind kind, int source, int64_t line, const char *data, size_t len,
                       const tg_ingest_meta *m);
/* The X account's handle (from data/account.js), NULL until one is read. */
void tg_ingest_set_x_user(tg_ingest *g, const char *username);
const char *tg_ingest_x_user(const tg_ingest *g);
/* Reads data/account.js ("window.YTD.account.part0 = [{"account":
 * {"username": ...}}]") and remembers the username; a file without one is
 * ignored (posts then have no author, and a URL without the handle). */
int tg_ingest_read_x_account(tg_ingest *g, const char *data, size_t len);
/* Reports a document dropped for `why` (malformed, too_long) at line of
 * source (line > 0: "FILE:LINE", line < 0: "FILE: record -line", 0: no
 * place), counts it, and returns TG_ERR_INPUT with --strict (the caller
 * stops), else TG_OK. why == TG_DROP_COUNT reports a whole file (or its
 * rest) as skipped instead. Flushes queued documents first so that reports
 * come out in input order. */
int tg_ingest_reject(tg_ingest *g, tg_drop_reason why, int source, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Counts a document that was read but dropped by a reader (retweet, boost). */
void tg_ingest_drop(tg_ingest *g, tg_drop_reason why);
/* Input bytes consumed so far by the current input (for the progress line). */
void tg_ingest_progress(tg_ingest *g, int64_t bytes_done);
void tg_ingest_count_file(tg_ingest *g);
/* Counts invalid UTF-8 bytes repaired by a whole-file reader. */
void tg_ingest_count_invalid(tg_ingest *g, int64_t n);

/* A byte source for the line reader: a FILE or an archive member. */
typedef long (*tg_read_fn)(void *ctx, char *buf, size_t n); /* bytes read, 0 at end, < 0 on error */

/* Readers (ingest_text.c, ingest_jsonl.c, ingest_x.c, ingest_mastodon.c).
 * Each returns TG_OK, or an error that stops the run. */
int tg_ingest_read_text(tg_ingest *g, int source, tg_read_fn rd, void *ctx);
int tg_ingest_read_jsonl(tg_ingest *g, int source, tg_read_fn rd, void *ctx);
/* Whole-file formats: data is the file's content (data[len] == 0). */
int tg_ingest_read_x(tg_ingest *g, int source, char *data, size_t len);
int tg_ingest_read_mastodon(tg_ingest *g, int source, char *data, size_t len);

/* Line reader over a tg_read_fn with lines capped at max bytes: a longer
 * line is reported as too long and skipped without being held in memory. */
typedef struct {
    tg_read_fn rd;
    void *ctx;
    char *buf;
    size_t cap, start, end; /* buf[start, end) is unread data */
    size_t max;
    int eof, error;
    int64_t line;           /* number of the line last returned (1-based) */
    int64_t consumed;       /* bytes returned or skipped so far */
} tg_line_reader;
int tg_line_reader_init(tg_line_reader *r, tg_read_fn rd, void *ctx, size_t max);
void tg_line_reader_free(tg_line_reader *r);
/* Next line without its '\n' (a '\r' before it is kept). Returns 1 with a
 * line, 0 at the end, -1 on a read error, 2 for a line longer than max
 * (skipped; *len is how long it was). */
int tg_line_reader_next(tg_line_reader *r, const char **line, size_t *len);

/* Archives (archive.c): calls fn for each member whose base name `want`
 * accepts, with its content in memory (NUL-terminated). Members larger than
 * max_member are reported and skipped. */
typedef int (*tg_member_fn)(void *ctx, const char *member, char *data, size_t len);
int tg_archive_each(const char *path, int (*want)(void *ctx, const char *member), tg_member_fn fn, void *ctx,
                    size_t max_member, tg_ingest *g);

/* Member/file name classification (ingest.c). */
int tg_ingest_is_x_file(const char *path);        /* tweets.js, tweet.js, tweets-partN.js */
int tg_ingest_is_mastodon_file(const char *path); /* outbox.json */
int tg_ingest_is_x_account_file(const char *path); /* account.js */

#endif /* TG_DATA_INGEST_H */
