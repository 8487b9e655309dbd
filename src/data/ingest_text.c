/*
 * ingest_text.c — the streaming line reader and the plain-text reader of
 * ingest: documents split by blank lines, by line, or by a separator line
 * (`--split %` for fortune files).
 *
 * Memory is bounded by --max-bytes: a line or document longer than that is
 * reported and skipped while it streams past, never held whole.
 */
#include <string.h>

#include "core/core.h"
#include "data/ingest.h"

#define READ_CHUNK ((size_t)1 << 20)

int tg_line_reader_init(tg_line_reader *r, tg_read_fn rd, void *ctx, size_t max) {
    memset(r, 0, sizeof *r);
    r->rd = rd;
    r->ctx = ctx;
    r->max = max;
    r->cap = 2 * READ_CHUNK;
    r->buf = malloc(r->cap);
    if (!r->buf) return tg_error_set(TG_ERR_RUNTIME, "out of memory (line buffer)");
    return TG_OK;
}

void tg_line_reader_free(tg_line_reader *r) {
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* Reads more data after buf[end], moving unread data to the front and
 * growing the buffer up to max + one chunk. Returns bytes read (0 at the
 * end), -1 on error. */
static long fill(tg_line_reader *r) {
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->cap - r->end < READ_CHUNK) {
        size_t ncap = r->cap * 2;
        char *nb = realloc(r->buf, ncap);
        if (!nb) return -1;
        r->buf = nb;
        r->cap = ncap;
    }
    long n = r->rd(r->ctx, r->buf + r->end, r->cap - r->end);
    if (n < 0) {
        r->error = 1;
        return -1;
    }
    if (n == 0) r->eof = 1;
    r->end += (size_t)n;
    return n;
}

int tg_line_reader_next(tg_line_reader *r, const char **line, size_t *len) {
    size_t scanned = 0; /* bytes of the pending line already searched for '\n' */
    for (;;) {
        char *s = r->buf + r->start;
        size_t avail = r->end - r->start;
        char *nl = avail > scanned ? memchr(s + scanned, '\n', avail - scanned) : NULL;
        if (nl) {
            *line = s;
            *len = (size_t)(nl - s);
            r->start += *len + 1;
            r->line++;
            r->consumed += (int64_t)*len + 1;
            return 1;
        }
        scanned = avail;
        if (avail > r->max) {
            /* Too long: let the rest of the line stream past. */
            size_t total = avail;
            r->start = r->end = 0;
            for (;;) {
                long n = fill(r);
                if (n < 0) return -1;
                if (n == 0) break;
                char *p = memchr(r->buf, '\n', r->end);
                if (p) {
                    size_t k = (size_t)(p - r->buf);
                    total += k;
                    r->start = k + 1;
                    break;
                }
                total += r->end;
                r->start = r->end = 0;
            }
            r->line++;
            r->consumed += (int64_t)total + 1;
            *line = NULL;
            *len = total;
            return 2;
        }
        if (r->eof) {
            if (avail == 0) return 0;
            *line = s;
            *len = avail;
            r->start = r->end;
            r->line++;
            r->consumed += (int64_t)avail;
            return 1;
        }
        if (fill(r) < 0) return -1;
    }
}

typedef enum { SPLIT_BLANK, SPLIT_LINE, SPLIT_SEP } split_mode;

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v') return 0;
    return 1;
}

typedef struct {
    char *buf;
    size_t len, cap;
    int64_t first_line;
    int lines;
    int too_long;
} doc_buf;

static int doc_append(doc_buf *d, const char *s, size_t n, size_t max) {
    if (d->too_long) return TG_OK;
    if (d->len + n + 1 > max) {
        d->too_long = 1;
        return TG_OK;
    }
    if (d->len + n + 1 > d->cap) {
        size_t ncap = d->cap ? d->cap : 4096;
        while (ncap < d->len + n + 1) ncap *= 2;
        char *nb = realloc(d->buf, ncap);
        if (!nb) return tg_error_set(TG_ERR_RUNTIME, "out of memory (document of %zu bytes)", ncap);
        d->buf = nb;
        d->cap = ncap;
    }
    memcpy(d->buf + d->len, s, n);
    d->len += n;
    d->buf[d->len++] = '\n';
    return TG_OK;
}

static int doc_flush(tg_ingest *g, int source, doc_buf *d) {
    int rc = TG_OK;
    if (d->too_long)
        rc = tg_ingest_reject(g, TG_DROP_too_long, source, d->first_line,
                              "document longer than --max-bytes %lld, skipped",
                              (long long)tg_ingest_options(g)->max_bytes);
    else if (d->lines)
        rc = tg_ingest_add(g, TG_ITEM_TEXT, source, d->first_line, d->buf, d->len, NULL, NULL);
    d->len = 0;
    d->lines = 0;
    d->too_long = 0;
    return rc;
}

int tg_ingest_read_text(tg_ingest *g, int source, tg_read_fn rd, void *ctx) {
    const tg_ingest_opts *o = tg_ingest_options(g);
    split_mode mode = !strcmp(o->split, "blank-line") ? SPLIT_BLANK : !strcmp(o->split, "line") ? SPLIT_LINE : SPLIT_SEP;
    size_t seplen = strlen(o->split);
    tg_line_reader r;
    TG_TRY(tg_line_reader_init(&r, rd, ctx, (size_t)o->max_bytes));
    doc_buf d = {0};
    int rc = TG_OK;
    const char *line;
    size_t len;
    int st;
    while (rc == TG_OK && (st = tg_line_reader_next(&r, &line, &len)) != 0) {
        if (st < 0) {
            rc = tg_ingest_reject(g, TG_DROP_COUNT, source, r.line + 1, "read error; rest of the file skipped");
            break;
        }
        if ((r.line & 1023) == 0) tg_ingest_progress(g, r.consumed);
        if (st == 2) {
            if (mode == SPLIT_LINE) {
                rc = tg_ingest_reject(g, TG_DROP_too_long, source, r.line,
                                      "line of %zu bytes is longer than --max-bytes %lld, skipped", len,
                                      (long long)o->max_bytes);
            } else {
                if (!d.lines) d.first_line = r.line;
                d.lines++;
                d.too_long = 1;
            }
            continue;
        }
        if (memchr(line, 0, len)) {
            /* NUL bytes mean binary data (a .dat index, an image): none of it is text. */
            rc = doc_flush(g, source, &d);
            if (rc == TG_OK)
                rc = tg_ingest_reject(g, TG_DROP_COUNT, source, r.line,
                                      "NUL byte: binary data, not text; rest of the file skipped");
            break;
        }
        if (mode == SPLIT_LINE) {
            if (!is_blank(line, len)) rc = tg_ingest_add(g, TG_ITEM_TEXT, source, r.line, line, len, NULL, NULL);
            continue;
        }
        int sep;
        if (mode == SPLIT_BLANK) sep = is_blank(line, len);
        else {
            size_t k = len;
            while (k > 0 && (line[k - 1] == '\r' || line[k - 1] == ' ' || line[k - 1] == '\t')) k--;
            sep = k == seplen && memcmp(line, o->split, seplen) == 0;
        }
        if (sep) {
            rc = doc_flush(g, source, &d);
            continue;
        }
        if (!d.lines) d.first_line = r.line;
        d.lines++;
        rc = doc_append(&d, line, len, (size_t)o->max_bytes);
    }
    if (rc == TG_OK) rc = doc_flush(g, source, &d);
    tg_ingest_progress(g, r.consumed);
    free(d.buf);
    tg_line_reader_free(&r);
    return rc;
}
