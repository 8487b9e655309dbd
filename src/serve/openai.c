/*
 * openai.c — the OpenAI API shapes: validates /v1/chat/completions and
 * /v1/completions request bodies into a tg_sreq, and writes the response
 * bodies (whole, or as server-sent-event chunks) and error bodies.
 *
 * Everything a client sends is checked here, with the failing field named in
 * "param", before a request reaches the scheduler. Unknown fields are
 * ignored (clients send many optional ones); fields we cannot honour (n > 1,
 * several prompts, best_of > 1) are a 400, never silently dropped.
 * Not here: HTTP (http.c), generation (scheduler.c).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "serve/serve.h"

/* ------------------------------------------------------------ requests */

tg_sreq *tg_sreq_new(void) {
    tg_sreq *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->wake_fd = -1;
    atomic_init(&r->cancelled, 0);
    atomic_init(&r->refs, 1);
    return r;
}

/* Wakes the HTTP thread polling on the request (called with r->mu held). */
static void wake(tg_sreq *r) {
    pthread_cond_broadcast(&r->cv);
    if (r->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(r->wake_fd, &one, sizeof one); /* EAGAIN: already signalled */
        (void)w;
    }
}

static void sevent_free(tg_sevent *e) {
    free(e->text);
    free(e->tok);
    for (int k = 0; k < e->n_top; k++) free(e->top_text[k]);
}

void tg_sreq_release(tg_sreq *r) {
    if (!r) return;
    if (atomic_fetch_sub(&r->refs, 1) != 1) return;
    for (int i = 0; i < r->n_events; i++) sevent_free(&r->events[i]);
    free(r->events);
    free(r->prompt);
    free(r->prompt_text);
    tg_grounding_free(r->grounding);
    free(r->error);
    if (r->wake_fd >= 0) close(r->wake_fd);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

void tg_sreq_push(tg_sreq *r, tg_sevent *ev) {
    pthread_mutex_lock(&r->mu);
    if (r->n_events == r->cap_events) {
        int cap = r->cap_events ? 2 * r->cap_events : 64;
        tg_sevent *e = realloc(r->events, (size_t)cap * sizeof *e);
        if (!e) { /* out of memory: drop the token rather than crash the server */
            pthread_mutex_unlock(&r->mu);
            sevent_free(ev);
            return;
        }
        r->events = e;
        r->cap_events = cap;
    }
    r->events[r->n_events++] = *ev;
    r->n_generated = ev->n_generated;
    wake(r);
    pthread_mutex_unlock(&r->mu);
}

void tg_sreq_finish(tg_sreq *r, const char *finish_reason, const char *error) {
    pthread_mutex_lock(&r->mu);
    r->done = true;
    r->finish_reason = finish_reason;
    if (error && !r->error) r->error = strdup(error);
    wake(r);
    pthread_mutex_unlock(&r->mu);
}

/* -------------------------------------------------------------- errors */

void tg_api_error_fill(tg_api_error *err, int status, const char *type, const char *param, const char *code,
                       const char *fmt, ...) {
    err->status = status;
    err->type = type;
    err->code = code;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* Replaces invalid UTF-8 with U+FFFD so that jansson accepts the string
 * (json_string rejects invalid UTF-8). Returns a malloc'd NUL-terminated
 * copy; *out_len its length. */
static char *utf8_sanitize(const char *s, size_t n, size_t *out_len);

char *tg_api_error_json(const tg_api_error *err) {
    size_t ml;
    char *msg = utf8_sanitize(err->message, strlen(err->message), &ml);
    json_t *e = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", msg ? msg : "error", "type",
                          err->type ? err->type : "invalid_request_error", "param",
                          err->param[0] ? json_string(err->param) : json_null(), "code",
                          err->code ? json_string(err->code) : json_null());
    free(msg);
    char *out = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    return out;
}

/* ------------------------------------------------------------- UTF-8 */

/* A copy of s[0..n) with invalid UTF-8 replaced (tg_utf8_sanitize), malloc'd
 * and NUL-terminated. */
static char *utf8_sanitize(const char *s, size_t n, size_t *out_len) {
    char *out = malloc(3 * n + 1); /* each bad byte becomes 3 bytes at most */
    if (!out) return NULL;
    size_t o = tg_utf8_sanitize(s, n, out, 3 * n, NULL);
    out[o] = 0;
    if (out_len) *out_len = o;
    return out;
}

/* Bytes of s[0..n) that can be sent now: everything except a trailing
 * incomplete (but so far valid) UTF-8 sequence, which waits for the next
 * token's bytes. */
static size_t utf8_sendable(const char *s, size_t n) { return n - tg_utf8_incomplete_tail((const uint8_t *)s, n); }

/* ------------------------------------------------------ field checkers */

static int get_number(json_t *o, const char *key, double lo, double hi, double *out, tg_api_error *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 1; /* absent: keep the default */
    if (!json_is_number(v)) {
        tg_api_error_fill(err, 400, "invalid_request_error", key, "invalid_type", "'%s' must be a number", key);
        return -1;
    }
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) {
        tg_api_error_fill(err, 400, "invalid_request_error", key, "invalid_value",
                          "'%s' must be between %g and %g, got %g", key, lo, hi, x);
        return -1;
    }
    *out = x;
    return 0;
}

