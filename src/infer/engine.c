/*
 * engine.c — the generation engine: a KV-cached GPT-2 forward over a set of
 * rows (one row = one token of one slot at one position), continuous
 * batching over fixed slots, sampling and streaming events.
 *
 * A step gathers rows: the whole prompt of each slot added since the last
 * step (prefill), then one row per decoding slot. Each layer runs all rows
 * of the step through each weight matrix in one packed matrix multiply
 * (decode_kernels.c). Attention is per row over its own slot's cache (for a
 * prefill, per head as two GEMMs against the cache). Only the last row of a
 * prefill and the decode rows go through the final LayerNorm and LM head.
 *
 * Bitwise batching: every row's result depends only on its own slot (the
 * matmul sums each row in a fixed order, attention reads only its slot), so
 * a request gives the same tokens alone or batched with others (tested).
 *
 * KV cache: k and v of (slot, layer, head) are (max_ctx, HS) contiguous.
 * Memory: 2 * max_slots * L * max_ctx * C floats, all allocated at init,
 * with the row buffers for max_ctx + max_slots rows; steps allocate nothing.
 *
 * Not here: chunked prefill (a long prompt is prefilled in one step, so the
 * other streams wait for it once), a bf16 KV cache, speculative decoding.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "infer/engine.h"

enum { SLOT_FREE = 0, SLOT_PREFILL = 1, SLOT_DECODE = 2 };

#define TG_HELD_CAP 4096                 /* bytes a slot may hold back */
#define TG_EMIT_CAP (3 * TG_HELD_CAP + 16) /* sanitised output of a release */
#define TG_ATT_QBLOCK 128                /* query rows per prefill attention block */

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
    const tg_tokenizer *tok;
    tg_config cfg;
    tg_params *P;
    int L, C, NH, HS, V, Vp;
    int max_slots, max_ctx, max_rows, n_threads;
    /* Thread count of the per-token work, chosen by measurement: on a busy
     * machine an OpenMP barrier waits for a descheduled thread, and with ~60
     * barriers a token two threads can run several times slower than one
     * (bench/README.md). Every probe_every decode-only steps, one step runs with the
     * other count right after one with the current; a clearly faster one
     * (by 20%) is kept. Results never depend on the thread count. */
    int nt_cur, nt_step, adaptive, probe_every, since_probe, probe_phase, ref_rows;
    double ref_t;
    tg_dtype dtype;
    tg_packed_weight *wqkv, *wproj, *wfc, *wfcproj; /* (L) */
    tg_packed_weight wlm;                         /* wte^T: (C, Vp) */
    float *kcache, *vcache;  /* (slots, L, NH, max_ctx, HS) */
    /* rows of a step */
    int32_t *row_tok, *row_pos, *row_slot; /* (max_rows) */
    float *x, *xn, *qkv, *att, *h, *tmp;   /* (max_rows, C|3C|4C) */
    uint16_t *xb;                          /* (max_rows, 4C) bf16 scratch */
    float *att_scratch;                    /* (n_threads, TG_ATT_QBLOCK, max_ctx); the attention
                                              regions use at most n_threads (num_threads clause) */
    float *lx, *logits;                    /* (max_slots, C), (max_slots, Vp) */
    int *logit_slot;                       /* (max_slots) */
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

/* ------------------------------------------------------------ small ops */

static inline float fast_exp(float x) {
    /* exp(x) = 2^n e^r, |r| <= ln2/2; degree-6 Taylor for e^r (rel. error ~2e-7);
     * scalar code the compiler vectorises (libm's expf is a call per value). */
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* round to nearest: adding 1.5 * 2^23 pushes the fraction bits out */
    float n = (x * 1.4426950408889634f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f - n * 1.428606765330187e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    int32_t bits = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &bits, 4);
    return p * s;
}

