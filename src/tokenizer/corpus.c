/*
 * corpus.c — chunked reading of JSONL corpora (see corpus.h). Lines are
 * gathered into one buffer per chunk so that threads can parse and encode
 * them in parallel while memory stays bounded by the chunk size.
 */
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "tokenizer/corpus.h"

int tg_jsonl_open(tg_jsonl_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    if (strcmp(path, "-") == 0) {
        r->f = stdin;
        r->size = -1;
    } else {
        if (tg_path_is_dir(path)) return tg_error_set(TG_ERR_INPUT, "%s: is a directory, expected a JSONL file", path);
        r->f = fopen(path, "rb");
        if (!r->f) return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
        struct stat st;
        r->size = fstat(fileno(r->f), &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
    }
    r->path = strdup(strcmp(path, "-") == 0 ? "<stdin>" : path);
    if (!r->path) {
        tg_jsonl_close(r);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    return TG_OK;
}

void tg_jsonl_close(tg_jsonl_reader *r) {
    if (r->f && r->f != stdin) fclose(r->f);
    free(r->path);
    free(r->buf);
    free(r->off);
    free(r->len);
    free(r->no);
    free(r->line);
    memset(r, 0, sizeof *r);
}

int tg_jsonl_next_chunk(tg_jsonl_reader *r, size_t max_bytes, size_t *nlines) {
    r->buf_len = 0;
    r->nlines = 0;
    ssize_t n;
    while (r->buf_len < max_bytes && (n = getline(&r->line, &r->line_cap, r->f)) > 0) {
        r->lineno++;
        r->bytes_read += n;
        size_t l = (size_t)n;
        while (l > 0 && (r->line[l - 1] == '\n' || r->line[l - 1] == '\r')) l--;
        size_t k = 0;
        while (k < l && (r->line[k] == ' ' || r->line[k] == '\t')) k++;
        if (k == l) continue; /* blank line */
        if (r->buf_len + l + 1 > r->buf_cap) {
            size_t cap = r->buf_cap ? r->buf_cap : (1 << 20);
            while (cap < r->buf_len + l + 1) cap *= 2;
            char *b = realloc(r->buf, cap);
            if (!b) return tg_error_set(TG_ERR_RUNTIME, "%s:%lld: out of memory", r->path, (long long)r->lineno);
            r->buf = b;
            r->buf_cap = cap;
        }
        if (r->nlines == r->lcap) {
            size_t cap = r->lcap ? r->lcap * 2 : 4096;
            size_t *o = realloc(r->off, cap * sizeof *o);
            if (o) r->off = o;
            size_t *ln = realloc(r->len, cap * sizeof *ln);
            if (ln) r->len = ln;
            int64_t *no = realloc(r->no, cap * sizeof *no);
            if (no) r->no = no;
            if (!o || !ln || !no) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
            r->lcap = cap;
        }
        memcpy(r->buf + r->buf_len, r->line, l);
        r->off[r->nlines] = r->buf_len;
        r->len[r->nlines] = l;
        r->no[r->nlines] = r->lineno;
        r->nlines++;
        r->buf_len += l;
        r->buf[r->buf_len++] = 0;
    }
    if (ferror(r->f)) return tg_error_set(TG_ERR_INPUT, "%s: read error: %s", r->path, strerror(errno));
    *nlines = r->nlines;
    return TG_OK;
}

int tg_jsonl_text(const char *line, size_t len, const char *path, int64_t lineno, json_t **obj, const char **text,
                  size_t *tlen) {
    json_error_t err;
    *obj = json_loadb(line, len, JSON_ALLOW_NUL, &err);
    if (!*obj)
        return tg_error_set(TG_ERR_INPUT, "%s:%lld: malformed JSON (column %d: %s)", path, (long long)lineno, err.column,
                            err.text);
    json_t *t = json_object_get(*obj, "text");
    if (!json_is_string(t)) {
        json_decref(*obj);
        *obj = NULL;
        return tg_error_set(TG_ERR_INPUT, "%s:%lld: no \"text\" string in this line", path, (long long)lineno);
    }
    *text = json_string_value(t);
    *tlen = json_string_length(t);
    return TG_OK;
}

int tg_jsonl_error(int rc, const char *path, int64_t lineno) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", tg_error_message()); /* the message buffer is about to be rewritten */
    if (lineno > 0) return tg_error_set(rc, "%s:%lld: %s", path, (long long)lineno, msg);
    return tg_error_set(rc, "%s: %s", path, msg);
}

int tg_corpus_paths(const char *corpus, char **train, char **val) {
    *train = *val = NULL;
    if (tg_path_is_dir(corpus)) {
        char *t = tg_path_join(corpus, "train.jsonl"), *v = tg_path_join(corpus, "val.jsonl");
        if (!t || !v) {
            free(t);
            free(v);
            return tg_error_set(TG_ERR_RUNTIME, "out of memory");
        }
        if (!tg_path_exists(t)) {
            free(t);
            free(v);
            return tg_error_set(TG_ERR_INPUT, "%s: no train.jsonl in this directory (expected `truthgpt ingest` output)",
                                corpus);
        }
        if (!tg_path_exists(v)) {
            free(v);
            v = NULL;
        }
        *train = t;
        *val = v;
        return TG_OK;
    }
    if (!tg_path_exists(corpus)) return tg_error_set(TG_ERR_INPUT, "%s: corpus not found", corpus);
    *train = strdup(corpus);
    if (!*train) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    return TG_OK;
}