static int get_int(json_t *o, const char *key, long long lo, long long hi, long long *out, tg_api_error *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 1;
    /* 3.0 is accepted as an integer (JSON has one number type); 3.5 is not */
    long long x;
    if (json_is_integer(v)) x = json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) && fabs(json_real_value(v)) < 9e15)
        x = (long long)json_real_value(v);
    else {
        tg_api_error_fill(err, 400, "invalid_request_error", key, "invalid_type", "'%s' must be an integer", key);
        return -1;
    }
    if (x < lo || x > hi) {
        tg_api_error_fill(err, 400, "invalid_request_error", key, "invalid_value",
                          "'%s' must be between %lld and %lld, got %lld", key, lo, hi, x);
        return -1;
    }
    *out = x;
    return 0;
}

static int get_bool(json_t *o, const char *key, bool *out, tg_api_error *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 1;
    if (!json_is_boolean(v)) {
        tg_api_error_fill(err, 400, "invalid_request_error", key, "invalid_type", "'%s' must be a boolean", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* stop: a string or an array of up to 4 non-empty strings. */
static int get_stop(json_t *o, tg_sreq *r, tg_api_error *err) {
    json_t *v = json_object_get(o, "stop");
    if (!v || json_is_null(v)) return 0;
    json_t *one[1] = {v};
    json_t **items = one;
    size_t n = 1;
    json_t *arr = NULL;
    if (json_is_array(v)) {
        arr = v;
        n = json_array_size(v);
        if (n > TG_MAX_STOP) {
            tg_api_error_fill(err, 400, "invalid_request_error", "stop", "invalid_value",
                              "'stop' may hold at most %d sequences, got %zu", TG_MAX_STOP, n);
            return -1;
        }
    } else if (!json_is_string(v)) {
        tg_api_error_fill(err, 400, "invalid_request_error", "stop", "invalid_type",
                          "'stop' must be a string or an array of strings");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = arr ? json_array_get(arr, i) : items[i];
        if (!json_is_string(s)) {
            tg_api_error_fill(err, 400, "invalid_request_error", "stop", "invalid_type",
                              "'stop' must be a string or an array of strings");
            return -1;
        }
        size_t len = json_string_length(s);
        if (len == 0) continue; /* an empty stop string can never match usefully */
        if (len > TG_MAX_STOP_LEN) {
            tg_api_error_fill(err, 400, "invalid_request_error", "stop", "invalid_value",
                              "each stop sequence may have at most %d bytes, got %zu", TG_MAX_STOP_LEN, len);
            return -1;
        }
        if (memchr(json_string_value(s), 0, len)) { /* the engine takes C strings */
            tg_api_error_fill(err, 400, "invalid_request_error", "stop", "invalid_value",
                              "a stop sequence may not contain U+0000");
            return -1;
        }
        memcpy(r->stop[r->n_stop], json_string_value(s), len);
        r->stop[r->n_stop][len] = 0;
        r->n_stop++;
    }
    return 0;
}

/* Appends a JSON string's bytes to out at *o, leaving out NUL characters: a
 * reply may contain one (a model samples any byte), a client sends it back
 * in the history, and the chat template takes C strings. */
static void append_text(char *out, size_t *o, const json_t *s) {
    const char *v = json_string_value(s);
    size_t n = json_string_length(s);
    for (size_t k = 0; k < n; k++)
        if (v[k]) out[(*o)++] = v[k];
    out[*o] = 0;
}

/* Message content: a string, or an array of {"type":"text","text":...}
 * parts (joined). Returns a malloc'd string or NULL with *err filled. */
static char *message_content(json_t *m, size_t i, tg_api_error *err) {
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    json_t *c = json_object_get(m, "content");
    if (json_is_string(c)) {
        char *out = malloc(json_string_length(c) + 1);
        size_t o = 0;
        if (out) append_text(out, &o, c);
        return out;
    }
    if (json_is_array(c)) {
        size_t total = 0;
        for (size_t k = 0; k < json_array_size(c); k++) {
            json_t *p = json_array_get(c, k);
            json_t *type = json_object_get(p, "type"), *text = json_object_get(p, "text");
            if (!json_is_object(p) || !json_is_string(type) || strcmp(json_string_value(type), "text") != 0 ||
                !json_is_string(text)) {
                tg_api_error_fill(err, 400, "invalid_request_error", param, "invalid_value",
                                  "'%s' parts must be {\"type\": \"text\", \"text\": string}; only text is supported",
                                  param);
                return NULL;
            }
            total += json_string_length(text);
        }
        char *out = malloc(total + 1);
        if (!out) return NULL;
        size_t o = 0;
        out[0] = 0;
        for (size_t k = 0; k < json_array_size(c); k++) append_text(out, &o, json_object_get(json_array_get(c, k), "text"));
        return out;
    }
    if ((!c || json_is_null(c))) {
        tg_api_error_fill(err, 400, "invalid_request_error", param, "missing_required_parameter",
                          "'%s' is required", param);
        return NULL;
    }
    tg_api_error_fill(err, 400, "invalid_request_error", param, "invalid_type",
                      "'%s' must be a string or an array of text parts", param);
    return NULL;
}

/* Chat: messages -> prompt ids through the model's chat template. Returns
 * the count, or -1 with *err filled. */
static int chat_prompt(const tg_api_ctx *ctx, json_t *body, int32_t **ids, void **grounding, tg_api_error *err) {
    json_t *msgs = json_object_get(body, "messages");
    if (!msgs) {
        tg_api_error_fill(err, 400, "invalid_request_error", "messages", "missing_required_parameter",
                          "'messages' is required");
        return -1;
    }
    if (!json_is_array(msgs)) {
        tg_api_error_fill(err, 400, "invalid_request_error", "messages", "invalid_type",
                          "'messages' must be an array");
        return -1;
    }
    size_t n = json_array_size(msgs);
    if (n == 0) {
        tg_api_error_fill(err, 400, "invalid_request_error", "messages", "invalid_value",
                          "'messages' must hold at least one message");
        return -1;
    }
    if (n > TG_MAX_MESSAGES) {
        tg_api_error_fill(err, 400, "invalid_request_error", "messages", "invalid_value",
                          "'messages' holds %zu messages; at most %d are accepted", n, TG_MAX_MESSAGES);
        return -1;
    }
    const char **roles = calloc(n, sizeof *roles);
    char **contents = calloc(n, sizeof *contents);
    int n_ids = -1;
    bool ok = roles && contents;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m)) {
            tg_api_error_fill(err, 400, "invalid_request_error", param, "invalid_type", "'%s' must be an object",
                              param);
            ok = false;
            break;
        }
        json_t *role = json_object_get(m, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!json_is_string(role)) {
            tg_api_error_fill(err, 400, "invalid_request_error", param,
                              role ? "invalid_type" : "missing_required_parameter", "'%s' must be a string", param);
            ok = false;
            break;
        }
        const char *rv = json_string_value(role);
        /* "user\u0000x" would compare equal to "user" below. */
        if (strlen(rv) != json_string_length(role)) {
            tg_api_error_fill(err, 400, "invalid_request_error", param, "invalid_value", "'%s' holds a NUL character",
                              param);
            ok = false;
            break;
        }
        /* "developer" is OpenAI's newer name for the system role */
        if (strcmp(rv, "system") == 0 || strcmp(rv, "developer") == 0) roles[i] = "system";
        else if (strcmp(rv, "user") == 0) roles[i] = "user";
        else if (strcmp(rv, "assistant") == 0) roles[i] = "assistant";
        else {
            char shown[40];
            snprintf(shown, sizeof shown, "%s", rv);
            tg_api_error_fill(err, 400, "invalid_request_error", param, "invalid_value",
                              "'%s': unknown role '%s' (expected system, developer, user or assistant)", param,
                              shown);
            ok = false;
            break;
        }
        contents[i] = message_content(m, i, err);
        if (!contents[i]) ok = false;
    }
    if (ok) n_ids = tg_grounding_encode_chat(ctx, body, roles, contents, (int)n, ids, grounding, err);
    for (size_t i = 0; contents && i < n; i++) free(contents[i]);
    free(contents);
    free(roles);
    return n_ids;
}

