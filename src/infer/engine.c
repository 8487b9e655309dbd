/*
 * engine.c — the generation engine: continuous batching over fixed slots,
 * the KV cache's bookkeeping, sampling and streaming events. The model
 * itself runs in src/model/model.c: each step hands the model's one forward
 * (tg_model_forward_rows) the rows of the step — one row = one token of one
 * slot at one position: the whole prompt of each slot added since the last
 * step (prefill), then one row per decoding slot — and gets logits for the
 * last row of every prefill and every decode row. The engine has no op of
 * its own.
 *
 * Bitwise batching: every row's result depends only on its own slot (the
 * backend's inference matmul sums each row in a fixed order, attention reads
 * only its slot), so a request gives the same tokens alone or batched with
 * others (tested).
 *
 * Memory: the KV cache (2 * max_slots * L * max_ctx * C floats), the step's
 * activations for max_ctx + max_slots rows and the inference weights (the
 * backend's own layout, e.g. packed panels or bf16) are allocated at init;
 * steps allocate nothing.
 *
 * Not here: chunked prefill (a long prompt is prefilled in one step, so the
 * other streams wait for it once), a bf16 KV cache, speculative decoding.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "infer/engine.h"
#include "model/model.h"

enum { SLOT_FREE = 0, SLOT_PREFILL = 1, SLOT_DECODE = 2 };

#define TG_HELD_CAP 4096                 /* bytes a slot may hold back */
#define TG_EMIT_CAP (3 * TG_HELD_CAP + 16) /* sanitised output of a release */

typedef struct {
    int state;
    int pos;          /* tokens in the cache */
    int n_prompt;
    int32_t *prompt;  /* (max_ctx) */
    int n_gen;
    int32_t last;     /* the token to feed next */
    tg_sampling_params p;
    tg_sampler smp;
    int32_t *counts;  /* (V) */
    tg_stream_text st;
    tg_token_callback cb;
    void *user;
} slot_t;

struct tg_engine {
    tg_model *model;
    tg_backend *be;
    const tg_tokenizer *tok;
    tg_config cfg;
    int V, Vp;
    int max_slots, max_ctx, max_rows;
    tg_dtype dtype;
    tg_model_weights w;   /* inference handles (the backend's layout) */
    tg_kv_cache kv;
    tg_rows_work work;
    /* rows of a step */
    int32_t *row_tok, *row_pos, *row_slot; /* (max_rows) */
    int *out_rows;                         /* (max_slots) rows that get logits */
    int *logit_slot;                       /* (max_slots) */
    float *logits;                         /* (max_slots, Vp) host copy of the step's logits */
    float *samp_scratch;                   /* (2V) */
    int32_t *samp_iscratch;                /* (V) */
    char *emit;                            /* (TG_EMIT_CAP) */
    slot_t *slots;
    int n_active;
    /* prefill groups of the current step */
    int *grp_slot, *grp_start, *grp_len; /* (max_slots) */
    int n_grp, n_prefill_rows, n_rows;
    char byte_text[256];
};

/* Runs the step's rows through the model; fills e->logits for the last row
 * of every prefill group and every decode row (in row order). Returns the
 * number of logit rows. */
static int forward_rows(tg_engine *e) {
    int nl = 0;
    for (int g = 0; g < e->n_grp; g++) {
        e->out_rows[nl] = e->grp_start[g] + e->grp_len[g] - 1;
        e->logit_slot[nl++] = e->grp_slot[g];
    }
    for (int r = e->n_prefill_rows; r < e->n_rows; r++) {
        e->out_rows[nl] = r;
        e->logit_slot[nl++] = e->row_slot[r];
    }
    tg_step_rows rows = {.tok = e->row_tok, .pos = e->row_pos, .slot = e->row_slot, .n = e->n_rows,
                         .n_prefill = e->n_prefill_rows, .grp_start = e->grp_start, .grp_len = e->grp_len,
                         .n_grp = e->n_grp};
    int rc = tg_model_forward_rows(e->model, &e->w, &e->kv, &rows, e->out_rows, nl, &e->work);
    TG_ASSERT(rc == TG_OK); /* sizes were checked when the rows were gathered */
    e->be->to_host(e->be, e->logits, e->work.logits, (size_t)nl * e->Vp * sizeof(float));
    return nl;
}