/* PyTorch: F.layer_norm(x, (C,), w, b, eps) per row. */
static void layernorm_rows(float *out, const float *x, const float *w, const float *b, int M, int C, float eps,
                           int nt) {
#pragma omp parallel for schedule(static) if ((size_t)M * C >= 65536) num_threads(nt)
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * C;
        float *o = out + (size_t)m * C;
        float mean = 0;
        for (int i = 0; i < C; i++) mean += xr[i];
        mean /= C;
        float var = 0;
        for (int i = 0; i < C; i++) var += (xr[i] - mean) * (xr[i] - mean);
        var /= C;
        float rs = 1.0f / sqrtf(var + eps);
        for (int i = 0; i < C; i++) o[i] = (xr[i] - mean) * rs * w[i] + b[i];
    }
}

/* PyTorch: F.gelu(x, approximate="tanh"), in place over n values. */
static void gelu_inplace(float *x, size_t n, int nt) {
#pragma omp parallel for schedule(static) if (n >= 65536) num_threads(nt)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        /* tanh(u) = 1 - 2 / (exp(2u) + 1), exact at both ends */
        float t = 1.0f - 2.0f / (fast_exp(2.0f * u) + 1.0f);
        x[i] = 0.5f * v * (1.0f + t);
    }
}

static void add_inplace(float *x, const float *y, size_t n, int nt) {
#pragma omp parallel for schedule(static) if (n > 65536) num_threads(nt)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* ------------------------------------------------------------ attention */

static inline float *kc_at(const tg_engine *e, float *base, int slot, int l, int h) {
    return base + ((((size_t)slot * e->L + l) * e->NH + h) * e->max_ctx) * e->HS;
}

/* One decode row, one head: softmax(q K[0..n)^T / sqrt(HS)) V[0..n). */
static void attend_row(float *out, const float *q, const float *kc, const float *vc, int n, int HS, float *sc) {
    const float scale = 1.0f / sqrtf((float)HS);
    float mx = -INFINITY;
    for (int t = 0; t < n; t++) {
        const float *k = kc + (size_t)t * HS;
        float s = 0;
        for (int d = 0; d < HS; d++) s += q[d] * k[d];
        s *= scale;
        sc[t] = s;
        mx = fmaxf(mx, s);
    }
    float sum = 0;
    for (int t = 0; t < n; t++) {
        sc[t] = expf(sc[t] - mx);
        sum += sc[t];
    }
    float inv = 1.0f / sum;
    for (int d = 0; d < HS; d++) out[d] = 0;
    for (int t = 0; t < n; t++) {
        const float *v = vc + (size_t)t * HS;
        float p = sc[t] * inv;
        for (int d = 0; d < HS; d++) out[d] += p * v[d];
    }
}

/* Attention of layer l for every row of the step; K and V of the rows are
 * already in the cache. */
static void attention(tg_engine *e, int l) {
    const int C = e->C, HS = e->HS, NH = e->NH;
    /* prefill groups: per (head, block of query rows) two GEMMs over the cache */
    for (int g = 0; g < e->n_grp; g++) {
        int s = e->grp_slot[g], r0 = e->grp_start[g], T = e->grp_len[g];
        int p0 = e->row_pos[r0];
        int nblk = (T + TG_ATT_QBLOCK - 1) / TG_ATT_QBLOCK;
        const int par = (double)T * (p0 + T) * C >= (double)(1 << 18);
#pragma omp parallel for schedule(dynamic) if (par) num_threads(e->n_threads)
        for (int job = 0; job < NH * nblk; job++) {
            int h = job / nblk, b = job % nblk;
            int q0 = b * TG_ATT_QBLOCK;
            int nq = T - q0 < TG_ATT_QBLOCK ? T - q0 : TG_ATT_QBLOCK;
            int nk = p0 + q0 + nq; /* keys the last row of the block sees */
#ifdef _OPENMP
            float *S = e->att_scratch + (size_t)omp_get_thread_num() * TG_ATT_QBLOCK * e->max_ctx;
#else
            float *S = e->att_scratch;
#endif
            const float *Q = e->qkv + (size_t)(r0 + q0) * 3 * C + h * HS;
            const float *K = kc_at(e, e->kcache, s, l, h), *Vc = kc_at(e, e->vcache, s, l, h);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, HS, 1.0f / sqrtf((float)HS), Q, 3 * C, K,
                        HS, 0.0f, S, nk);
            for (int i = 0; i < nq; i++) {
                float *row = S + (size_t)i * nk;
                int n = p0 + q0 + i + 1; /* causal: keys 0..pos */
                float mx = -INFINITY;
                for (int t = 0; t < n; t++) mx = fmaxf(mx, row[t]);
                float sum = 0;
                for (int t = 0; t < n; t++) {
                    row[t] = fast_exp(row[t] - mx);
                    sum += row[t];
                }
                float inv = 1.0f / sum;
                for (int t = 0; t < n; t++) row[t] *= inv;
                for (int t = n; t < nk; t++) row[t] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, HS, nk, 1.0f, S, nk, Vc, HS, 0.0f,
                        e->att + (size_t)(r0 + q0) * C + h * HS, C);
        }
    }
    /* decode rows */
    int r0 = e->n_prefill_rows, nd = e->n_rows - e->n_prefill_rows;
    if (nd > 0) {
        double work = 0;
        for (int r = r0; r < e->n_rows; r++) work += (double)(e->row_pos[r] + 1) * C;
#pragma omp parallel for schedule(dynamic) if (work >= (double)(1 << 17)) num_threads(e->nt_step)
        for (int job = 0; job < nd * NH; job++) {
            int r = r0 + job / NH, h = job % NH;
            int s = e->row_slot[r];
#ifdef _OPENMP
            float *sc = e->att_scratch + (size_t)omp_get_thread_num() * TG_ATT_QBLOCK * e->max_ctx;
#else
            float *sc = e->att_scratch;
#endif
            attend_row(e->att + (size_t)r * C + h * HS, e->qkv + (size_t)r * 3 * C + h * HS,
                       kc_at(e, e->kcache, s, l, h), kc_at(e, e->vcache, s, l, h), e->row_pos[r] + 1, HS, sc);
        }
    }
}