/* Completions: prompt is a string, an array of one string, or an array of
 * token ids. Fills r->prompt. Returns 0 or -1 with *err. */
static int completion_prompt(const tg_api_ctx *ctx, json_t *body, tg_sreq *r, tg_api_error *err) {
    json_t *p = json_object_get(body, "prompt");
    if (!p || json_is_null(p)) {
        tg_api_error_fill(err, 400, "invalid_request_error", "prompt", "missing_required_parameter",
                          "'prompt' is required");
        return -1;
    }
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0)))
        p = json_array_get(p, 0);
    if (json_is_string(p)) {
        r->prompt_text = strndup(json_string_value(p), json_string_length(p));
        int n = ctx->encode(ctx->ctx, json_string_value(p), json_string_length(p), &r->prompt);
        if (n < 0) {
            tg_api_error_fill(err, 400, "invalid_request_error", "prompt", "invalid_value",
                              "'prompt' could not be tokenized");
            return -1;
        }
        r->n_prompt = n;
        return 0;
    }
    if (json_is_array(p) && json_array_size(p) > 0 && json_is_integer(json_array_get(p, 0))) {
        size_t n = json_array_size(p);
        r->prompt = malloc(n * sizeof *r->prompt);
        if (!r->prompt) {
            tg_api_error_fill(err, 500, "server_error", NULL, NULL, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *t = json_array_get(p, i);
            json_int_t id = json_is_integer(t) ? json_integer_value(t) : -1;
            if (id < 0 || id >= ctx->vocab_size) {
                tg_api_error_fill(err, 400, "invalid_request_error", "prompt", "invalid_value",
                                  "'prompt'[%zu] is not a token id of this model (0..%d)", i, ctx->vocab_size - 1);
                return -1;
            }
            r->prompt[i] = (int32_t)id;
        }
        r->n_prompt = (int)n;
        return 0;
    }
    if (json_is_array(p) && json_array_size(p) > 1) {
        tg_api_error_fill(err, 400, "invalid_request_error", "prompt", "invalid_value",
                          "only one prompt per request is supported");
        return -1;
    }
    tg_api_error_fill(err, 400, "invalid_request_error", "prompt", "invalid_type",
                      "'prompt' must be a string, an array of one string, or an array of token ids");
    return -1;
}

