/*
 * grounding.c — search and grounded chat in the server (docs/search.md,
 * docs/api.md): GET /v1/search, and for POST /v1/chat/completions the
 * retrieval of posts for the last user message, the sources block put into
 * the prompt, and the `sources` and `annotations` (url_citation) of the
 * reply. All of it happens on the HTTP threads before and after generation:
 * the scheduler and the engine see an ordinary prompt.
 *
 * One index per server process (opened by `serve --index` before the
 * server starts); tg_search_db serialises its queries behind a mutex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "data/ingest.h"
#include "search/search.h"
#include "serve/serve.h"

#define MAX_TOP_K 10
#define MAX_CITATIONS 256

static tg_search_db *g_db;
static int g_default_k;

int tg_grounding_open(const char *index_path, int default_top_k) {
    if (default_top_k < 0 || default_top_k > MAX_TOP_K)
        return tg_error_set(TG_ERR_INPUT, "--ground-top-k: %d is not in 0..%d", default_top_k, MAX_TOP_K);
    if (default_top_k > 0 && !index_path)
        return tg_error_set(TG_ERR_INPUT, "--ground-top-k needs --index DB (the posts to ground answers in)");
    g_default_k = default_top_k;
    if (!index_path) return TG_OK;
    return tg_search_open(index_path, 0, &g_db);
}

void tg_grounding_close(void) {
    tg_search_close(g_db);
    g_db = NULL;
}

typedef struct {
    tg_search_results res; /* the posts retrieved */
    int n;                 /* the first n of them are the prompt's sources, numbered from 1 */
} grounding;

void tg_grounding_free(void *g) {
    grounding *gr = g;
    if (!gr) return;
    tg_search_results_free(&gr->res);
    free(gr);
}

/* The request's "grounding": absent (the server default), true/false, or
 * {"index": bool, "top_k": K}. Returns K (0: not grounded) or -1 with *err. */
static int requested_k(json_t *body, tg_api_error *err) {
    json_t *g = json_object_get(body, "grounding");
    int k = g_default_k;
    if (!g || json_is_null(g)) return k;
    if (json_is_boolean(g)) k = json_is_true(g) ? (g_default_k ? g_default_k : 3) : 0;
    else if (json_is_object(g)) {
        json_t *ix = json_object_get(g, "index"), *tk = json_object_get(g, "top_k");
        if (ix && !json_is_null(ix) && !json_is_boolean(ix)) {
            tg_api_error_fill(err, 400, "invalid_request_error", "grounding.index", "invalid_type",
                              "'grounding.index' must be a boolean");
            return -1;
        }
        k = ix && json_is_false(ix) ? 0 : (g_default_k ? g_default_k : 3);
        if (tk && !json_is_null(tk)) {
            if (!json_is_integer(tk) || json_integer_value(tk) < 1 || json_integer_value(tk) > MAX_TOP_K) {
                tg_api_error_fill(err, 400, "invalid_request_error", "grounding.top_k", "invalid_value",
                                  "'grounding.top_k' must be an integer between 1 and %d", MAX_TOP_K);
                return -1;
            }
            if (k) k = (int)json_integer_value(tk);
        }
    } else {
        tg_api_error_fill(err, 400, "invalid_request_error", "grounding", "invalid_type",
                          "'grounding' must be a boolean or an object {\"index\": true, \"top_k\": K}");
        return -1;
    }
    if (k > 0 && !g_db) {
        tg_api_error_fill(err, 400, "invalid_request_error", "grounding", "invalid_value",
                          "this server has no search index to ground answers in (start it with --index DB)");
        return -1;
    }
    return k;
}