/* ------------------------------------------------------------ forward */

/* out (rows, N) = x (rows, K) @ W + b for all rows of the step, prefill and
 * decode together, through the packed kernel: each row's sum runs in one
 * fixed order whatever the other rows, so batching never changes a result.
 * (It is not slower than OpenBLAS's sgemm at prefill sizes either:
 * bench/README.md.) */
static void matmul_rows(tg_engine *e, float *out, const float *x, const tg_packed_weight *W, const float *bias) {
    tg_packed_matmul_nt(out, W->N, x, W, bias, e->n_rows, e->xb, e->nt_step);
}

/* Runs the step's rows through the model; fills e->logits for the last row
 * of every prefill group and every decode row (in row order). Returns the
 * number of logit rows. */
static int forward_rows(tg_engine *e) {
    const int C = e->C, L = e->L, R = e->n_rows;
    const tg_params *P = e->P;
#pragma omp parallel for schedule(static) if ((size_t)R * C >= 65536) num_threads(e->nt_step)
    for (int r = 0; r < R; r++) {
        const float *te = P->wte + (size_t)e->row_tok[r] * C, *pe = P->wpe + (size_t)e->row_pos[r] * C;
        float *xr = e->x + (size_t)r * C;
        for (int i = 0; i < C; i++) xr[i] = te[i] + pe[i];
    }
    for (int l = 0; l < L; l++) {
        layernorm_rows(e->xn, e->x, P->ln1w + (size_t)l * C, P->ln1b + (size_t)l * C, R, C, e->cfg.ln_eps, e->nt_step);
        matmul_rows(e, e->qkv, e->xn, &e->wqkv[l], P->qkvb + (size_t)l * 3 * C);
        /* this step's keys and values into the cache */
#pragma omp parallel for schedule(static) if ((size_t)R * C >= 65536) num_threads(e->nt_step)
        for (int r = 0; r < R; r++) {
            int s = e->row_slot[r], pos = e->row_pos[r];
            for (int h = 0; h < e->NH; h++) {
                memcpy(kc_at(e, e->kcache, s, l, h) + (size_t)pos * e->HS, e->qkv + (size_t)r * 3 * C + C + h * e->HS,
                       (size_t)e->HS * sizeof(float));
                memcpy(kc_at(e, e->vcache, s, l, h) + (size_t)pos * e->HS,
                       e->qkv + (size_t)r * 3 * C + 2 * C + h * e->HS, (size_t)e->HS * sizeof(float));
            }
        }
        attention(e, l);
        matmul_rows(e, e->tmp, e->att, &e->wproj[l], P->attprojb + (size_t)l * C);
        add_inplace(e->x, e->tmp, (size_t)R * C, e->nt_step);
        layernorm_rows(e->xn, e->x, P->ln2w + (size_t)l * C, P->ln2b + (size_t)l * C, R, C, e->cfg.ln_eps, e->nt_step);
        matmul_rows(e, e->h, e->xn, &e->wfc[l], P->fcb + (size_t)l * 4 * C);
        gelu_inplace(e->h, (size_t)R * 4 * C, e->nt_step);
        matmul_rows(e, e->tmp, e->h, &e->wfcproj[l], P->fcprojb + (size_t)l * C);
        add_inplace(e->x, e->tmp, (size_t)R * C, e->nt_step);
    }
    /* rows that need logits: last of each prefill group, then decode rows */
    int nl = 0;
    for (int g = 0; g < e->n_grp; g++) {
        int r = e->grp_start[g] + e->grp_len[g] - 1;
        memcpy(e->lx + (size_t)nl * C, e->x + (size_t)r * C, (size_t)C * sizeof(float));
        e->logit_slot[nl++] = e->grp_slot[g];
    }
    for (int r = e->n_prefill_rows; r < R; r++) {
        memcpy(e->lx + (size_t)nl * C, e->x + (size_t)r * C, (size_t)C * sizeof(float));
        e->logit_slot[nl++] = e->row_slot[r];
    }
    layernorm_rows(e->lx, e->lx, P->lnfw, P->lnfb, nl, C, e->cfg.ln_eps, e->nt_step);
    tg_packed_matmul_nt(e->logits, e->Vp, e->lx, &e->wlm, NULL, nl, e->xb, e->nt_step);
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
    for (int l = 0; l < e->L; l++) {
        if (e->wqkv) tg_packed_weight_free(&e->wqkv[l]);
        if (e->wproj) tg_packed_weight_free(&e->wproj[l]);
        if (e->wfc) tg_packed_weight_free(&e->wfc[l]);
        if (e->wfcproj) tg_packed_weight_free(&e->wfcproj[l]);
    }
    free(e->wqkv);
    free(e->wproj);
    free(e->wfc);
    free(e->wfcproj);
    tg_packed_weight_free(&e->wlm);
    tg_free(e->kcache);
    tg_free(e->vcache);
    tg_free(e->row_tok);
    tg_free(e->row_pos);
    tg_free(e->row_slot);
    tg_free(e->x);
    tg_free(e->xn);
    tg_free(e->qkv);
    tg_free(e->att);
    tg_free(e->h);
    tg_free(e->tmp);
    tg_free(e->xb);
    tg_free(e->att_scratch);
    tg_free(e->lx);
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
    if (dtype != TG_DTYPE_FP32 && dtype != TG_DTYPE_BF16) return tg_error_set(TG_ERR_INPUT, "engine: bad dtype");
    tg_engine *e = calloc(1, sizeof *e);
    if (!e) return tg_error_set(TG_ERR_RUNTIME, "engine: out of memory");
    e->model = model;
    e->tok = tok;
    e->cfg = *cfg;
    e->P = tg_model_params(model);
    e->L = cfg->n_layer;
    e->C = cfg->n_embd;
    e->NH = cfg->n_head;
    e->HS = e->C / e->NH;
    e->V = cfg->vocab_size;
    e->Vp = cfg->padded_vocab;
    e->max_slots = max_slots;
    e->max_ctx = max_ctx;
    e->max_rows = max_ctx + max_slots;
    e->dtype = dtype;
#ifdef _OPENMP
    e->n_threads = omp_get_max_threads();
#else
    e->n_threads = 1;
#endif
    e->nt_cur = e->nt_step = e->n_threads;
    e->adaptive = 1;
    e->probe_every = 32;
    for (int i = 0; i < 256; i++) e->byte_text[i] = (char)i;
    const int L = e->L, C = e->C, R = e->max_rows;
    e->wqkv = calloc((size_t)L, sizeof *e->wqkv);
    e->wproj = calloc((size_t)L, sizeof *e->wproj);
    e->wfc = calloc((size_t)L, sizeof *e->wfc);
    e->wfcproj = calloc((size_t)L, sizeof *e->wfcproj);
    if (!e->wqkv || !e->wproj || !e->wfc || !e->wfcproj) {
        tg_engine_free(e);
        return tg_error_set(TG_ERR_RUNTIME, "engine: out of memory");
    }
    const tg_params *P = e->P;
    int rc = TG_OK;
    for (int l = 0; l < L && rc == TG_OK; l++) {
        rc = tg_packed_weight_init(&e->wqkv[l], P->qkvw + (size_t)l * C * 3 * C, C, 3 * C, 0, dtype);
        if (rc == TG_OK) rc = tg_packed_weight_init(&e->wproj[l], P->attprojw + (size_t)l * C * C, C, C, 0, dtype);
        if (rc == TG_OK) rc = tg_packed_weight_init(&e->wfc[l], P->fcw + (size_t)l * C * 4 * C, C, 4 * C, 0, dtype);
        if (rc == TG_OK)
            rc = tg_packed_weight_init(&e->wfcproj[l], P->fcprojw + (size_t)l * 4 * C * C, 4 * C, C, 0, dtype);
    }
    if (rc == TG_OK) rc = tg_packed_weight_init(&e->wlm, P->wte, C, e->Vp, 1, dtype);
    if (rc != TG_OK) {
        tg_engine_free(e);
        return rc;
    }
    size_t cache = (size_t)max_slots * L * max_ctx * C;
    ALLOC(e->kcache, cache, "KV cache (keys)");
    ALLOC(e->vcache, cache, "KV cache (values)");
    ALLOC(e->row_tok, R, "engine rows");
    ALLOC(e->row_pos, R, "engine rows");
    ALLOC(e->row_slot, R, "engine rows");
    ALLOC(e->x, (size_t)R * C, "engine activations");
    ALLOC(e->xn, (size_t)R * C, "engine activations");
    ALLOC(e->qkv, (size_t)R * 3 * C, "engine activations");
    ALLOC(e->att, (size_t)R * C, "engine activations");
    ALLOC(e->h, (size_t)R * 4 * C, "engine activations");
    ALLOC(e->tmp, (size_t)R * C, "engine activations");
    ALLOC(e->xb, (size_t)R * 4 * C, "engine bf16 scratch");
    ALLOC(e->att_scratch, (size_t)e->n_threads * TG_ATT_QBLOCK * max_ctx, "attention scratch");
    ALLOC(e->lx, (size_t)max_slots * C, "engine activations");
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
int tg_engine_threads(const tg_engine *e) { return e->nt_cur; }
void tg_engine_set_adaptive_threads(tg_engine *e, bool on) {
    e->adaptive = on;
    if (!on) e->nt_cur = e->nt_step = e->n_threads;
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
    /* the thread count: see the struct; only decode-only steps are compared */
    int decode_only = e->adaptive && e->n_threads > 1 && e->n_grp == 0;
    int nt = e->nt_cur;
    if (!decode_only) {
        e->probe_phase = 0;
    } else {
        if (e->probe_phase == 0 && ++e->since_probe >= e->probe_every) e->probe_phase = 1;
        if (e->probe_phase == 2) nt = e->nt_cur == 1 ? e->n_threads : 1;
    }
    e->nt_step = nt;
    double t0 = tg_now();
    int nl = forward_rows(e);
    double dt = tg_now() - t0;
    if (decode_only && e->probe_phase == 1) {
        e->ref_t = dt;
        e->ref_rows = R;
        e->probe_phase = 2;
    } else if (decode_only && e->probe_phase == 2) {
        if (R == e->ref_rows && dt < 0.8 * e->ref_t) {
            e->nt_cur = nt;
            e->probe_every = 32;
        } else if (e->probe_every < 1024) {
            e->probe_every *= 2; /* a settled choice is re-checked ever more rarely */
        }
        e->probe_phase = 0;
        e->since_probe = 0;
    }
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