tg_sreq *tg_api_parse(const tg_api_ctx *ctx, tg_sreq_kind kind, const char *body, size_t len, tg_api_error *err) {
    json_error_t jerr;
    /* JSON_ALLOW_NUL: "\u0000" is valid JSON, and our own replies may carry it. */
    json_t *j = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    if (!j) {
        tg_api_error_fill(err, 400, "invalid_request_error", NULL, "invalid_json",
                          "could not parse the JSON body: %s (line %d, column %d)", jerr.text, jerr.line,
                          jerr.column);
        return NULL;
    }
    tg_sreq *r = NULL;
    if (!json_is_object(j)) {
        tg_api_error_fill(err, 400, "invalid_request_error", NULL, "invalid_json",
                          "the request body must be a JSON object");
        goto fail;
    }
    r = tg_sreq_new();
    if (!r) {
        tg_api_error_fill(err, 500, "server_error", NULL, NULL, "out of memory");
        goto fail;
    }
    r->kind = kind;
    r->created = (int64_t)time(NULL);
    snprintf(r->model, sizeof r->model, "%s", ctx->model_name);
    json_t *model = json_object_get(j, "model");
    if (model && !json_is_null(model) && !json_is_string(model)) {
        tg_api_error_fill(err, 400, "invalid_request_error", "model", "invalid_type", "'model' must be a string");
        goto fail;
    }
    /* defaults: OpenAI's (temperature 1, top_p 1, no penalties) */
    double temperature = 1.0, top_p = 1.0, fp = 0.0, pp = 0.0;
    long long n = 1, max_tokens = -1, seed = 0, top_lp = 0;
    if (get_number(j, "temperature", 0.0, 2.0, &temperature, err) < 0) goto fail;
    if (get_number(j, "top_p", 0.0, 1.0, &top_p, err) < 0) goto fail;
    if (get_number(j, "frequency_penalty", -2.0, 2.0, &fp, err) < 0) goto fail;
    if (get_number(j, "presence_penalty", -2.0, 2.0, &pp, err) < 0) goto fail;
    if (get_int(j, "n", 1, 128, &n, err) < 0) goto fail;
    if (n != 1) {
        tg_api_error_fill(err, 400, "invalid_request_error", "n", "invalid_value",
                          "only n=1 is supported, got %lld", n);
        goto fail;
    }
    if (kind == TG_SREQ_COMPLETION) {
        long long best_of = 1;
        if (get_int(j, "best_of", 1, 128, &best_of, err) < 0) goto fail;
        if (best_of != 1) {
            tg_api_error_fill(err, 400, "invalid_request_error", "best_of", "invalid_value",
                              "only best_of=1 is supported");
            goto fail;
        }
    }
    const char *mt_names[2] = {"max_completion_tokens", "max_tokens"};
    for (int k = 0; k < 2; k++) {
        long long v;
        int rc = get_int(j, mt_names[k], -(1LL << 40), 1LL << 40, &v, err);
        if (rc < 0) goto fail;
        if (rc > 0) continue;
        if (v < 1 || v > ctx->max_tokens_cap) {
            tg_api_error_fill(err, 400, "invalid_request_error", mt_names[k], "invalid_value",
                              "'%s' must be between 1 and %d (this server's cap), got %lld", mt_names[k],
                              ctx->max_tokens_cap, v);
            goto fail;
        }
        if (max_tokens < 0) max_tokens = v; /* max_completion_tokens wins when both are given */
    }
    int sr = get_int(j, "seed", -(1LL << 62), 1LL << 62, &seed, err);
    if (sr < 0) goto fail;
    r->has_seed = sr == 0;
    if (get_bool(j, "stream", &r->stream, err) < 0) goto fail;
    json_t *so = json_object_get(j, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) {
            tg_api_error_fill(err, 400, "invalid_request_error", "stream_options", "invalid_type",
                              "'stream_options' must be an object");
            goto fail;
        }
        if (!r->stream) {
            tg_api_error_fill(err, 400, "invalid_request_error", "stream_options", "invalid_value",
                              "'stream_options' is only allowed when 'stream' is true");
            goto fail;
        }
        if (get_bool(so, "include_usage", &r->include_usage, err) < 0) {
            snprintf(err->param, sizeof err->param, "stream_options.include_usage");
            goto fail;
        }
    }
    if (get_stop(j, r, err) < 0) goto fail;
    if (kind == TG_SREQ_CHAT) {
        if (get_bool(j, "logprobs", &r->logprobs, err) < 0) goto fail;
        int tr = get_int(j, "top_logprobs", 0, TG_MAX_TOP_LOGPROBS, &top_lp, err);
        if (tr < 0) goto fail;
        if (tr == 0 && !r->logprobs && top_lp > 0) {
            tg_api_error_fill(err, 400, "invalid_request_error", "top_logprobs", "invalid_value",
                              "'top_logprobs' requires 'logprobs' to be true");
            goto fail;
        }
        int np = chat_prompt(ctx, j, &r->prompt, &r->grounding, err);
        if (np < 0) goto fail;
        r->n_prompt = np;
    } else {
        /* completions: logprobs is an integer count of alternatives (0: the chosen token only) */
        int lr = get_int(j, "logprobs", 0, TG_MAX_TOP_LOGPROBS, &top_lp, err);
        if (lr < 0) goto fail;
        r->logprobs = lr == 0;
        if (get_bool(j, "echo", &r->echo, err) < 0) goto fail;
        if (r->echo && r->logprobs) {
            tg_api_error_fill(err, 400, "invalid_request_error", "echo", "invalid_value",
                              "'echo' together with 'logprobs' is not supported");
            goto fail;
        }
        json_t *suffix = json_object_get(j, "suffix");
        if (suffix && !json_is_null(suffix)) {
            tg_api_error_fill(err, 400, "invalid_request_error", "suffix", "invalid_value",
                              "'suffix' is not supported");
            goto fail;
        }
        if (completion_prompt(ctx, j, r, err) < 0) goto fail;
    }
    if (r->n_prompt <= 0) {
        tg_api_error_fill(err, 400, "invalid_request_error", kind == TG_SREQ_CHAT ? "messages" : "prompt",
                          "invalid_value", "the prompt is empty");
        goto fail;
    }
    if (r->n_prompt >= ctx->n_ctx) {
        tg_api_error_fill(err, 400, "invalid_request_error", kind == TG_SREQ_CHAT ? "messages" : "prompt",
                          "context_length_exceeded",
                          "the prompt is %d tokens; this model's context is %d tokens, and at least one must "
                          "be left to generate",
                          r->n_prompt, ctx->n_ctx);
        goto fail;
    }
    /* Without max_tokens, generate up to the cap; the context limit ends it
     * earlier with finish_reason "length". */
    r->max_tokens = (int)(max_tokens > 0 ? max_tokens : ctx->max_tokens_cap);
    r->temperature = (float)temperature;
    r->top_p = (float)top_p;
    r->frequency_penalty = (float)fp;
    r->presence_penalty = (float)pp;
    r->seed = (uint64_t)seed;
    r->top_logprobs = (int)top_lp;
    json_decref(j);
    return r;