int tg_grounding_encode_chat(const tg_api_ctx *ctx, json_t *body, const char **roles, char **contents, int n,
                             int32_t **ids, void **out, tg_api_error *err) {
    *out = NULL;
    int k = requested_k(body, err);
    if (k < 0) return -1;
    int last = -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(roles[i], "user")) last = i;
    if (k == 0 || last < 0) {
        int n_ids = ctx->encode_chat(ctx->ctx, roles, (const char *const *)contents, n, ids);
        if (n_ids < 0)
            tg_api_error_fill(err, 400, "invalid_request_error", "messages", "invalid_value",
                              "the messages could not be tokenized (invalid UTF-8?)");
        return n_ids;
    }
    grounding *g = calloc(1, sizeof *g);
    const char **r2 = calloc((size_t)n + 1, sizeof *r2);
    const char **c2 = calloc((size_t)n + 1, sizeof *c2);
    if (!g || !r2 || !c2) {
        free(g);
        free(r2);
        free(c2);
        tg_api_error_fill(err, 500, "server_error", NULL, NULL, "out of memory");
        return -1;
    }
    tg_search_params p = tg_search_default_params();
    p.limit = k;
    int rc = tg_search_run(g_db, contents[last], &p, &g->res);
    if (rc == TG_ERR_INPUT) g->res.n = 0; /* a question without words: nothing to retrieve, answer ungrounded */
    else if (rc != TG_OK) {
        tg_api_error_fill(err, 500, "server_error", NULL, NULL, "search failed: %s", tg_error_message());
        tg_grounding_free(g);
        free(r2);
        free(c2);
        return -1;
    }
    /* The sources go in a system message right before the question. Long
     * posts are cut until the prompt leaves a quarter of the context to
     * answer in; then sources are dropped from the end. */
    int n_ids = -1, budget = ctx->n_ctx - ctx->n_ctx / 4;
    static const int cuts[] = {400, 200, 100, 50};
    for (g->n = g->res.n; g->n > 0; g->n--) {
        for (int c = 0; c < 4; c++) {
            char *block = tg_search_sources_prompt(g->res.hits, g->n, cuts[c]);
            if (!block) break;
            int m = 0;
            for (int i = 0; i < n; i++) {
                if (i == last) {
                    r2[m] = "system";
                    c2[m++] = block;
                }
                r2[m] = roles[i];
                c2[m++] = contents[i];
            }
            free(*ids);
            *ids = NULL;
            n_ids = ctx->encode_chat(ctx->ctx, r2, c2, m, ids);
            free(block);
            if (n_ids < 0 || n_ids <= budget) goto done;
        }
    }
    /* No source fits (or none was found): the question alone. */
    free(*ids);
    *ids = NULL;
    n_ids = ctx->encode_chat(ctx->ctx, roles, (const char *const *)contents, n, ids);
done:
    free(r2);
    free(c2);
    if (n_ids < 0) {
        tg_grounding_free(g);
        tg_api_error_fill(err, 400, "invalid_request_error", "messages", "invalid_value",
                          "the messages could not be tokenized (invalid UTF-8?)");
        return -1;
    }
    *out = g;
    return n_ids;
}

/* ------------------------------------------------------------ responses */

/* A source's title for url_citation: "@author: the first words of the post". */
static json_t *title_json(const tg_search_hit *h) {
    char t[256];
    size_t o = (size_t)snprintf(t, sizeof t, "%s: ", h->author ? h->author : "post");
    size_t i = 0, chars = 0, tl = strlen(h->text);
    while (i < tl && chars < 60 && o + 8 < sizeof t) {
        size_t l = 1;
        while (i + l < tl && ((unsigned char)h->text[i + l] & 0xC0) == 0x80) l++;
        if (o + l + 4 >= sizeof t) break;
        for (size_t b = 0; b < l; b++) t[o++] = h->text[i + b] == '\n' ? ' ' : h->text[i + b];
        i += l;
        chars++;
    }
    if (i < tl) o += (size_t)snprintf(t + o, sizeof t - o, "\xE2\x80\xA6");
    t[o] = 0;
    return json_string(t);
}

static json_t *source_url(const tg_search_hit *h) {
    if (h->url) return json_string(h->url);
    char u[320];
    snprintf(u, sizeof u, "post:%s", h->id);
    return json_string(u);
}

static json_t *sources_json(const grounding *g) {
    json_t *a = json_array();
    for (int i = 0; i < g->n; i++) {
        json_t *o = tg_search_hit_json(&g->res.hits[i], 0);
        json_object_set_new(o, "index", json_integer(i + 1));
        json_object_set_new(o, "title", title_json(&g->res.hits[i]));
        json_array_append_new(a, o);
    }
    return a;
}

/* OpenAI's url_citation annotations, one per marker "[N]" in text (valid
 * UTF-8, as sent); indices count Unicode code points. */
