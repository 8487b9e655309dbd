/*
 * jsonl_fields.h — the fields ingest takes from a JSONL line (the text at a
 * dotted path, the id and the date beside it), through simdjson's validating
 * DOM parser: jansson built a tree of every value of the line and was the
 * bottleneck of ingest; simdjson parses many times faster (figures in
 * bench/README.md).
 *
 * C interface to a C++ library: jsonl_fields.cpp is the only C++ file.
 */
#ifndef TG_JSONL_FIELDS_H
#define TG_JSONL_FIELDS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_jsonl_parser tg_jsonl_parser; /* one per thread */

typedef struct {
    const char *text, *id, *created_at; /* id and created_at may be NULL */
    size_t text_len, id_len, created_at_len;
    const char *author, *url;           /* may be NULL */
    size_t author_len, url_len;
} tg_jsonl_doc;

enum { TG_JSONL_OK = 0, TG_JSONL_INVALID = 1, TG_JSONL_NO_FIELD = 2, TG_JSONL_NOMEM = 3 };

tg_jsonl_parser *tg_jsonl_parser_new(void);
void tg_jsonl_parser_free(tg_jsonl_parser *p);

/* Parses one line (fully validated) and finds `field` (a dotted path through
 * nested objects) as a string; id ("id_str" or "id", a string or an integer)
 * and created_at ("created_at", "published", "date" or "timestamp") are
 * looked up in the object holding the field, then in the root; so are
 * author ("author", "username", "screen_name", "handle", "user" when a
 * string) and url ("url", "permalink", "link"). The pointers
 * stay valid until the next call on p. Strings may contain NUL characters
 * (\u0000). On an error, msg (of n bytes) says why. */
int tg_jsonl_extract(tg_jsonl_parser *p, const char *line, size_t len, const char *field, tg_jsonl_doc *out,
                     char *msg, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* TG_JSONL_FIELDS_H */
