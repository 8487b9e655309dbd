/*
 * test_serve_api.c — the server's OpenAI layer without a model or a socket:
 * request validation (every field's type and range, the failing field named
 * in "param"), response bodies (content joined from events, logprobs in both
 * shapes, usage), streaming chunks (a UTF-8 character split across tokens is
 * sent whole, include_usage, [DONE]), error bodies, metrics text and the
 * embedded page. Runs under ASan in `make test`.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "test_util.h"

#include "fake_tokenizer.h" /* fake_encode, fake_chat */

/* |a - b| within float rounding of values near 1 */
static int near(double a, double b) { return fabs(a - b) <= 1e-6; }

static tg_api_ctx ctx = {fake_encode, fake_chat, NULL, 100, 64, 300, "tiny"};

static tg_sreq *parse(tg_sreq_kind kind, const char *body, tg_api_error *err) {
    memset(err, 0, sizeof *err);
    return tg_api_parse(&ctx, kind, body, strlen(body), err);
}

/* A bad body must give status and param (param "" for none). */
static int expect_error(tg_sreq_kind kind, const char *body, int status, const char *param) {
    tg_api_error err;
    tg_sreq *r = parse(kind, body, &err);
    if (r || err.status != status || strcmp(err.param, param) != 0) {
        fprintf(stderr, "FAIL %s: got %s status %d param '%s' (%s); want %d '%s'\n", body, r ? "a request" : "error",
                err.status, err.param, err.message, status, param);
        tg_sreq_release(r);
        return 1;
    }
    /* the error body is OpenAI's shape */
    char *js = tg_api_error_json(&err);
    json_t *j = json_loads(js, 0, NULL);
    json_t *e = json_object_get(j, "error");
    int bad = !json_is_string(json_object_get(e, "message")) || !json_is_string(json_object_get(e, "type")) ||
              !json_object_get(e, "param") || !json_object_get(e, "code");
    if (bad) fprintf(stderr, "FAIL error body shape: %s\n", js);
    json_decref(j);
    free(js);
    return bad;
}

static void push(tg_sreq *r, const char *text, const char *tok, float lp, int n_generated) {
    tg_sevent e;
    memset(&e, 0, sizeof e);
    e.text = strdup(text);
    e.text_len = (int)strlen(text);
    e.has_token = tok != NULL;
    if (tok) {
        e.tok = strdup(tok);
        e.tok_len = (int)strlen(tok);
        e.logprob = lp;
        e.n_top = 2;
        e.top_text[0] = strdup(tok);
        e.top_len[0] = e.tok_len;
        e.top_logprob[0] = lp;
        e.top_text[1] = strdup("zz");
        e.top_len[1] = 2;
        e.top_logprob[1] = lp - 1;
    }
    e.n_generated = n_generated;
    tg_sreq_push(r, &e);
}

/* Joins the "content" deltas (or completions "text") of an SSE body. */
static char *join_stream(const char *sse, bool chat, int *n_usage, bool *done) {
    char *out = calloc(1, strlen(sse) + 1);
    *n_usage = 0;
    *done = strstr(sse, "data: [DONE]\n\n") != NULL;
    for (const char *p = strstr(sse, "data: {"); p; p = strstr(p + 1, "data: {")) {
        const char *end = strstr(p, "\n\n");
        json_t *j = json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL);
        if (!j) {
            fprintf(stderr, "FAIL unparsable chunk\n");
            continue;
        }
        if (json_object_get(j, "usage")) (*n_usage)++;
        json_t *c = json_array_get(json_object_get(j, "choices"), 0);
        json_t *t = chat ? json_object_get(json_object_get(c, "delta"), "content") : json_object_get(c, "text");
        if (json_is_string(t)) strcat(out, json_string_value(t));
        json_decref(j);
    }
    return out;
}

