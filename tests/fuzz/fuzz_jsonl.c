/* fuzz_jsonl.c — one JSONL line of ingest (simdjson's validating parser and
 * the field lookup). The first byte picks the field path. */
#include "data/jsonl_fields.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_jsonl_parser *p;
    if (!p) p = tg_jsonl_parser_new();
    if (!p || size == 0) return 0;
    static const char *const fields[] = {"text", "content", "post.body.text", "a.b"};
    const char *field = fields[data[0] & 3];
    tg_jsonl_doc d;
    char msg[256];
    if (tg_jsonl_extract(p, (const char *)data + 1, size - 1, field, &d, msg, sizeof msg) == TG_JSONL_OK) {
        volatile char sink = 0;
        for (size_t i = 0; i < d.text_len; i++) sink ^= d.text[i];
        if (d.id)
            for (size_t i = 0; i < d.id_len; i++) sink ^= d.id[i];
        if (d.created_at)
            for (size_t i = 0; i < d.created_at_len; i++) sink ^= d.created_at[i];
        (void)sink;
    }
    return 0;
}
