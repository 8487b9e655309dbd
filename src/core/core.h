/*
 * core.h — internal helpers shared by every module: check macros, aligned
 * allocation, timing, logging, a seeded RNG, file-system helpers (atomic
 * writes, mkdir -p), SHA-256, UTF-8 validation, and a terminal progress
 * line.
 *
 * Library code reports failures through tg_error_set (truthgpt.h) and returns
 * a status; nothing here calls exit().
 */
#ifndef TG_CORE_H
#define TG_CORE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "truthgpt.h"

/* ------------------------------------------------------------ check macros */

/* TG_TRY(expr): evaluate a status-returning call and return its status on failure. */
#define TG_TRY(expr)                           \
    do {                                       \
        int tg_try_rc_ = (expr);               \
        if (tg_try_rc_ != TG_OK) return tg_try_rc_; \
    } while (0)

/* TG_ASSERT: an always-on invariant check that names file:line, then aborts.
 * Only for programming errors, never for bad input. */
#define TG_ASSERT(cond)                                                             \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* ------------------------------------------------------------- allocation */

/* 64-byte aligned, zeroed allocation; returns NULL and sets an error naming
 * what on failure. Free with tg_free. */
void *tg_alloc(size_t bytes, const char *what);
void tg_free(void *p);
/* Zeroed memory for big tables (hash tables, caches): from TG_BIG_BYTES on,
 * an anonymous mmap with transparent huge pages asked for (pages cost
 * nothing until touched, and a lookup rarely misses the TLB); below, calloc.
 * tg_big_grow extends a block from n to m bytes (mremap moves the pages,
 * only the new part is ever touched); tg_big_free takes the size given. */
#define TG_BIG_BYTES ((size_t)2 << 20)
void *tg_big_zalloc(size_t n);
void *tg_big_grow(void *p, size_t n, size_t m);
void tg_big_free(void *p, size_t n);

/* --------------------------------------------------------- time & logging */

/* The git commit of the build ("unknown" outside a checkout). */
const char *tg_git_commit(void);

double tg_now(void);                      /* monotonic seconds */
extern int tg_log_quiet;                  /* 1: tg_info prints nothing */
void tg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Peak resident set size of this process in MB. */
double tg_peak_rss_mb(void);
/* Number of OpenMP threads in use (1 without OpenMP). */
int tg_num_threads(void);
void tg_set_threads(int n);

/* -------------------------------------------------------------------- rng */

/* xoshiro256** seeded by splitmix64: fast, reproducible across platforms. */
typedef struct { uint64_t s[4]; } tg_rng;
void tg_rng_seed(tg_rng *r, uint64_t seed);
uint64_t tg_rng_next(tg_rng *r);
float tg_rng_uniform(tg_rng *r);          /* [0, 1) */
float tg_rng_normal(tg_rng *r);           /* N(0, 1), Box-Muller */

/* -------------------------------------------------------------- files */

/* mkdir -p. */
int tg_mkdirs(const char *path);
int tg_path_is_dir(const char *path);
int tg_path_exists(const char *path);
/* Joins a and b with '/'. Returns a malloc'd string. */
char *tg_path_join(const char *a, const char *b);
/* Reads a whole file (NUL-terminated for convenience). */
int tg_read_file(const char *path, char **data, size_t *len);
/* Writes data to path atomically: path.tmp.PID, fsync, rename, fsync dir. */
int tg_write_file_atomic(const char *path, const void *data, size_t len);

/* Atomic streaming writer: writes into a temporary name, commit renames. */
typedef struct {
    FILE *f;
    char *path;
    char *tmp;
} tg_atomic_file;
int tg_atomic_open(tg_atomic_file *af, const char *path);
int tg_atomic_commit(tg_atomic_file *af);   /* flush, fsync, rename; closes */
void tg_atomic_abort(tg_atomic_file *af);   /* remove the temporary; closes */

/* ---------------------------------------------------------------- hashing */

void tg_sha256(const void *data, size_t len, uint8_t out[32]);
int tg_sha256_file(const char *path, uint8_t out[32]);
void tg_hex(const uint8_t *bytes, size_t n, char *out /* 2n+1 */);
uint64_t tg_hash64(const void *data, size_t len, uint64_t seed); /* fast non-crypto */

/* ------------------------------------------------------------------ UTF-8 */
/* The one UTF-8 validator (utf8.c): well-formed means Unicode's table 3-7
 * (no overlong forms, no surrogates, nothing above U+10FFFF). */

/* The sequence at s[0..n): its length 1-4 when complete and valid (*cp, may
 * be NULL, gets the code point); 0 when the n bytes are a valid start cut
 * short (n == 0 included); -1 when invalid. */
int tg_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Bytes of the longest valid prefix of s[0..n): n when all of it is valid. */
size_t tg_utf8_valid_prefix(const uint8_t *s, size_t n);
/* Copies in[0..n) to out (cap bytes; 3n always suffices) with every byte
 * that is not part of a valid sequence replaced by U+FFFD, adding their
 * count to *n_invalid (may be NULL). Stops before a piece that does not fit.
 * Returns the bytes written; out is not NUL-terminated. */
size_t tg_utf8_sanitize(const char *in, size_t n, char *out, size_t cap, int64_t *n_invalid);
/* Bytes at the end of s[0..n) that are a valid but incomplete sequence (0-3):
 * what a stream holds back until the next bytes complete it. */
size_t tg_utf8_incomplete_tail(const uint8_t *s, size_t n);
/* Writes cp (<= U+10FFFF) as UTF-8 to out (4 bytes room); returns its length. */
size_t tg_utf8_encode(uint32_t cp, char *out);

/* -------------------------------------------------------------- progress */

/* A live progress line on a terminal (redrawn at most 10x a second), plain
 * lines every `plain_every` seconds otherwise. */
typedef struct {
    const char *label;
    double total;       /* units of work, 0 if unknown */
    double start, last_draw, last_plain;
    int tty;
    double plain_every;
} tg_progress;
void tg_progress_start(tg_progress *p, const char *label, double total);
/* done: units finished; extra: text appended (may be NULL). */
void tg_progress_update(tg_progress *p, double done, const char *extra);
void tg_progress_finish(tg_progress *p, double done, const char *extra);
/* Formats seconds as 1h02m, 3m05s, 12.3s. */
void tg_format_duration(double s, char *buf, size_t n);

#endif /* TG_CORE_H */