/* ------------------------------------------------------------ init/free */

const char *tg_engine_token_text(const tg_engine *e, int32_t id, int *len) {
    *len = 0;
    if (id < 0) return "";
    if (e->tok) {
        size_t n = 0;
        const char *b = tg_tokenizer_token_bytes(e->tok, id, &n);
        if (!b) return "";
        *len = (int)n;
        return b;
    }
    if (id < 256) {
        *len = 1;
        return e->byte_text + id;
    }
    return "";
}

void tg_engine_free(tg_engine *e) {
    if (!e) return;
    tg_model_weights_free(e->model, &e->w);
    tg_model_kv_free(e->model, &e->kv);
    tg_model_rows_free(e->model, &e->work);
    tg_free(e->row_tok);
    tg_free(e->row_pos);
    tg_free(e->row_slot);
    tg_free(e->out_rows);
    tg_free(e->logits);
    tg_free(e->logit_slot);
    tg_free(e->samp_scratch);
    tg_free(e->samp_iscratch);
    tg_free(e->emit);
    tg_free(e->grp_slot);
    tg_free(e->grp_start);
    tg_free(e->grp_len);
    if (e->slots)
        for (int s = 0; s < e->max_slots; s++) {
            tg_free(e->slots[s].prompt);
            tg_free(e->slots[s].counts);
            tg_free(e->slots[s].st.buf);
        }
    free(e->slots);
    free(e);
}

#define ALLOC(ptr, count, what)                                       \
    do {                                                              \
        (ptr) = tg_alloc((size_t)(count) * sizeof *(ptr), what);      \
        if (!(ptr)) {                                                 \
            tg_engine_free(e);                                        \
            return TG_ERR_RUNTIME;                                    \
        }                                                             \
    } while (0)

int tg_engine_init(tg_engine **out, tg_model *model, const tg_tokenizer *tok, int max_slots, int max_ctx,
                   tg_dtype dtype) {
    *out = NULL;
    if (!model) return tg_error_set(TG_ERR_INPUT, "engine: no model");
    const tg_config *cfg = tg_model_config(model);
    if (max_slots < 1 || max_slots > 4096)
        return tg_error_set(TG_ERR_INPUT, "engine: max_slots %d out of range (1-4096)", max_slots);
    if (max_ctx <= 0) max_ctx = cfg->n_ctx;
    if (max_ctx < 2 || max_ctx > cfg->n_ctx)
        return tg_error_set(TG_ERR_INPUT, "engine: context %d out of range (2-%d, the model's n_ctx)", max_ctx,
                            cfg->n_ctx);
    if (dtype != TG_DTYPE_FP32 && dtype != TG_DTYPE_BF16 && dtype != TG_DTYPE_INT8)
        return tg_error_set(TG_ERR_INPUT, "engine: bad dtype");
    tg_engine *e = calloc(1, sizeof *e);
    if (!e) return tg_error_set(TG_ERR_RUNTIME, "engine: out of memory");
    e->model = model;
    e->be = tg_model_backend(model);
    e->tok = tok;
    e->cfg = *cfg;
    e->V = cfg->vocab_size;
    e->Vp = cfg->padded_vocab;
    e->max_slots = max_slots;
    e->max_ctx = max_ctx;
    e->max_rows = max_ctx + max_slots;
    e->dtype = dtype;
    for (int i = 0; i < 256; i++) e->byte_text[i] = (char)i;
    const int R = e->max_rows;
    int rc = tg_model_weights_init(model, &e->w, dtype, true);
    if (rc == TG_OK) rc = tg_model_kv_init(model, &e->kv, max_slots, max_ctx);
    if (rc == TG_OK) rc = tg_model_rows_init(model, &e->work, R, max_slots, max_ctx);
    if (rc != TG_OK) {
        tg_engine_free(e);
        return rc;
    }
    ALLOC(e->row_tok, R, "engine rows");
    ALLOC(e->row_pos, R, "engine rows");
    ALLOC(e->row_slot, R, "engine rows");
    ALLOC(e->out_rows, max_slots, "engine rows");
    ALLOC(e->logits, (size_t)max_slots * e->Vp, "logits");
    ALLOC(e->logit_slot, max_slots, "engine rows");
    ALLOC(e->samp_scratch, 2 * (size_t)e->Vp, "sampler scratch");
    ALLOC(e->samp_iscratch, e->Vp, "sampler scratch");
    ALLOC(e->emit, TG_EMIT_CAP, "engine text");
    ALLOC(e->grp_slot, max_slots, "engine rows");
    ALLOC(e->grp_start, max_slots, "engine rows");
    ALLOC(e->grp_len, max_slots, "engine rows");
    e->slots = calloc((size_t)max_slots, sizeof *e->slots);
    if (!e->slots) {
        tg_engine_free(e);
        return tg_error_set(TG_ERR_RUNTIME, "engine: out of memory");
    }
    for (int s = 0; s < max_slots; s++) {
        slot_t *sl = &e->slots[s];
        ALLOC(sl->prompt, max_ctx, "engine slots");
        ALLOC(sl->counts, e->V, "engine slots");
        ALLOC(sl->st.buf, TG_HELD_CAP, "engine slots");
        sl->st.cap = TG_HELD_CAP;
    }
    *out = e;
    return TG_OK;
}

