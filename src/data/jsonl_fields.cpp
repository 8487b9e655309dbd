/*
 * jsonl_fields.cpp — tg_jsonl_extract on simdjson's DOM parser (see
 * jsonl_fields.h). Error codes only: no exception crosses into C.
 */
#include "data/jsonl_fields.h"

#include <simdjson.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <string_view>
#include <vector>

struct tg_jsonl_parser {
    simdjson::dom::parser parser;
    std::vector<char> buf; /* the line, then SIMDJSON_PADDING bytes simdjson may read */
    char num[4][32];       /* integer id, date, author or url, as text */
};

tg_jsonl_parser *tg_jsonl_parser_new(void) { return new (std::nothrow) tg_jsonl_parser(); }

void tg_jsonl_parser_free(tg_jsonl_parser *p) { delete p; }

/* The first of names that is a string or an integer in obj, as text. */
static bool string_field(simdjson::dom::object obj, const char *const *names, char *num, size_t num_n,
                         const char **s, size_t *len) {
    for (int i = 0; names[i]; i++) {
        simdjson::dom::element v;
        if (obj.at_key(names[i]).get(v) != simdjson::SUCCESS) continue;
        std::string_view sv;
        if (v.get_string().get(sv) == simdjson::SUCCESS) {
            *s = sv.data();
            *len = sv.size();
            return true;
        }
        int64_t iv;
        uint64_t uv;
        int w = -1;
        if (v.get_int64().get(iv) == simdjson::SUCCESS) w = snprintf(num, num_n, "%lld", (long long)iv);
        else if (v.get_uint64().get(uv) == simdjson::SUCCESS) w = snprintf(num, num_n, "%llu", (unsigned long long)uv);
        if (w > 0) {
            *s = num;
            *len = (size_t)w;
            return true;
        }
    }
    return false;
}

int tg_jsonl_extract(tg_jsonl_parser *p, const char *line, size_t len, const char *field, tg_jsonl_doc *out,
                     char *msg, size_t n) {
    std::memset(out, 0, sizeof *out);
    if (p->buf.size() < len + simdjson::SIMDJSON_PADDING) {
        try {
            p->buf.resize(len + simdjson::SIMDJSON_PADDING);
        } catch (const std::bad_alloc &) {
            snprintf(msg, n, "out of memory");
            return TG_JSONL_NOMEM;
        }
    }
    std::memcpy(p->buf.data(), line, len);
    std::memset(p->buf.data() + len, 0, simdjson::SIMDJSON_PADDING);
    simdjson::dom::element root;
    simdjson::error_code e = p->parser.parse(p->buf.data(), len, false).get(root);
    if (e != simdjson::SUCCESS) {
        snprintf(msg, n, "invalid JSON: %s", simdjson::error_message(e));
        return TG_JSONL_INVALID;
    }
    /* Walk the dotted path; parent is the object that holds the last key. */
    simdjson::dom::object parent, rootobj;
    simdjson::dom::element cur = root;
    bool root_is_object = root.get_object().get(rootobj) == simdjson::SUCCESS;
    const char *path = field;
    for (;;) {
        simdjson::dom::object obj;
        if (cur.get_object().get(obj) != simdjson::SUCCESS) {
            snprintf(msg, n, "no string field '%s'", field);
            return TG_JSONL_NO_FIELD;
        }
        const char *dot = std::strchr(path, '.');
        std::string_view key(path, dot ? (size_t)(dot - path) : std::strlen(path));
        parent = obj;
        if (obj.at_key(key).get(cur) != simdjson::SUCCESS) {
            snprintf(msg, n, "no string field '%s'", field);
            return TG_JSONL_NO_FIELD;
        }
        if (!dot) break;
        path = dot + 1;
    }
    std::string_view text;
    if (cur.get_string().get(text) != simdjson::SUCCESS) {
        snprintf(msg, n, "no string field '%s'", field);
        return TG_JSONL_NO_FIELD;
    }
    out->text = text.data();
    out->text_len = text.size();
    static const char *const id_names[] = {"id_str", "id", nullptr};
    static const char *const ca_names[] = {"created_at", "published", "date", "timestamp", nullptr};
    bool nested = root_is_object && std::strchr(field, '.') != nullptr; /* parent is not the root */
    if (!string_field(parent, id_names, p->num[0], sizeof p->num[0], &out->id, &out->id_len) && nested)
        string_field(rootobj, id_names, p->num[0], sizeof p->num[0], &out->id, &out->id_len);
    if (!string_field(parent, ca_names, p->num[1], sizeof p->num[1], &out->created_at, &out->created_at_len) && nested)
        string_field(rootobj, ca_names, p->num[1], sizeof p->num[1], &out->created_at, &out->created_at_len);
    static const char *const au_names[] = {"author", "username", "screen_name", "handle", "user", nullptr};
    static const char *const url_names[] = {"url", "permalink", "link", nullptr};
    if (!string_field(parent, au_names, p->num[2], sizeof p->num[2], &out->author, &out->author_len) && nested)
        string_field(rootobj, au_names, p->num[2], sizeof p->num[2], &out->author, &out->author_len);
    if (!string_field(parent, url_names, p->num[3], sizeof p->num[3], &out->url, &out->url_len) && nested)
        string_field(rootobj, url_names, p->num[3], sizeof p->num[3], &out->url, &out->url_len);
    return TG_JSONL_OK;
}