fail:
    json_decref(j);
    tg_sreq_release(r);
    return NULL;
}

/* ------------------------------------------------------------ responses */

static json_t *json_text(const char *s, size_t n) {
    size_t l;
    char *clean = utf8_sanitize(s, n, &l);
    json_t *v = clean ? json_stringn(clean, l) : json_string("");
    free(clean);
    return v;
}

static json_t *json_bytes(const char *s, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer((unsigned char)s[i]));
    return a;
}

/* OpenAI reports -9999.0 for a probability that underflowed; keep JSON finite. */
static json_t *json_logprob(float lp) { return json_real(isfinite(lp) ? lp : -9999.0); }

/* Chat logprobs entry of one token: {token, logprob, bytes, top_logprobs}. */
static json_t *chat_logprob_entry(const tg_sreq *r, const tg_sevent *e) {
    json_t *tops = json_array();
    for (int k = 0; k < e->n_top && k < r->top_logprobs; k++)
        json_array_append_new(tops, json_pack("{s:o, s:o, s:o}", "token", json_text(e->top_text[k], (size_t)e->top_len[k]),
                                              "logprob", json_logprob(e->top_logprob[k]), "bytes",
                                              json_bytes(e->top_text[k], e->top_len[k])));
    return json_pack("{s:o, s:o, s:o, s:o}", "token", json_text(e->tok, (size_t)e->tok_len), "logprob",
                     json_logprob(e->logprob), "bytes", json_bytes(e->tok, e->tok_len), "top_logprobs", tops);
}

