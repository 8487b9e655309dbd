/*
 * corpus.h — reading a corpus of JSONL documents ({"text": ...} a line, the
 * format `truthgpt ingest` writes) in bounded chunks of lines, for the
 * commands that stream over a corpus (tokenizer train, tokenize).
 */
#ifndef TG_TOK_CORPUS_H
#define TG_TOK_CORPUS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char *path;
    int64_t size;       /* file size in bytes (for progress), -1 for a pipe */
    int64_t bytes_read;
    int64_t lineno;     /* lines read so far */
    /* the current chunk: lines back to back, each NUL-terminated */
    char *buf;
    size_t buf_len, buf_cap;
    size_t *off;        /* (nlines) start of each line in buf */
    size_t *len;        /* (nlines) length without the newline */
    int64_t *no;        /* (nlines) 1-based line numbers */
    size_t nlines, lcap;
    char *line;         /* getline's buffer */
    size_t line_cap;
} tg_jsonl_reader;

/* path: a JSONL file, or "-" for stdin. */
int tg_jsonl_open(tg_jsonl_reader *r, const char *path);
void tg_jsonl_close(tg_jsonl_reader *r);
/* Reads whole lines (blank lines skipped) until about max_bytes are in the
 * chunk; *nlines = 0 at the end of the file. */
int tg_jsonl_next_chunk(tg_jsonl_reader *r, size_t max_bytes, size_t *nlines);

/* The "text" field of one JSONL line: *text points into the parsed object
 * *obj (json_decref it when done). Errors name path:lineno. Thread-safe. */
struct json_t;
int tg_jsonl_text(const char *line, size_t len, const char *path, int64_t lineno, struct json_t **obj,
                  const char **text, size_t *tlen);

/* Re-raises the current error as "path:lineno: message" ("path: message"
 * when lineno is 0) and returns rc. */
int tg_jsonl_error(int rc, const char *path, int64_t lineno);

/* Resolves CORPUS: an ingest directory (its train.jsonl, and val.jsonl when
 * present) or one JSONL file (train only). *train and *val are malloc'd
 * (*val NULL when absent). */
int tg_corpus_paths(const char *corpus, char **train, char **val);

#endif /* TG_TOK_CORPUS_H */
