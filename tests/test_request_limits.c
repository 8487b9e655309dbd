/*
 * test_request_limits.c — the one table of request limits (TG_MAX_* in
 * truthgpt.h) at its boundaries, through the server's request parser
 * (tg_api_parse): each limit is accepted, one past it refused with a 400
 * naming the field. What the parser accepts the engine must accept too, so
 * the parsed stop strings and top_logprobs at the limit are handed to
 * tg_engine_add of a small random model, and one past the limit is refused
 * there as well.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "test_util.h"

#include "fake_tokenizer.h" /* fake_encode: one id a byte, enough for the parser */

/* A prompt of one id a message: the messages limit must not hit the context. */
static int count_chat(void *ctx, const char *const *roles, const char *const *contents, int n, int32_t **ids) {
    (void)ctx, (void)roles, (void)contents;
    *ids = calloc((size_t)n + 1, sizeof **ids);
    return *ids ? n + 1 : -1;
}

static tg_api_ctx ctx = {fake_encode, count_chat, NULL, 64, 1 << 20, 256, "limits"};

/* A growing text buffer for request bodies. */
typedef struct {
    char *s;
    size_t n, cap;
} buf_t;

static void put(buf_t *b, const char *s) {
    size_t l = strlen(s);
    if (b->n + l + 1 > b->cap) {
        b->cap = (b->n + l + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, l + 1);
    b->n += l;
}

/* Parses body; checks accepted (want_param NULL) or refused with 400 naming want_param. */
static tg_sreq *expect(tg_sreq_kind kind, const char *body, const char *want_param, const char *what) {
    tg_api_error err;
    memset(&err, 0, sizeof err);
    tg_sreq *r = tg_api_parse(&ctx, kind, body, strlen(body), &err);
    tg_test_checks++;
    if (want_param ? (r || err.status != 400 || strcmp(err.param, want_param) != 0) : !r) {
        tg_test_failures++;
        fprintf(stderr, "FAIL %s: %s (status %d, param '%s': %s)\n", what, r ? "accepted" : "refused", err.status,
                err.param, err.message);
    }
    if (r && want_param) {
        tg_sreq_release(r);
        r = NULL;
    }
    return r;
}

/* A completions body with n stop strings of len bytes each. */
static char *stops_body(int n, size_t len) {
    buf_t b = {0};
    put(&b, "{\"prompt\": \"hi\", \"stop\": [");
    char *one = malloc(len + 1);
    for (size_t i = 0; i < len; i++) one[i] = (char)('a' + i % 26);
    one[len] = 0;
    for (int i = 0; i < n; i++) {
        if (i) put(&b, ", ");
        put(&b, "\"");
        one[0] = (char)('A' + i); /* distinct strings */
        put(&b, one);
        put(&b, "\"");
    }
    put(&b, "]}");
    free(one);
    return b.s;
}

static char *messages_body(int n) {
    buf_t b = {0};
    put(&b, "{\"messages\": [");
    for (int i = 0; i < n; i++) put(&b, i ? ", {\"role\": \"user\", \"content\": \"x\"}" : "{\"role\": \"user\", \"content\": \"x\"}");
    put(&b, "]}");
    return b.s;
}

int main(void) {
    /* A small model for the engine side. */
    tg_config cfg = {.n_layer = 1, .n_head = 1, .n_embd = 8, .n_ctx = 32, .vocab_size = 257, .ln_eps = 1e-5f,
                     .eos_id = 256};
    CHECK(tg_config_validate(&cfg) == TG_OK);
    tg_model *m = NULL;
    CHECK(tg_model_init(&m, &cfg) == TG_OK);
    tg_engine *e = NULL;
    if (m) {
        tg_model_init_weights(m, 3);
        CHECK(tg_engine_init(&e, m, NULL, 2, 0, TG_DTYPE_FP32) == TG_OK);
    }
    int32_t prompt[2] = {104, 105};

    /* stop strings: TG_MAX_STOP of TG_MAX_STOP_LEN bytes each */
    char *body = stops_body(TG_MAX_STOP, TG_MAX_STOP_LEN);
    tg_sreq *r = expect(TG_SREQ_COMPLETION, body, NULL, "TG_MAX_STOP stops of TG_MAX_STOP_LEN bytes");
    free(body);
    if (r) {
        CHECK_EQ_INT(r->n_stop, TG_MAX_STOP);
        for (int i = 0; i < r->n_stop; i++) CHECK_EQ_INT(strlen(r->stop[i]), TG_MAX_STOP_LEN);
        /* the engine takes what the parser took */
        tg_sampling_params p = tg_sampling_default_params();
        for (int i = 0; i < r->n_stop; i++) p.stop[i] = r->stop[i];
        int slot = -1;
        if (e) {
            CHECK(tg_engine_add(e, prompt, 2, &p, NULL, NULL, &slot) == TG_OK);
            if (slot >= 0) tg_engine_cancel(e, slot);
            /* and refuses one byte more */
            char longer[TG_MAX_STOP_LEN + 2];
            memset(longer, 'z', TG_MAX_STOP_LEN + 1);
            longer[TG_MAX_STOP_LEN + 1] = 0;
            p.stop[0] = longer;
            CHECK(tg_engine_add(e, prompt, 2, &p, NULL, NULL, &slot) == TG_ERR_INPUT);
        }
        tg_sreq_release(r);
    }
    body = stops_body(TG_MAX_STOP + 1, 3);
    expect(TG_SREQ_COMPLETION, body, "stop", "TG_MAX_STOP + 1 stops");
    free(body);
    body = stops_body(1, TG_MAX_STOP_LEN + 1);
    expect(TG_SREQ_COMPLETION, body, "stop", "a stop of TG_MAX_STOP_LEN + 1 bytes");
    free(body);
    /* a single string (not an array) has the same length limit */
    body = stops_body(1, TG_MAX_STOP_LEN);
    body[strlen("{\"prompt\": \"hi\", \"stop\": ")] = ' '; /* drop the [ ... ] */
    body[strlen(body) - 2] = ' ';
    r = expect(TG_SREQ_COMPLETION, body, NULL, "one stop string of TG_MAX_STOP_LEN bytes");
    if (r) {
        CHECK_EQ_INT(r->n_stop, 1);
        tg_sreq_release(r);
    }
    free(body);
    expect(TG_SREQ_COMPLETION, "{\"prompt\": \"hi\", \"stop\": \"a\\u0000b\"}", "stop", "a stop with U+0000");

    /* top_logprobs (chat) and logprobs (completions): TG_MAX_TOP_LOGPROBS */
    char b2[256];
    snprintf(b2, sizeof b2, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": true, "
             "\"top_logprobs\": %d}", TG_MAX_TOP_LOGPROBS);
    r = expect(TG_SREQ_CHAT, b2, NULL, "top_logprobs = TG_MAX_TOP_LOGPROBS");
    if (r) {
        CHECK_EQ_INT(r->top_logprobs, TG_MAX_TOP_LOGPROBS);
        tg_sampling_params p = tg_sampling_default_params();
        p.logprobs = r->logprobs;
        p.top_logprobs = r->top_logprobs;
        int slot = -1;
        if (e) {
            CHECK(tg_engine_add(e, prompt, 2, &p, NULL, NULL, &slot) == TG_OK);
            if (slot >= 0) tg_engine_cancel(e, slot);
            p.top_logprobs = TG_MAX_TOP_LOGPROBS + 1;
            CHECK(tg_engine_add(e, prompt, 2, &p, NULL, NULL, &slot) == TG_ERR_INPUT);
        }
        tg_sreq_release(r);
    }
    snprintf(b2, sizeof b2, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": true, "
             "\"top_logprobs\": %d}", TG_MAX_TOP_LOGPROBS + 1);
    expect(TG_SREQ_CHAT, b2, "top_logprobs", "top_logprobs = TG_MAX_TOP_LOGPROBS + 1");
    snprintf(b2, sizeof b2, "{\"prompt\": \"hi\", \"logprobs\": %d}", TG_MAX_TOP_LOGPROBS);
    r = expect(TG_SREQ_COMPLETION, b2, NULL, "completions logprobs = TG_MAX_TOP_LOGPROBS");
    if (r) tg_sreq_release(r);
    snprintf(b2, sizeof b2, "{\"prompt\": \"hi\", \"logprobs\": %d}", TG_MAX_TOP_LOGPROBS + 1);
    expect(TG_SREQ_COMPLETION, b2, "logprobs", "completions logprobs = TG_MAX_TOP_LOGPROBS + 1");

    /* messages: TG_MAX_MESSAGES */
    body = messages_body(TG_MAX_MESSAGES);
    r = expect(TG_SREQ_CHAT, body, NULL, "TG_MAX_MESSAGES messages");
    if (r) tg_sreq_release(r);
    free(body);
    body = messages_body(TG_MAX_MESSAGES + 1);
    expect(TG_SREQ_CHAT, body, "messages", "TG_MAX_MESSAGES + 1 messages");
    free(body);

    /* max_tokens: the server's cap (an option, ctx.max_tokens_cap) */
    snprintf(b2, sizeof b2, "{\"prompt\": \"hi\", \"max_tokens\": %d}", ctx.max_tokens_cap);
    r = expect(TG_SREQ_COMPLETION, b2, NULL, "max_tokens = the cap");
    if (r) tg_sreq_release(r);
    snprintf(b2, sizeof b2, "{\"prompt\": \"hi\", \"max_tokens\": %d}", ctx.max_tokens_cap + 1);
    expect(TG_SREQ_COMPLETION, b2, "max_tokens", "max_tokens = the cap + 1");

    tg_engine_free(e);
    tg_model_free(m);
    return test_summary("test_request_limits");
}