/* Completions logprobs of events [from, to): {tokens, token_logprobs,
 * top_logprobs, text_offset}; *offset advances by each token's text length. */
static json_t *completion_logprobs(const tg_sreq *r, int from, int to, size_t *offset) {
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    for (int i = from; i < to; i++) {
        const tg_sevent *e = &r->events[i];
        if (!e->has_token) continue;
        json_array_append_new(tokens, json_text(e->tok, (size_t)e->tok_len));
        json_array_append_new(lps, json_logprob(e->logprob));
        json_t *t = json_object();
        for (int k = 0; k < e->n_top && k < r->top_logprobs; k++) {
            size_t l;
            char *key = utf8_sanitize(e->top_text[k], (size_t)e->top_len[k], &l);
            if (key) json_object_set_new(t, key, json_logprob(e->top_logprob[k]));
            free(key);
        }
        json_array_append_new(tops, t);
        json_array_append_new(offs, json_integer((json_int_t)*offset));
        *offset += (size_t)e->tok_len;
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", tokens, "token_logprobs", lps, "top_logprobs", tops,
                     "text_offset", offs);
}

static json_t *usage_json(const tg_sreq *r) {
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", r->n_prompt, "completion_tokens", r->n_generated,
                     "total_tokens", r->n_prompt + r->n_generated);
}

