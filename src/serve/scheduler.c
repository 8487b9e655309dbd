/*
 * scheduler.c — the one thread that owns the model: a bounded queue of
 * requests in front of the generation engine, and continuous batching.
 *
 * HTTP threads validate and tokenize a request, then tg_scheduler_submit
 * puts it in the queue (429 when full). Between two engine steps the
 * scheduler thread moves queued requests into free engine slots (their
 * prompts are prefilled at the next step, joining the running batch),
 * cancels the requests whose clients went away, and runs one step, which
 * decodes a token for every running request in one batch. Each token event
 * is copied into its request (tg_sreq_push) and wakes the HTTP thread
 * waiting on it; the scheduler never waits for a client, so a slow or
 * silent client cannot stall the others.
 *
 * Also here: loading the checkpoint (model, tokenizer, engine) and the
 * tokenizing callbacks the HTTP threads use (the tokenizer is thread-safe).
 * Not here: JSON, HTTP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "serve/serve.h"
#include "truthgpt.h"

struct tg_serve_model {
    tg_model *model;
    tg_tokenizer *tok;       /* NULL: byte-level vocabulary (ids 0-255 are bytes) */
    tg_engine *engine;
    int n_ctx, vocab;
    int32_t im_start, im_end, eos; /* -1 when absent */
};

/* ------------------------------------------------------------ tokenizing */

static int encode_text(void *ctx, const char *text, size_t len, int32_t **ids) {
    tg_serve_model *m = ctx;
    if (m->tok) {
        size_t n = 0;
        if (tg_tokenizer_encode(m->tok, text, len, 0, ids, &n) != TG_OK) return -1;
        if (n > (size_t)1 << 30) {
            free(*ids);
            return -1;
        }
        return (int)n;
    }
    /* no tokenizer: the byte-level vocabulary of `tokenize --bytes` */
    *ids = malloc((len ? len : 1) * sizeof **ids);
    if (!*ids) return -1;
    for (size_t i = 0; i < len; i++) (*ids)[i] = (unsigned char)text[i];
    return (int)len;
}

/* ChatML through tg_chat_encode, the builder fine-tuning and sample/chat use,
 * so a served model sees the tokens it was trained on: the markers are their
 * ids, each role header and content is encoded as plain text (a user who
 * types "<|im_start|>" gets those characters, not the marker: no prompt
 * injection through special tokens). Without the chat tokens (a model that
 * was only pretrained), the markers are encoded as text. */
static int encode_chat(void *ctx, const char *const *roles, const char *const *contents, int n, int32_t **out) {
    tg_serve_model *m = ctx;
    *out = NULL;
    tg_chat_message *msgs = calloc(n > 0 ? (size_t)n : 1, sizeof *msgs);
    if (!msgs) return -1;
    for (int i = 0; i < n; i++) msgs[i] = (tg_chat_message){roles[i], contents[i]};
    size_t k = 0;
    int rc = tg_chat_encode(m->tok, m->im_start, m->im_end, msgs, n, true, out, &k, NULL);
    free(msgs);
    if (rc != TG_OK || k > (size_t)1 << 30) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return (int)k;
}

int tg_serve_model_load(tg_serve_model **out, const char *path, int parallel, tg_dtype dtype) {
    *out = NULL;
    tg_serve_model *m = calloc(1, sizeof *m);
    if (!m) return tg_error_set(TG_ERR_RUNTIME, "out of memory loading %s", path);
    m->im_start = m->im_end = m->eos = -1;
    char dir[4096], tokpath[4200];
    int rc = tg_checkpoint_resolve(path, dir, sizeof dir);
    if (rc == TG_OK) rc = tg_model_load(&m->model, dir);
    if (rc == TG_OK && tg_checkpoint_tokenizer_path(dir, tokpath, sizeof tokpath)) rc = tg_tokenizer_load(&m->tok, tokpath);
    if (rc == TG_OK) rc = tg_engine_init(&m->engine, m->model, m->tok, parallel, 0, dtype);
    if (rc != TG_OK) {
        tg_serve_model_free(m);
        return rc;
    }
    const tg_config *cfg = tg_model_config(m->model);
    m->n_ctx = tg_engine_max_ctx(m->engine);
    m->vocab = cfg->vocab_size;
    m->eos = cfg->eos_id;
    if (m->tok) {
        m->im_start = tg_tokenizer_token_id(m->tok, TG_TOKEN_IM_START);
        m->im_end = tg_tokenizer_token_id(m->tok, TG_TOKEN_IM_END);
        /* a tokenizer that knows more ids than the model has rows is unusable for them */
        if (m->im_start >= m->vocab || m->im_end >= m->vocab) m->im_start = m->im_end = -1;
    }
    *out = m;
    return TG_OK;
}

void tg_serve_model_free(tg_serve_model *m) {
    if (!m) return;
    tg_engine_free(m->engine);
    tg_tokenizer_free(m->tok);
    tg_model_free(m->model);
    free(m);
}