int main(void) {
    int fails = 0;
    tg_api_error err;

    /* ---- a valid chat request */
    tg_sreq *r = parse(TG_SREQ_CHAT,
                       "{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"h\"},{\"type\":\"text\",\"text\":\"i\"}]}],"
                       "\"max_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,\"seed\":42,\"stop\":[\"a\",\"bc\"],"
                       "\"logprobs\":true,\"top_logprobs\":2,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                       "\"frequency_penalty\":1.5,\"presence_penalty\":-1,\"user\":\"ignored\"}",
                       &err);
    CHECK(r != NULL);
    if (!r) {
        fprintf(stderr, "unexpected error: %s\n", err.message);
        return 1;
    }
    const char *want_prompt = "system:s|user:hi|assistant:";
    CHECK(r->n_prompt == (int)strlen(want_prompt));
    for (int i = 0; i < r->n_prompt; i++) CHECK(r->prompt[i] == (unsigned char)want_prompt[i]);
    CHECK(r->max_tokens == 7 && r->has_seed && r->seed == 42 && r->n_stop == 2 && strcmp(r->stop[1], "bc") == 0);
    CHECK(r->logprobs && r->top_logprobs == 2 && r->stream && r->include_usage);
    CHECK(near(r->temperature, 0.5) && near(r->top_p, 0.9));
    CHECK(near(r->frequency_penalty, 1.5) && near(r->presence_penalty, -1));
    CHECK(strcmp(r->model, "tiny") == 0);
    tg_sreq_release(r);

    /* a NUL in the history (a reply can carry one) is left out, in both content forms */
    r = parse(TG_SREQ_CHAT,
              "{\"messages\":[{\"role\":\"assistant\",\"content\":\"a\\u0000b\"},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"\\u0000c\"}]}]}",
              &err);
    CHECK(r != NULL);
    want_prompt = "assistant:ab|user:c|assistant:";
    CHECK(r && r->n_prompt == (int)strlen(want_prompt));
    for (int i = 0; r && i < r->n_prompt; i++) CHECK(r->prompt[i] == (unsigned char)want_prompt[i]);
    tg_sreq_release(r);

    /* defaults: max_tokens is the cap, temperature 1 */
    r = parse(TG_SREQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}", &err);
    CHECK(r && r->max_tokens == 100 && r->temperature == 1.0f && !r->stream && !r->has_seed);
    tg_sreq_release(r);

    /* ---- bad chat requests, each naming its field */
    const char *M = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    char buf[512];
#define BAD(body, status, param) fails += expect_error(TG_SREQ_CHAT, body, status, param)
#define BADF(fmt, status, param)                  \
    do {                                          \
        snprintf(buf, sizeof buf, fmt, M);        \
        BAD(buf, status, param);                  \
    } while (0)
    BAD("{\"messages\": [", 400, "");
    BAD("[1]", 400, "");
    BAD("", 400, "");
    BAD("{}", 400, "messages");
    BAD("{\"messages\":[]}", 400, "messages");
    BAD("{\"messages\":\"hi\"}", 400, "messages");
    BAD("{\"messages\":[5]}", 400, "messages[0]");
    BAD("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"robot\",\"content\":\"b\"}]}", 400,
        "messages[1].role");
    BAD("{\"messages\":[{\"role\":7,\"content\":\"b\"}]}", 400, "messages[0].role");
    BAD("{\"messages\":[{\"role\":\"user\"}]}", 400, "messages[0].content");
    BAD("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400, "messages[0].content");
    BADF("{%s,\"max_tokens\":-1}", 400, "max_tokens");
    BADF("{%s,\"max_tokens\":0}", 400, "max_tokens");
    BADF("{%s,\"max_tokens\":101}", 400, "max_tokens");
    BADF("{%s,\"max_tokens\":1.5}", 400, "max_tokens");
    BADF("{%s,\"max_tokens\":\"5\"}", 400, "max_tokens");
    BADF("{%s,\"max_completion_tokens\":1000}", 400, "max_completion_tokens");
    BADF("{%s,\"temperature\":2.5}", 400, "temperature");
    BADF("{%s,\"temperature\":\"hot\"}", 400, "temperature");
    BADF("{%s,\"top_p\":1.5}", 400, "top_p");
    BADF("{%s,\"frequency_penalty\":-3}", 400, "frequency_penalty");
    BADF("{%s,\"n\":2}", 400, "n");
    BADF("{%s,\"stream\":1}", 400, "stream");
    BADF("{%s,\"stream_options\":{\"include_usage\":true}}", 400, "stream_options");
    BADF("{%s,\"stream\":true,\"stream_options\":{\"include_usage\":3}}", 400, "stream_options.include_usage");
    BADF("{%s,\"stop\":[1]}", 400, "stop");
    BADF("{%s,\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "stop");
    BADF("{%s,\"top_logprobs\":3}", 400, "top_logprobs");
    BADF("{%s,\"logprobs\":true,\"top_logprobs\":21}", 400, "top_logprobs");
    BADF("{%s,\"logprobs\":\"yes\"}", 400, "logprobs");
    BADF("{%s,\"seed\":\"x\"}", 400, "seed");
    BADF("{%s,\"model\":5}", 400, "model");
    /* a prompt that fills the 64-token context */
    snprintf(buf, sizeof buf, "{\"messages\":[{\"role\":\"user\",\"content\":\"%060d\"}]}", 0);
    BAD(buf, 400, "messages");

    /* ---- completions */
    r = parse(TG_SREQ_COMPLETION, "{\"prompt\":\"abc\",\"logprobs\":0,\"max_tokens\":3}", &err);
    CHECK(r && r->n_prompt == 3 && r->prompt[2] == 'c' && r->logprobs && r->top_logprobs == 0);
    tg_sreq_release(r);
    r = parse(TG_SREQ_COMPLETION, "{\"prompt\":[5,6,299]}", &err);
    CHECK(r && r->n_prompt == 3 && r->prompt[2] == 299 && !r->logprobs);
    tg_sreq_release(r);
    r = parse(TG_SREQ_COMPLETION, "{\"prompt\":[\"xy\"]}", &err);
    CHECK(r && r->n_prompt == 2);
    tg_sreq_release(r);
#define BADC(body, status, param) fails += expect_error(TG_SREQ_COMPLETION, body, status, param)
    BADC("{}", 400, "prompt");
    BADC("{\"prompt\":5}", 400, "prompt");
    BADC("{\"prompt\":[\"a\",\"b\"]}", 400, "prompt");
    BADC("{\"prompt\":[1,300]}", 400, "prompt");
    BADC("{\"prompt\":[1,-1]}", 400, "prompt");
    BADC("{\"prompt\":\"\"}", 400, "prompt");
    BADC("{\"prompt\":\"a\",\"logprobs\":true}", 400, "logprobs");
    BADC("{\"prompt\":\"a\",\"best_of\":2}", 400, "best_of");
    BADC("{\"prompt\":\"a\",\"echo\":true,\"logprobs\":1}", 400, "echo");

    /* ---- a finished chat reply: content joined, logprobs per shown token */
    r = parse(TG_SREQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":1}",
              &err);
    CHECK(r != NULL);
    snprintf(r->id, sizeof r->id, "chatcmpl-test");
    push(r, "Hi", "Hi", -0.5f, 1);
    push(r, "", "\xC3", -1.0f, 2);          /* first byte of "é": text held back by the engine */
    push(r, "\xC3\xA9!", "\xA9!", -2.0f, 3); /* completes it */
    push(r, "", NULL, 0, 4);                 /* the end-of-text token: counted, not shown */
    tg_sreq_finish(r, "stop", NULL);
    char *body = tg_api_response_json(r);
    json_t *j = json_loads(body, 0, NULL);
    CHECK(j != NULL);
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(strcmp(json_string_value(json_object_get(json_object_get(c0, "message"), "content")), "Hi\xC3\xA9!") == 0);
    CHECK(strcmp(json_string_value(json_object_get(c0, "finish_reason")), "stop") == 0);
    json_t *lc = json_object_get(json_object_get(c0, "logprobs"), "content");
    CHECK(json_array_size(lc) == 3);
    json_t *e1 = json_array_get(lc, 1);
    /* a partial character shows as U+FFFD in "token"; "bytes" are exact */
    CHECK(strcmp(json_string_value(json_object_get(e1, "token")), "\xEF\xBF\xBD") == 0);
    CHECK(json_integer_value(json_array_get(json_object_get(e1, "bytes"), 0)) == 0xC3);
    CHECK(near(json_real_value(json_object_get(e1, "logprob")), -1.0));
    CHECK(json_array_size(json_object_get(e1, "top_logprobs")) == 1); /* top_logprobs 1 of the 2 given */
    json_t *u = json_object_get(j, "usage");
    CHECK(json_integer_value(json_object_get(u, "completion_tokens")) == 4);
    CHECK(json_integer_value(json_object_get(u, "prompt_tokens")) == r->n_prompt);
    CHECK(json_integer_value(json_object_get(u, "total_tokens")) == r->n_prompt + 4);
    json_decref(j);
    free(body);

    /* the same events streamed, with the stream cut between the two bytes of "é" */
    tg_api_stream st;
    memset(&st, 0, sizeof st);
    char *out = NULL;
    size_t out_len = 0, out_cap = 0;
    r->done = false; /* replay: pretend the request is still running for the first two events */
    int saved = r->n_events;
    r->n_events = 2;
    CHECK(!tg_api_stream_next(r, &st, &out, &out_len, &out_cap));
    r->n_events = saved;
    r->done = true;
    CHECK(tg_api_stream_next(r, &st, &out, &out_len, &out_cap));
    int n_usage;
    bool done;
    r->include_usage = false;
    char *joined = join_stream(out, true, &n_usage, &done);
    CHECK(strcmp(joined, "Hi\xC3\xA9!") == 0 && done && n_usage == 0);
    CHECK(strstr(out, "\"role\":\"assistant\"") != NULL && strstr(out, "\"finish_reason\":\"stop\"") != NULL);
    free(joined);
    tg_sreq_release(r);

    /* completions stream with include_usage, and a split character held back */
    r = parse(TG_SREQ_COMPLETION, "{\"prompt\":\"p\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}", &err);
    CHECK(r != NULL);
    snprintf(r->id, sizeof r->id, "cmpl-test");
    memset(&st, 0, sizeof st);
    out_len = 0;
    push(r, "a\xE2\x82", "a\xE2\x82", -0.1f, 1); /* "a" and 2 of the 3 bytes of the euro sign */
    CHECK(!tg_api_stream_next(r, &st, &out, &out_len, &out_cap));
    CHECK(strstr(out, "\xE2\x82\"") == NULL && strstr(out, "\\ufffd") == NULL && strstr(out, "\xEF\xBF\xBD") == NULL);
    push(r, "\xAC", "\xAC", -0.1f, 2);
    tg_sreq_finish(r, "length", NULL);
    CHECK(tg_api_stream_next(r, &st, &out, &out_len, &out_cap));
    joined = join_stream(out, false, &n_usage, &done);
    CHECK(strcmp(joined, "a\xE2\x82\xAC") == 0 && done && n_usage == 1);
    CHECK(strstr(out, "\"completion_tokens\":2") != NULL && strstr(out, "\"finish_reason\":\"length\"") != NULL);
    free(joined);
    free(out);
    tg_sreq_release(r);

    /* a runtime failure mid-stream becomes an error event before [DONE] */
    r = parse(TG_SREQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true}", &err);
    out = NULL;
    out_len = out_cap = 0;
    memset(&st, 0, sizeof st);
    tg_sreq_finish(r, "stop", "generation failed: test");
    CHECK(tg_api_stream_next(r, &st, &out, &out_len, &out_cap));
    CHECK(strstr(out, "\"error\":{\"message\":\"generation failed: test\"") != NULL && strstr(out, "data: [DONE]"));
    free(out);
    tg_sreq_release(r);

    /* ---- models list, metrics, the embedded page */
    char *models = tg_api_models_json("tiny", 5);
    CHECK(models && strstr(models, "\"id\":\"tiny\"") && strstr(models, "\"object\":\"list\""));
    free(models);
    tg_metrics_request(TG_EP_CHAT, 400);
    tg_metrics_request(TG_EP_CHAT, 400);
    tg_metrics_tokens(10, 3);
    tg_metrics_queue(2, 1);
    char *m = tg_metrics_text();
    CHECK(m && strstr(m, "truthgpt_requests_total{endpoint=\"/v1/chat/completions\",code=\"400\"} 2\n"));
    CHECK(m && strstr(m, "truthgpt_prompt_tokens_total 10\n") && strstr(m, "truthgpt_completion_tokens_total 3\n"));
    CHECK(m && strstr(m, "truthgpt_queue_depth 2\n") && strstr(m, "# TYPE truthgpt_queue_depth gauge\n"));
    free(m);
    size_t len;
    const char *type;
    const unsigned char *page = tg_asset_find("/", &len, &type);
    CHECK(page && len > 100 && strstr((const char *)page, "<html") && strncmp(type, "text/html", 9) == 0);
    CHECK(tg_asset_find("/app.js", &len, &type) && strncmp(type, "text/javascript", 15) == 0);
    CHECK(tg_asset_find("/../CMakeLists.txt", &len, &type) == NULL);

    if (fails || tg_test_failures) {
        fprintf(stderr, "test_serve_api: %d failure(s)\n", fails + tg_test_failures);
        return 1;
    }
    printf("test_serve_api: ok\n");
    return 0;
}