static char *dump(json_t *j) {
    /* 9 significant digits: a float's logprob round-trips without the
     * noise digits of its double expansion */
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    return s;
}

char *tg_api_response_json(const tg_sreq *r) {
    size_t total = 0;
    for (int i = 0; i < r->n_events; i++) total += (size_t)r->events[i].text_len;
    size_t plen = r->echo && r->prompt_text ? strlen(r->prompt_text) : 0;
    char *text = malloc(plen + total + 1);
    if (!text) return NULL;
    memcpy(text, r->prompt_text ? r->prompt_text : "", plen);
    size_t o = plen;
    for (int i = 0; i < r->n_events; i++) {
        memcpy(text + o, r->events[i].text, (size_t)r->events[i].text_len);
        o += (size_t)r->events[i].text_len;
    }
    json_t *content = json_text(text, o);
    free(text);
    const char *finish = r->finish_reason ? r->finish_reason : "stop";
    json_t *choice;
    if (r->kind == TG_SREQ_CHAT) {
        json_t *lp = json_null();
        if (r->logprobs) {
            json_t *arr = json_array();
            for (int i = 0; i < r->n_events; i++)
                if (r->events[i].has_token) json_array_append_new(arr, chat_logprob_entry(r, &r->events[i]));
            json_decref(lp);
            lp = json_pack("{s:o, s:n}", "content", arr, "refusal");
        }
        choice = json_pack("{s:i, s:{s:s, s:o, s:n}, s:o, s:s}", "index", 0, "message", "role", "assistant",
                           "content", content, "refusal", "logprobs", lp, "finish_reason", finish);
        tg_grounding_message(r->grounding, json_object_get(choice, "message"));
    } else {
        size_t off = plen;
        json_t *lp = r->logprobs ? completion_logprobs(r, 0, r->n_events, &off) : json_null();
        choice = json_pack("{s:o, s:i, s:o, s:s}", "text", content, "index", 0, "logprobs", lp, "finish_reason",
                           finish);
    }
    return dump(json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o, s:s}", "id", r->id, "object",
                          r->kind == TG_SREQ_CHAT ? "chat.completion" : "text_completion", "created",
                          (json_int_t)r->created, "model", r->model, "choices", choice, "usage", usage_json(r),
                          "system_fingerprint", "truthgpt-" TG_VERSION));
}

char *tg_api_models_json(const char *model_name, int64_t created) {
    return dump(json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id", model_name, "object",
                          "model", "created", (json_int_t)created, "owned_by", "truthgpt"));
}

/* ------------------------------------------------------------ streaming */

static void out_append(char **out, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1) c *= 2;
        char *p = realloc(*out, c);
        if (!p) return; /* out of memory: the chunk is dropped, the stream continues */
        *out = p;
        *cap = c;
    }
    memcpy(*out + *len, s, n);
    *len += n;
    (*out)[*len] = 0;
}

static void sse_append(char **out, size_t *len, size_t *cap, json_t *j) {
    char *s = dump(j);
    if (!s) return;
    out_append(out, len, cap, "data: ", 6);
    out_append(out, len, cap, s, strlen(s));
    out_append(out, len, cap, "\n\n", 2);
    free(s);
}

static json_t *chunk_base(const tg_sreq *r, json_t *choices) {
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "id", r->id, "object",
                     r->kind == TG_SREQ_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                     (json_int_t)r->created, "model", r->model, "system_fingerprint", "truthgpt-" TG_VERSION,
                     "choices", choices);
}

