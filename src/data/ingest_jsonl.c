/*
 * ingest_jsonl.c — the JSONL reader of ingest: one JSON object a line, the
 * text at --field (a dotted path such as tweet.full_text). Lines stream
 * through the line reader; parsing happens later in the parallel stage
 * (ingest.c), so this loop only cuts lines.
 */
#include <string.h>

#include "core/core.h"
#include "data/ingest.h"

int tg_ingest_read_jsonl(tg_ingest *g, int source, tg_read_fn rd, void *ctx) {
    const tg_ingest_opts *o = tg_ingest_options(g);
    tg_line_reader r;
    TG_TRY(tg_line_reader_init(&r, rd, ctx, (size_t)o->max_bytes));
    int rc = TG_OK, st;
    const char *line;
    size_t len;
    while (rc == TG_OK && (st = tg_line_reader_next(&r, &line, &len)) != 0) {
        if (st < 0) {
            rc = tg_ingest_reject(g, TG_DROP_COUNT, source, r.line + 1, "read error; rest of the file skipped");
            break;
        }
        if ((r.line & 1023) == 0) tg_ingest_progress(g, r.consumed);
        if (st == 2) {
            rc = tg_ingest_reject(g, TG_DROP_too_long, source, r.line,
                                  "line of %zu bytes is longer than --max-bytes %lld, skipped", len,
                                  (long long)o->max_bytes);
            continue;
        }
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k == len) continue; /* blank lines separate nothing in JSONL */
        rc = tg_ingest_add(g, TG_ITEM_JSONL, source, r.line, line, len, NULL, NULL);
    }
    tg_ingest_progress(g, r.consumed);
    tg_line_reader_free(&r);
    return rc;
}