void tg_serve_model_api_ctx(tg_serve_model *m, tg_api_ctx *ctx) {
    ctx->encode = encode_text;
    ctx->encode_chat = encode_chat;
    ctx->ctx = m;
    ctx->n_ctx = m->n_ctx;
    ctx->vocab_size = m->vocab;
}

/* ------------------------------------------------------------- scheduler */

struct tg_scheduler {
    tg_serve_model *m;
    int max_queue;
    pthread_mutex_t mu;      /* guards the queue and the flags below */
    pthread_cond_t cv;
    tg_sreq **queue;         /* ring buffer of max_queue */
    int q_head, q_len;
    bool draining;
    pthread_t thread;
    /* owned by the scheduler thread only */
    tg_sreq **slot_req;      /* (max_slots) the request in each engine slot */
    int running;
    int threads;             /* OpenMP threads of the caller, applied on our thread */
    int64_t window_tokens;   /* for the tokens/s gauge */
    double window_start;
    uint64_t seed_counter;
};

int tg_scheduler_submit(tg_scheduler *s, tg_sreq *r) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->draining) rc = 503;
    else if (s->q_len >= s->max_queue) rc = 429;
    else {
        s->queue[(s->q_head + s->q_len) % s->max_queue] = r;
        s->q_len++;
        tg_metrics_queue(s->q_len, s->running);
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Ends a running request: marks it done, frees its slot, drops the
 * scheduler's reference. */
static void end_request(tg_scheduler *s, int slot, const char *reason, const char *error) {
    tg_sreq *r = s->slot_req[slot];
    if (!r) return;
    tg_sreq_finish(r, reason, error);
    tg_metrics_tokens(0, r->n_generated);
    if (reason && strcmp(reason, "cancelled") == 0) tg_metrics_cancelled();
    s->slot_req[slot] = NULL;
    s->running--;
    tg_sreq_release(r);
}

static char *copy_bytes(const char *p, int n) {
    char *c = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (!c) return NULL;
    if (n > 0) memcpy(c, p, (size_t)n);
    c[n > 0 ? n : 0] = 0;
    return c;
}

/* The engine's per-token callback (runs on the scheduler thread inside
 * tg_engine_step): copies the event into the request and wakes its HTTP
 * thread. Returns non-zero to cancel a request whose client has gone. */
static int on_token(const tg_token_event *ev, void *user) {
    tg_scheduler *s = user;
    tg_sreq *r = s->slot_req[ev->slot];
    if (!r) return 1;
    tg_sevent e;
    memset(&e, 0, sizeof e);
    /* A request that ends on its eos or <|im_end|> token does not show that
     * token (OpenAI's replies end before it); it still counts in usage. */
    bool stop_token = ev->finish == TG_FINISH_STOP && (ev->token == s->m->eos || ev->token == s->m->im_end);
    e.has_token = ev->token >= 0 && !stop_token;
    e.id = ev->token;
    e.n_generated = ev->n_generated;
    if (e.has_token || ev->text_len > 0) {
        e.text = copy_bytes(ev->text, ev->text_len);
        e.text_len = e.text ? ev->text_len : 0;
        if (e.has_token) {
            e.tok = copy_bytes(ev->token_text, ev->token_text_len);
            e.tok_len = e.tok ? ev->token_text_len : 0;
            e.logprob = ev->logprob;
            int nt = ev->n_top < TG_MAX_TOP_LOGPROBS ? ev->n_top : TG_MAX_TOP_LOGPROBS;
            for (int k = 0; k < nt; k++) {
                e.top_text[k] = copy_bytes(ev->top[k].text, ev->top[k].text_len);
                if (!e.top_text[k]) break;
                e.top_len[k] = ev->top[k].text_len;
                e.top_logprob[k] = ev->top[k].logprob;
                e.n_top = k + 1;
            }
        }
        if (r->t_first_token == 0) {
            r->t_first_token = tg_now();
            tg_metrics_ttft(r->t_first_token - r->t_submit);
        }
        tg_sreq_push(r, &e);
    } else {
        pthread_mutex_lock(&r->mu);
        r->n_generated = ev->n_generated;
        pthread_mutex_unlock(&r->mu);
    }
    if (ev->token >= 0) s->window_tokens++;
    if (ev->finish != TG_FINISH_NONE) {
        end_request(s, ev->slot, tg_finish_reason_str(ev->finish), NULL);
        return 0;
    }
    return atomic_load(&r->cancelled) ? 1 : 0;
}

/* Moves a queued request into a free engine slot. Called without s->mu. */
static void admit(tg_scheduler *s, tg_sreq *r) {
    if (atomic_load(&r->cancelled)) {
        tg_sreq_finish(r, "cancelled", NULL);
        tg_metrics_cancelled();
        tg_sreq_release(r);
        return;
    }
    tg_sampling_params p = tg_sampling_default_params();
    p.temperature = r->temperature;
    p.top_p = r->top_p;
    p.frequency_penalty = r->frequency_penalty;
    p.presence_penalty = r->presence_penalty;
    /* without a seed, each request gets its own (OpenAI: nondeterministic) */
    p.seed = r->has_seed ? r->seed : tg_hash64(&s->seed_counter, sizeof s->seed_counter, (uint64_t)time(NULL));
    s->seed_counter++;
    p.max_tokens = r->max_tokens;
    for (int i = 0; i < r->n_stop && i < TG_MAX_STOP; i++) p.stop[i] = r->stop[i];
    if (r->kind == TG_SREQ_CHAT && s->m->im_end >= 0) p.stop_ids[0] = s->m->im_end;
    p.logprobs = r->logprobs;
    p.top_logprobs = r->logprobs ? r->top_logprobs : 0;
    int slot = -1;
    int rc = tg_engine_add(s->m->engine, r->prompt, r->n_prompt, &p, on_token, s, &slot);
    if (rc != TG_OK) {
        tg_sreq_finish(r, "stop", tg_error_message());
        tg_sreq_release(r);
        return;
    }
    tg_metrics_tokens(r->n_prompt, 0);
    s->slot_req[slot] = r;
    s->running++;
}

static void *scheduler_main(void *arg) {
    tg_scheduler *s = arg;
    /* OpenMP's thread count is a per-thread setting: a new thread starts
     * from OMP_NUM_THREADS, not from what the caller chose with --threads */
    tg_set_threads(s->threads);
    tg_engine *e = s->m->engine;
    int max_slots = tg_engine_max_slots(e);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->draining && s->q_len == 0 && s->running == 0) {
            tg_metrics_queue(0, 0);
            tg_metrics_decode(0);
            pthread_cond_wait(&s->cv, &s->mu);
        }
        if (s->draining && s->q_len == 0 && s->running == 0) break;
        /* admit queued requests into free slots: they join the batch at the next step */
        while (s->q_len > 0 && tg_engine_free_slots(e) > 0) {
            tg_sreq *r = s->queue[s->q_head];
            s->q_head = (s->q_head + 1) % s->max_queue;
            s->q_len--;
            pthread_mutex_unlock(&s->mu);
            admit(s, r);
            pthread_mutex_lock(&s->mu);
        }
        tg_metrics_queue(s->q_len, s->running);
        pthread_mutex_unlock(&s->mu);

        /* clients that went away: their slots free up before the step */
        for (int k = 0; k < max_slots; k++)
            if (s->slot_req[k] && atomic_load(&s->slot_req[k]->cancelled)) {
                if (tg_engine_cancel(e, k) != TG_OK || s->slot_req[k]) end_request(s, k, "cancelled", NULL);
            }
        if (s->running > 0) {
            if (s->window_start == 0) s->window_start = tg_now();
            tg_metrics_step(s->running);
            int rc = tg_engine_step(e);
            if (rc != TG_OK) {
                /* a runtime failure fails the running requests, not the server */
                char msg[512];
                snprintf(msg, sizeof msg, "generation failed: %s", tg_error_message());
                tg_warn("%s", msg);
                for (int k = 0; k < max_slots; k++)
                    if (s->slot_req[k]) {
                        end_request(s, k, "stop", msg); /* first: the cancel event then finds no request */
                        tg_engine_cancel(e, k);
                    }
            }
            double now = tg_now();
            if (now - s->window_start >= 1.0) {
                tg_metrics_decode((double)s->window_tokens / (now - s->window_start));
                s->window_tokens = 0;
                s->window_start = now;
            }
        } else {
            s->window_start = 0;
            s->window_tokens = 0;
        }
        pthread_mutex_lock(&s->mu);
    }
    tg_metrics_queue(0, 0);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int tg_scheduler_start(tg_scheduler **out, tg_serve_model *m, int parallel, int max_queue) {
    (void)parallel; /* the engine was built with `parallel` slots */
    *out = NULL;
    tg_scheduler *s = calloc(1, sizeof *s);
    if (!s) return tg_error_set(TG_ERR_RUNTIME, "out of memory starting the scheduler");
    s->m = m;
    s->threads = tg_num_threads();
    s->max_queue = max_queue > 0 ? max_queue : 1;
    s->queue = calloc((size_t)s->max_queue, sizeof *s->queue);
    s->slot_req = calloc((size_t)tg_engine_max_slots(m->engine), sizeof *s->slot_req);
    if (!s->queue || !s->slot_req) {
        free(s->queue);
        free(s->slot_req);
        free(s);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory starting the scheduler");
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s->queue);
        free(s->slot_req);
        free(s);
        return tg_error_set(TG_ERR_RUNTIME, "cannot start the scheduler thread");
    }
    *out = s;
    return TG_OK;
}

void tg_scheduler_drain(tg_scheduler *s) {
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void tg_scheduler_stop(tg_scheduler *s) {
    if (!s) return;
    tg_scheduler_drain(s);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->queue);
    free(s->slot_req);
    free(s);
}