bool tg_api_stream_next(tg_sreq *r, tg_api_stream *st, char **out, size_t *out_len, size_t *out_cap) {
    if (st->finished) return true;
    if (r->kind == TG_SREQ_CHAT && !st->sent_role) {
        json_t *first = json_pack("[{s:i, s:{s:s, s:s}, s:n, s:n}]", "index", 0, "delta", "role", "assistant",
                                  "content", "", "logprobs", "finish_reason");
        tg_grounding_stream_start(r->grounding, json_object_get(json_array_get(first, 0), "delta"));
        sse_append(out, out_len, out_cap, chunk_base(r, first));
        st->sent_role = true;
    }
    if (r->kind == TG_SREQ_COMPLETION && r->echo && st->cursor == 0 && st->text_offset == 0 && r->prompt_text &&
        r->prompt_text[0]) {
        json_t *c = json_pack("[{s:o, s:i, s:n, s:n}]", "text", json_text(r->prompt_text, strlen(r->prompt_text)),
                              "index", 0, "logprobs", "finish_reason");
        sse_append(out, out_len, out_cap, chunk_base(r, c));
        st->text_offset = strlen(r->prompt_text);
    }
    /* One chunk for all new tokens: their text joined (a partial UTF-8
     * character held back for the next call), their logprobs in order. */
    if (st->cursor < r->n_events || (r->done && st->n_pending > 0)) {
        int from = st->cursor, to = r->n_events;
        size_t total = (size_t)st->n_pending;
        for (int i = from; i < to; i++) total += (size_t)r->events[i].text_len;
        char *buf = malloc(total + 1);
        if (buf) {
            memcpy(buf, st->pending, (size_t)st->n_pending);
            size_t o = (size_t)st->n_pending;
            for (int i = from; i < to; i++) {
                memcpy(buf + o, r->events[i].text, (size_t)r->events[i].text_len);
                o += (size_t)r->events[i].text_len;
            }
            size_t send = r->done ? o : utf8_sendable(buf, o);
            if (o - send > sizeof st->pending) send = o; /* never more than a character's worth held */
            st->n_pending = (int)(o - send);
            memcpy(st->pending, buf + send, (size_t)st->n_pending);
            json_t *text = json_text(buf, send);
            free(buf);
            json_t *choice;
            if (r->kind == TG_SREQ_CHAT) {
                json_t *lp = json_null();
                if (r->logprobs) {
                    json_t *arr = json_array();
                    for (int i = from; i < to; i++)
                        if (r->events[i].has_token) json_array_append_new(arr, chat_logprob_entry(r, &r->events[i]));
                    json_decref(lp);
                    lp = json_pack("{s:o, s:n}", "content", arr, "refusal");
                }
                choice = json_pack("{s:i, s:{s:o}, s:o, s:n}", "index", 0, "delta", "content", text, "logprobs", lp,
                                   "finish_reason");
            } else {
                json_t *lp = r->logprobs ? completion_logprobs(r, from, to, &st->text_offset) : json_null();
                choice = json_pack("{s:o, s:i, s:o, s:n}", "text", text, "index", 0, "logprobs", lp, "finish_reason");
            }
            sse_append(out, out_len, out_cap, chunk_base(r, json_pack("[o]", choice)));
        }
        st->cursor = to;
    }
    if (!r->done) return false;
    const char *finish = r->finish_reason ? r->finish_reason : "stop";
    if (r->error) {
        /* a runtime failure mid-stream: OpenAI-shaped error event, then the end */
        tg_api_error e;
        tg_api_error_fill(&e, 500, "server_error", NULL, NULL, "%s", r->error);
        char *s = tg_api_error_json(&e);
        if (s) {
            out_append(out, out_len, out_cap, "data: ", 6);
            out_append(out, out_len, out_cap, s, strlen(s));
            out_append(out, out_len, out_cap, "\n\n", 2);
            free(s);
        }
    } else {
        json_t *choice;
        if (r->kind == TG_SREQ_CHAT)
        {
            choice = json_pack("{s:i, s:{}, s:n, s:s}", "index", 0, "delta", "logprobs", "finish_reason", finish);
            tg_grounding_stream_end(r->grounding, r, json_object_get(choice, "delta"));
        }
        else
            choice = json_pack("{s:s, s:i, s:n, s:s}", "text", "", "index", 0, "logprobs", "finish_reason", finish);
        sse_append(out, out_len, out_cap, chunk_base(r, json_pack("[o]", choice)));
        if (r->include_usage) {
            json_t *c = chunk_base(r, json_array());
            json_object_set_new(c, "usage", usage_json(r));
            sse_append(out, out_len, out_cap, c);
        }
    }
    out_append(out, out_len, out_cap, "data: [DONE]\n\n", 14);
    st->finished = true;
    return true;
}