/* ------------------------------------------------------------ requests */

int tg_engine_active(const tg_engine *e) { return e->n_active; }
int tg_engine_threads(const tg_engine *e) { return e->be->threads ? e->be->threads(e->be) : 1; }
void tg_engine_set_adaptive_threads(tg_engine *e, bool on) {
    if (e->be->set_adaptive) e->be->set_adaptive(e->be, on);
}
int tg_engine_free_slots(const tg_engine *e) { return e->max_slots - e->n_active; }
int tg_engine_max_slots(const tg_engine *e) { return e->max_slots; }
int tg_engine_max_ctx(const tg_engine *e) { return e->max_ctx; }

int tg_engine_add(tg_engine *e, const int32_t *prompt, int n, const tg_sampling_params *p, tg_token_callback cb,
                  void *user, int *slot) {
    if (slot) *slot = -1;
    if (!prompt || n <= 0) return tg_error_set(TG_ERR_INPUT, "empty prompt");
    if (n >= e->max_ctx)
        return tg_error_set(TG_ERR_INPUT, "prompt of %d tokens leaves no room to generate (context %d)", n,
                            e->max_ctx);
    for (int i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= e->V)
            return tg_error_set(TG_ERR_INPUT, "prompt token %d at index %d is outside the vocabulary (0-%d)", prompt[i],
                                i, e->V - 1);
    tg_sampling_params def = tg_sampling_default_params();
    if (!p) p = &def;
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature))
        return tg_error_set(TG_ERR_INPUT, "temperature must be >= 0 (got %g)", (double)p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return tg_error_set(TG_ERR_INPUT, "top_p must be in (0, 1] (got %g)", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return tg_error_set(TG_ERR_INPUT, "min_p must be in [0, 1] (got %g)", (double)p->min_p);
    if (p->top_k < 0) return tg_error_set(TG_ERR_INPUT, "top_k must be >= 0 (got %d)", p->top_k);
    if (!isfinite(p->frequency_penalty) || !isfinite(p->presence_penalty))
        return tg_error_set(TG_ERR_INPUT, "penalties must be finite numbers");
    if (p->top_logprobs < 0 || p->top_logprobs > TG_MAX_TOP_LOGPROBS)
        return tg_error_set(TG_ERR_INPUT, "top_logprobs must be 0-%d (got %d)", TG_MAX_TOP_LOGPROBS, p->top_logprobs);
    for (int i = 0; i < TG_MAX_STOP; i++)
        if (p->stop[i] && strlen(p->stop[i]) > TG_MAX_STOP_LEN)
            return tg_error_set(TG_ERR_INPUT, "stop string %d is longer than %d bytes", i, TG_MAX_STOP_LEN);
    int s = -1;
    for (int i = 0; i < e->max_slots; i++)
        if (e->slots[i].state == SLOT_FREE) {
            s = i;
            break;
        }
    if (s < 0) return tg_error_set(TG_ERR_RUNTIME, "all %d generation slots are busy", e->max_slots);
    slot_t *sl = &e->slots[s];
    sl->p = *p;
    sl->st.n_stop = 0;
    sl->st.len = 0;
    for (int i = 0; i < TG_MAX_STOP; i++) {
        sl->p.stop[i] = NULL; /* the caller's strings need not outlive the call */
        if (!p->stop[i] || !p->stop[i][0]) continue;
        int k = sl->st.n_stop++;
        sl->st.stop_len[k] = (int)strlen(p->stop[i]);
        memcpy(sl->st.stops[k], p->stop[i], (size_t)sl->st.stop_len[k] + 1);
    }
    memcpy(sl->prompt, prompt, (size_t)n * sizeof *prompt);
    sl->n_prompt = n;
    sl->pos = 0;
    sl->n_gen = 0;
    sl->last = -1;
    sl->cb = cb;
    sl->user = user;
    tg_sampler_reset(&sl->smp, &sl->p, sl->counts, e->V);
    sl->state = SLOT_PREFILL;
    e->n_active++;
    if (slot) *slot = s;
    return TG_OK;
}

static void release(tg_engine *e, int s) {
    e->slots[s].state = SLOT_FREE;
    e->n_active--;
}

static int fire(slot_t *sl, tg_token_event *ev) { return sl->cb ? sl->cb(ev, sl->user) : 0; }

static void base_event(tg_engine *e, int s, tg_token_event *ev) {
    memset(ev, 0, sizeof *ev);
    ev->slot = s;
    ev->token = -1;
    ev->token_text = "";
    ev->text = "";
    ev->n_prompt = e->slots[s].n_prompt;
    ev->n_generated = e->slots[s].n_gen;
}

static void finish_cancelled(tg_engine *e, int s) {
    slot_t *sl = &e->slots[s];
    tg_token_event ev;
    base_event(e, s, &ev);
    /* what was held back is part of the output so far */
    ev.text_len = tg_stream_text_flush(&sl->st, e->emit, TG_EMIT_CAP);
    ev.text = e->emit;
    ev.finish = TG_FINISH_CANCELLED;
    release(e, s);
    fire(sl, &ev);
}

int tg_engine_cancel(tg_engine *e, int slot) {
    if (slot < 0 || slot >= e->max_slots || e->slots[slot].state == SLOT_FREE)
        return tg_error_set(TG_ERR_INPUT, "slot %d is not active", slot);
    finish_cancelled(e, slot);
    return TG_OK;
}

/* Samples slot s's next token from its logits row and reports it. */
static void sample_and_emit(tg_engine *e, int s, float *logits) {
    slot_t *sl = &e->slots[s];
    tg_token_alt alts[TG_MAX_TOP_LOGPROBS];
    int32_t top_ids[TG_MAX_TOP_LOGPROBS];
    float top_lp[TG_MAX_TOP_LOGPROBS];
    int n_top = sl->p.logprobs ? sl->p.top_logprobs : 0;
    float lp = 0;
    int32_t tok = tg_sampler_sample(&sl->smp, logits, e->samp_scratch, e->samp_iscratch, sl->p.logprobs, &lp, n_top,
                                    top_ids, top_lp);
    if (n_top > e->V) n_top = e->V;
    sl->n_gen++;
    sl->last = tok;
    tg_token_event ev;
    base_event(e, s, &ev);
    ev.token = tok;
    ev.token_text = tg_engine_token_text(e, tok, &ev.token_text_len);
    ev.logprob = lp;
    for (int i = 0; i < n_top; i++) {
        alts[i].id = top_ids[i];
        alts[i].text = tg_engine_token_text(e, top_ids[i], &alts[i].text_len);
        alts[i].logprob = top_lp[i];
    }
    ev.n_top = n_top;
    ev.top = alts;
    int stop_tok = (!sl->p.ignore_eos && tok == e->cfg.eos_id);
    for (int i = 0; i < TG_MAX_STOP_IDS; i++)
        if (sl->p.stop_ids[i] >= 0 && tok == sl->p.stop_ids[i]) stop_tok = 1;
    if (stop_tok) {
        ev.text_len = tg_stream_text_flush(&sl->st, e->emit, TG_EMIT_CAP);
        ev.finish = TG_FINISH_STOP;
    } else {
        int emitted = 0;
        int matched = tg_stream_text_push(&sl->st, ev.token_text, ev.token_text_len, e->emit, TG_EMIT_CAP, &emitted);
        ev.text_len = emitted;
        if (matched) {
            ev.finish = TG_FINISH_STOP;
        } else if ((sl->p.max_tokens > 0 && sl->n_gen >= sl->p.max_tokens) || sl->n_prompt + sl->n_gen >= e->max_ctx) {
            /* the sequence may not grow past the context: the next position would be max_ctx */
            ev.text_len += tg_stream_text_flush(&sl->st, e->emit + emitted, TG_EMIT_CAP - emitted);
            ev.finish = TG_FINISH_LENGTH;
        }
    }
    ev.text = e->emit;
    if (ev.finish != TG_FINISH_NONE) {
        release(e, s);
        fire(sl, &ev);
        return;
    }
    if (fire(sl, &ev)) finish_cancelled(e, s);
}

int tg_engine_step(tg_engine *e) {
    if (e->n_active == 0) return TG_OK;
    /* gather rows: prefills first (each whole prompt, while they fit), then decodes */
    int n_dec = 0;
    for (int s = 0; s < e->max_slots; s++) n_dec += e->slots[s].state == SLOT_DECODE;
    int R = 0;
    e->n_grp = 0;
    for (int s = 0; s < e->max_slots; s++) {
        slot_t *sl = &e->slots[s];
        if (sl->state != SLOT_PREFILL) continue;
        if (R + sl->n_prompt + n_dec > e->max_rows) break; /* the rest wait for the next step */
        e->grp_slot[e->n_grp] = s;
        e->grp_start[e->n_grp] = R;
        e->grp_len[e->n_grp] = sl->n_prompt;
        e->n_grp++;
        for (int i = 0; i < sl->n_prompt; i++) {
            e->row_tok[R] = sl->prompt[i];
            e->row_pos[R] = i;
            e->row_slot[R] = s;
            R++;
        }
    }
    e->n_prefill_rows = R;
    for (int s = 0; s < e->max_slots; s++) {
        slot_t *sl = &e->slots[s];
        if (sl->state != SLOT_DECODE) continue;
        e->row_tok[R] = sl->last;
        e->row_pos[R] = sl->pos;
        e->row_slot[R] = s;
        R++;
    }
    e->n_rows = R;
    if (R == 0) return TG_OK;
    /* the backend may tune itself (the CPU backend's thread count) on decode-only steps */
    if (e->be->step_begin) e->be->step_begin(e->be, R, e->n_grp == 0);
    int nl = forward_rows(e);
    if (e->be->step_end) e->be->step_end(e->be);
    for (int g = 0; g < e->n_grp; g++) {
        slot_t *sl = &e->slots[e->grp_slot[g]];
        sl->pos = sl->n_prompt;
        sl->state = SLOT_DECODE;
    }
    for (int r = e->n_prefill_rows; r < R; r++) e->slots[e->row_slot[r]].pos++;
    /* callbacks in slot order */
    for (int s = 0; s < e->max_slots; s++)
        for (int i = 0; i < nl; i++)
            if (e->logit_slot[i] == s && e->slots[s].state == SLOT_DECODE) {
                sample_and_emit(e, s, e->logits + (size_t)i * e->Vp);
                break;
            }
    return TG_OK;
}

/* ------------------------------------------------------------ tg_generate */

typedef struct {
    int32_t *out;
    int max_out, n_out;
    tg_finish_reason finish;
    int done;
    tg_token_callback cb;
    void *user;
} gen_ctx;

static int gen_cb(const tg_token_event *ev, void *user) {
    gen_ctx *g = user;
    if (ev->token >= 0 && g->out && g->n_out < g->max_out) g->out[g->n_out] = ev->token;
    if (ev->token >= 0) g->n_out++;
    if (ev->finish != TG_FINISH_NONE) {
        g->finish = ev->finish;
        g->done = 1;
    }
    return g->cb ? g->cb(ev, g->user) : 0;
}

int tg_generate(tg_engine *e, const int32_t *prompt, int n, const tg_sampling_params *p, tg_token_callback cb,
                void *user, int32_t *out, int max_out, int *n_out, tg_finish_reason *finish) {
    gen_ctx g = {out, max_out, 0, TG_FINISH_NONE, 0, cb, user};
    int slot;
    TG_TRY(tg_engine_add(e, prompt, n, p, gen_cb, &g, &slot));
    while (!g.done) TG_TRY(tg_engine_step(e));
    if (n_out) *n_out = g.n_out < max_out ? g.n_out : max_out;
    if (finish) *finish = g.finish;
    return TG_OK;
}