static json_t *annotations_json(const grounding *g, const char *text, size_t len) {
    json_t *a = json_array();
    tg_search_citation *c = malloc(MAX_CITATIONS * sizeof *c);
    int nc = c ? tg_search_citations(text, len, g->n, c, MAX_CITATIONS) : 0;
    for (int i = 0; i < nc; i++) {
        const tg_search_hit *h = &g->res.hits[c[i].source - 1];
        json_array_append_new(a, json_pack("{s:s, s:{s:I, s:I, s:o, s:o}}", "type", "url_citation", "url_citation",
                                           "start_index", (json_int_t)c[i].start, "end_index", (json_int_t)c[i].end,
                                           "title", title_json(h), "url", source_url(h)));
    }
    free(c);
    return a;
}

void tg_grounding_message(const void *gv, json_t *message) {
    const grounding *g = gv;
    if (!g || !message) return;
    json_t *content = json_object_get(message, "content");
    json_object_set_new(message, "annotations",
                        annotations_json(g, json_string_value(content), json_string_length(content)));
    json_object_set_new(message, "sources", sources_json(g));
}

void tg_grounding_stream_start(const void *gv, json_t *delta) {
    const grounding *g = gv;
    if (g && delta) json_object_set_new(delta, "sources", sources_json(g));
}

void tg_grounding_stream_end(const void *gv, const tg_sreq *r, json_t *delta) {
    const grounding *g = gv;
    if (!g || !delta) return;
    size_t total = 0;
    for (int i = 0; i < r->n_events; i++) total += (size_t)r->events[i].text_len;
    char *raw = malloc(total + 1), *text = malloc(3 * total + 1);
    if (!raw || !text) {
        free(raw);
        free(text);
        return;
    }
    size_t o = 0;
    for (int i = 0; i < r->n_events; i++) {
        memcpy(raw + o, r->events[i].text, (size_t)r->events[i].text_len);
        o += (size_t)r->events[i].text_len;
    }
    /* As the chunks carried it: invalid bytes as U+FFFD. */
    int64_t bad = 0;
    size_t n = tg_utf8_sanitize(raw, o, text, 3 * total + 1, &bad);
    json_object_set_new(delta, "annotations", annotations_json(g, text, n));
    free(raw);
    free(text);
}

/* ---------------------------------------------------------- /v1/search */

char *tg_grounding_search_json(const char *(*arg)(void *ctx, const char *name), void *ctx, int *status) {
    tg_api_error e;
    const char *q = arg(ctx, "q"), *limit = arg(ctx, "limit");
    if (!g_db) {
        *status = 404;
        tg_api_error_fill(&e, 404, "invalid_request_error", NULL, "not_found",
                          "this server has no search index (start it with --index DB)");
        return tg_api_error_json(&e);
    }
    tg_search_params p = tg_search_default_params();
    p.author = arg(ctx, "author");
    p.since = arg(ctx, "since");
    p.until = arg(ctx, "until");
    if (p.author && !p.author[0]) p.author = NULL;
    if (p.since && !p.since[0]) p.since = NULL;
    if (p.until && !p.until[0]) p.until = NULL;
    const char *bad = NULL;
    if (limit) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*limit == 0 || *end || v < 1 || v > 100) bad = "limit";
        else p.limit = (int)v;
    }
    if (!bad && (!q || !q[0])) bad = "q";
    if (bad) {
        *status = 400;
        tg_api_error_fill(&e, 400, "invalid_request_error", bad, "invalid_value",
                          !strcmp(bad, "q") ? "'q' is required: GET /v1/search?q=words" : "'limit' must be 1..100");
        return tg_api_error_json(&e);
    }
    tg_search_results r;
    int rc = tg_search_run(g_db, q, &p, &r);
    if (rc != TG_OK) {
        *status = rc == TG_ERR_INPUT ? 400 : 500;
        const char *m = tg_error_message();
        const char *param = strstr(m, "since") ? "since" : strstr(m, "until") ? "until" : "q";
        tg_api_error_fill(&e, *status, *status == 400 ? "invalid_request_error" : "server_error",
                          *status == 400 ? param : NULL, NULL, "%s", m);
        return tg_api_error_json(&e);
    }
    json_t *data = json_array();
    for (int i = 0; i < r.n; i++) json_array_append_new(data, tg_search_hit_json(&r.hits[i], 1));
    tg_search_results_free(&r);
    json_t *o = json_pack("{s:s, s:s, s:o}", "object", "list", "query", q, "data", data);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    *status = 200;
    return s;
}
