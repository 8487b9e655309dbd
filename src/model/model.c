/*
 * model.c — the GPT-2 model: parameters (one device buffer, Hugging Face
 * layout), gradients, AdamW moments, activations, GPT-2 initialisation, and
 * ONE forward and backward written against the backend op table
 * (kernels/backend.h). Training, eval and SFT run the forward over a (B, T)
 * micro-batch with every activation saved; the generation engine runs the
 * same forward over the rows of a decode step against its KV cache
 * (tg_model_forward_rows). No op is computed anywhere else.
 *
 * Memory: tg_model_init allocates the parameters; tg_model_alloc_train
 * allocates gradients, every activation of a (B, T) micro-batch and sizes the
 * backend's scratch, once. Forward and backward allocate nothing. All of it
 * lives in the backend's memory: host code reads and writes it only through
 * the copy calls (tg_model_params_to_host, ...).
 *
 * The backward keeps one residual-stream gradient buffer (dres) that flows
 * down through the layers: a residual add's backward is the identity, so
 * each sub-block's input gradient is simply accumulated into it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"

/* Activations of one micro-batch, for all layers (L) where backward needs them. */
typedef struct {
    float *encoded;   /* (B, T, C) */
    float *ln1;       /* (L, B, T, C) */
    float *ln1_mean;  /* (L, B, T) */
    float *ln1_rstd;  /* (L, B, T) */
    float *qkv;       /* (L, B, T, 3C) */
    float *atty;      /* (L, B, T, C) attention output, heads joined */
    float *att;       /* (L, B, NH, T, T) softmax probabilities */
    float *res2;      /* (L, B, T, C) residual after attention */
    float *ln2;       /* (L, B, T, C) */
    float *ln2_mean;  /* (L, B, T) */
    float *ln2_rstd;  /* (L, B, T) */
    float *fch;       /* (L, B, T, 4C) */
    float *fch_gelu;  /* (L, B, T, 4C) */
    float *res3;      /* (L, B, T, C) residual after the MLP = next layer's input */
    float *lnf;       /* (B, T, C) */
    float *lnf_mean;  /* (B, T) */
    float *lnf_rstd;  /* (B, T) */
    float *logits;    /* (B, T, Vp); dlogits in place after backward */
    float *lse;       /* (B, T) */
    float *losses;    /* (B, T) */
    /* backward temporaries, one layer's worth */
    float *dres;      /* (B, T, C) */
    float *dln;       /* (B, T, C) */
    float *datty;     /* (B, T, C) */
    float *dqkv;      /* (B, T, 3C) */
    float *dfch;      /* (B, T, 4C) d gelu output, then d fc output in place */
    /* the batch's ids and weights, copied to the device at forward */
    int32_t *inputs, *targets; /* (B, T) */
    float *weights;            /* (B, T) */
    int32_t *pos;              /* (B, T) */
    int32_t *run_start;        /* (B, T) */
} acts;

struct tg_model {
    tg_config cfg;
    tg_backend *be;
    float *param_mem; /* device */
    size_t n_params;
    tg_params params; /* device pointers into param_mem */
    float *grad_mem;  /* NULL before alloc_train */
    tg_params grads;
    float *m1, *v2;   /* AdamW moments, NULL until the first update or load */
    float *act_mem;
    acts a;
    int32_t *seg_host; /* (2, B, T) host: positions and run starts of a segmented batch, before upload */
    tg_model_weights tw; /* training handles (read the parameters each call) */
    tg_grad_ready_fn grad_ready; /* called as backward finishes each layer (data parallel) */
    void *grad_ready_user;
    bool have_tw;
    int maxB, maxT;
    tg_dtype dtype;
    /* the last forward, for backward */
    int B, T;
    bool have_targets, have_weights;
    bool segmented;
};

tg_backend *tg_model_backend(tg_model *m) { return m->be; }
float *tg_model_param_device(tg_model *m) { return m->param_mem; }
float *tg_model_grad_device(tg_model *m) { return m->grad_mem; }

void tg_model_set_grad_ready(tg_model *m, tg_grad_ready_fn fn, void *user) {
    m->grad_ready = fn;
    m->grad_ready_user = user;
}
const char *tg_model_backend_name(const tg_model *m) { return m->be->name; }

int tg_model_init(tg_model **out, const tg_config *cfg) {
    return tg_model_init_device(out, cfg, tg_default_device());
}

int tg_model_init_device(tg_model **out, const tg_config *cfg_in, const char *device) {
    *out = NULL;
    tg_config cfg = *cfg_in;
    TG_TRY(tg_config_validate(&cfg));
    tg_model *m = tg_alloc(sizeof *m, "model");
    if (!m) return TG_ERR_RUNTIME;
    memset(m, 0, sizeof *m);
    m->cfg = cfg;
    int rc = tg_backend_new(&m->be, device);
    if (rc != TG_OK) {
        tg_free(m);
        return rc;
    }
    size_t sizes[TG_NUM_PARAM_TENSORS];
    tg_param_sizes(&cfg, sizes);
    for (int i = 0; i < TG_NUM_PARAM_TENSORS; i++) m->n_params += sizes[i];
    m->param_mem = m->be->alloc(m->be, m->n_params * sizeof(float), "model parameters");
    if (!m->param_mem) {
        tg_backend_free(m->be);
        tg_free(m);
        return TG_ERR_RUNTIME;
    }
    tg_params_point(&m->params, &cfg, m->param_mem);
    *out = m;
    return TG_OK;
}

void tg_model_free(tg_model *m) {
    if (!m) return;
    tg_backend *be = m->be;
    if (m->have_tw) tg_model_weights_free(m, &m->tw);
    be->free(be, m->act_mem);
    tg_free(m->seg_host);
    be->free(be, m->m1);
    be->free(be, m->v2);
    be->free(be, m->grad_mem);
    be->free(be, m->param_mem);
    tg_backend_free(be);
    tg_free(m);
}

const tg_config *tg_model_config(const tg_model *m) { return &m->cfg; }
size_t tg_model_num_params(const tg_model *m) { return m->n_params; }

/* ------------------------------------------------------------ host copies */

int tg_model_params_to_host(const tg_model *m, float *host) {
    m->be->to_host(m->be, host, m->param_mem, m->n_params * sizeof(float));
    return TG_OK;
}

int tg_model_params_from_host(tg_model *m, const float *host) {
    m->be->to_device(m->be, m->param_mem, host, m->n_params * sizeof(float));
    return TG_OK;
}

int tg_model_copy_tensor_out(const tg_model *m, int index, float *host) {
    if (index < 0 || index >= TG_NUM_PARAM_TENSORS)
        return tg_error_set(TG_ERR_INPUT, "parameter tensor index %d is out of range (0-%d)", index,
                            TG_NUM_PARAM_TENSORS - 1);
    size_t sizes[TG_NUM_PARAM_TENSORS], off = 0;
    tg_param_sizes(&m->cfg, sizes);
    for (int i = 0; i < index; i++) off += sizes[i];
    m->be->to_host(m->be, host, m->param_mem + off, sizes[index] * sizeof(float));
    return TG_OK;
}

int tg_model_grads_to_host(const tg_model *m, float *host) {
    if (!m->grad_mem) return tg_error_set(TG_ERR_RUNTIME, "tg_model_grads_to_host before tg_model_alloc_train");
    m->be->to_host(m->be, host, m->grad_mem, m->n_params * sizeof(float));
    return TG_OK;
}

int tg_model_logits_to_host(const tg_model *m, size_t row0, size_t n_rows, float *host) {
    if (!m->act_mem) return tg_error_set(TG_ERR_RUNTIME, "tg_model_logits_to_host before tg_model_alloc_train");
    size_t Vp = (size_t)m->cfg.padded_vocab;
    if (row0 + n_rows > (size_t)m->B * m->T)
        return tg_error_set(TG_ERR_INPUT, "logit rows %zu..%zu outside the last batch's %d", row0, row0 + n_rows,
                            m->B * m->T);
    m->be->to_host(m->be, host, m->a.logits + row0 * Vp, n_rows * Vp * sizeof(float));
    return TG_OK;
}

static int alloc_moments(tg_model *m) {
    if (m->m1) return TG_OK;
    m->m1 = m->be->alloc(m->be, m->n_params * sizeof(float), "AdamW first moments");
    m->v2 = m->be->alloc(m->be, m->n_params * sizeof(float), "AdamW second moments");
    if (!m->m1 || !m->v2) {
        m->be->free(m->be, m->m1);
        m->be->free(m->be, m->v2);
        m->m1 = m->v2 = NULL;
        return TG_ERR_RUNTIME;
    }
    return TG_OK;
}

bool tg_model_has_optim(const tg_model *m) { return m->m1 != NULL; }

int tg_model_optim_reset(tg_model *m) {
    if (!m->m1) return alloc_moments(m); /* allocated zeroed */
    m->be->fill(m->be, m->m1, 0.0f, m->n_params);
    m->be->fill(m->be, m->v2, 0.0f, m->n_params);
    return TG_OK;
}

int tg_model_optim_to_host(const tg_model *m, float *m1, float *v2) {
    size_t bytes = m->n_params * sizeof(float);
    if (!m->m1) {
        memset(m1, 0, bytes);
        memset(v2, 0, bytes);
        return TG_OK;
    }
    m->be->to_host(m->be, m1, m->m1, bytes);
    m->be->to_host(m->be, v2, m->v2, bytes);
    return TG_OK;
}

int tg_model_optim_from_host(tg_model *m, const float *m1, const float *v2) {
    TG_TRY(alloc_moments(m));
    size_t bytes = m->n_params * sizeof(float);
    m->be->to_device(m->be, m->m1, m1, bytes);
    m->be->to_device(m->be, m->v2, v2, bytes);
    return TG_OK;
}

/* ------------------------------------------------------------ init */

static void fill_normal(float *x, size_t n, float std, tg_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = std * tg_rng_normal(r);
}

int tg_model_init_weights(tg_model *m, uint64_t seed) {
    const tg_config *c = &m->cfg;
    size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer;
    float *host = tg_alloc(m->n_params * sizeof(float), "initial weights");
    if (!host) return TG_ERR_RUNTIME;
    memset(host, 0, m->n_params * sizeof(float));
    tg_params p;
    tg_params_point(&p, c, host);
    tg_rng r;
    tg_rng_seed(&r, seed);
    /* GPT-2: N(0, 0.02) everywhere, residual projections scaled by 1/sqrt(2L)
     * so the residual stream's variance doesn't grow with depth. The padded
     * vocabulary rows stay zero. */
    float std = 0.02f, proj_std = 0.02f / sqrtf(2.0f * (float)L);
    fill_normal(p.wte, (size_t)c->vocab_size * C, std, &r);
    fill_normal(p.wpe, (size_t)c->n_ctx * C, std, &r);
    fill_normal(p.qkvw, L * C * 3 * C, std, &r);
    fill_normal(p.attprojw, L * C * C, proj_std, &r);
    fill_normal(p.fcw, L * C * 4 * C, std, &r);
    fill_normal(p.fcprojw, L * 4 * C * C, proj_std, &r);
    for (size_t i = 0; i < L * C; i++) p.ln1w[i] = p.ln2w[i] = 1.0f;
    for (size_t i = 0; i < C; i++) p.lnfw[i] = 1.0f;
    tg_model_params_from_host(m, host);
    tg_free(host);
    return TG_OK;
}

/* ------------------------------------------------------------ weight sets */

int tg_model_weights_init(tg_model *m, tg_model_weights *w, tg_dtype dtype, bool inference) {
    const tg_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd;
    memset(w, 0, sizeof *w);
    if (dtype != TG_DTYPE_FP32 && dtype != TG_DTYPE_BF16 && !(dtype == TG_DTYPE_INT8 && inference))
        return tg_error_set(TG_ERR_INPUT, dtype == TG_DTYPE_INT8 ? "int8 weights are for inference only"
                                                                 : "unknown dtype");
    w->qkv = calloc((size_t)L * 4, sizeof *w->qkv);
    if (!w->qkv) return tg_error_set(TG_ERR_RUNTIME, "out of memory (weight handles)");
    w->attproj = w->qkv + L;
    w->fc = w->qkv + 2 * L;
    w->fcproj = w->qkv + 3 * L;
    w->L = L;
    const tg_params *p = &m->params;
    int rc = TG_OK;
#define PREP(h, ptr, k, n, tr)                                                                                   \
    do {                                                                                                         \
        (h) = (tg_weight){.master = (ptr), .K = (k), .N = (n), .transposed = (tr), .dtype = dtype,               \
                          .inference = inference};                                                               \
        if (rc == TG_OK) rc = m->be->weight_prepare(m->be, &(h));                                                \
    } while (0)
    for (int l = 0; l < L; l++) {
        PREP(w->qkv[l], p->qkvw + (size_t)l * C * 3 * C, C, 3 * C, false);
        PREP(w->attproj[l], p->attprojw + (size_t)l * C * C, C, C, false);
        PREP(w->fc[l], p->fcw + (size_t)l * C * 4 * C, C, 4 * C, false);
        PREP(w->fcproj[l], p->fcprojw + (size_t)l * 4 * C * C, 4 * C, C, false);
    }
    PREP(w->lm, p->wte, C, c->padded_vocab, true);
#undef PREP
    if (rc != TG_OK) tg_model_weights_free(m, w);
    return rc;
}

void tg_model_weights_free(tg_model *m, tg_model_weights *w) {
    if (!w->qkv) return;
    for (int i = 0; i < 4 * w->L; i++) m->be->weight_release(m->be, &w->qkv[i]);
    m->be->weight_release(m->be, &w->lm);
    free(w->qkv);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------ training memory */

int tg_model_alloc_train(tg_model *m, int B, int T, tg_dtype dtype) {
    const tg_config *c = &m->cfg;
    tg_backend *be = m->be;
    if (B <= 0) return tg_error_set(TG_ERR_INPUT, "--batch must be positive (got %d)", B);
    if (T <= 0 || T > c->n_ctx)
        return tg_error_set(TG_ERR_INPUT, "--ctx %d is outside 1..%d (the model's context)", T, c->n_ctx);
    if (dtype == TG_DTYPE_INT8)
        return tg_error_set(TG_ERR_INPUT, "--dtype int8 is for inference (sample, chat, serve, bench generate); "
                                          "training and eval run in fp32 or bf16");
    if (dtype != TG_DTYPE_FP32 && dtype != TG_DTYPE_BF16)
        return tg_error_set(TG_ERR_INPUT, "unknown --dtype (fp32 or bf16)");
    if (!m->grad_mem) {
        m->grad_mem = be->alloc(be, m->n_params * sizeof(float), "gradients");
        if (!m->grad_mem) return TG_ERR_RUNTIME;
        tg_params_point(&m->grads, c, m->grad_mem);
    }
    be->free(be, m->act_mem);
    m->act_mem = NULL;
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, NH = (size_t)c->n_head, Vp = (size_t)c->padded_vocab;
    size_t BT = (size_t)B * T;
    struct {
        float **ptr;
        size_t n;
    } plan[] = {
        {&m->a.encoded, BT * C},       {&m->a.ln1, L * BT * C},        {&m->a.ln1_mean, L * BT},
        {&m->a.ln1_rstd, L * BT},      {&m->a.qkv, L * BT * 3 * C},    {&m->a.atty, L * BT * C},
        {&m->a.att, L * BT * NH * T},  {&m->a.res2, L * BT * C},       {&m->a.ln2, L * BT * C},
        {&m->a.ln2_mean, L * BT},      {&m->a.ln2_rstd, L * BT},       {&m->a.fch, L * BT * 4 * C},
        {&m->a.fch_gelu, L * BT * 4 * C}, {&m->a.res3, L * BT * C},    {&m->a.lnf, BT * C},
        {&m->a.lnf_mean, BT},          {&m->a.lnf_rstd, BT},           {&m->a.logits, BT * Vp},
        {&m->a.lse, BT},               {&m->a.losses, BT},             {&m->a.dres, BT * C},
        {&m->a.dln, BT * C},           {&m->a.datty, BT * C},          {&m->a.dqkv, BT * 3 * C},
        {&m->a.dfch, BT * 4 * C},      {(float **)&m->a.inputs, BT},   {(float **)&m->a.targets, BT},
        {&m->a.weights, BT},           {(float **)&m->a.pos, BT},      {(float **)&m->a.run_start, BT},
    };
    size_t n_plan = sizeof plan / sizeof plan[0], total = 0;
    /* each tensor starts on a 64-byte line so threads splitting one never share a line with another */
    for (size_t i = 0; i < n_plan; i++) total += (plan[i].n + 15) & ~(size_t)15;
    m->act_mem = be->alloc(be, total * sizeof(float), "activations");
    if (!m->act_mem) return TG_ERR_RUNTIME;
    tg_free(m->seg_host);
    m->seg_host = tg_alloc(2 * BT * sizeof(int32_t), "segment positions");
    if (!m->seg_host) return TG_ERR_RUNTIME;
    float *p = m->act_mem;
    for (size_t i = 0; i < n_plan; i++) {
        *plan[i].ptr = p;
        p += (plan[i].n + 15) & ~(size_t)15;
    }
    TG_TRY(be->reserve(be, BT, 4 * (int)C, T));
    if (m->have_tw && m->dtype != dtype) {
        tg_model_weights_free(m, &m->tw);
        m->have_tw = false;
    }
    if (!m->have_tw) {
        TG_TRY(tg_model_weights_init(m, &m->tw, dtype, false));
        m->have_tw = true;
    }
    m->maxB = B;
    m->maxT = T;
    m->dtype = dtype;
    m->have_targets = false;
    return TG_OK;
}

void tg_model_zero_grad(tg_model *m) {
    if (m->grad_mem) m->be->fill(m->be, m->grad_mem, 0.0f, m->n_params);
}

/* ------------------------------------------------------------ the forward */

/* What one forward runs over. Batch mode (kv NULL): a (B, T) micro-batch,
 * every layer's activations saved for backward, logits for every row.
 * Rows mode: the N = rows->n rows of a decode step against the KV cache,
 * one layer's buffers reused, logits for out_rows only. */
typedef struct {
    size_t N;
    int B, T;                  /* batch mode; rows mode: B = 1, T = N */
    const int32_t *tok, *pos;  /* (N) device; pos NULL: t within the row */
    const int32_t *run_start;  /* batch mode, segmented */
    tg_kv_cache *kv;           /* rows mode */
    const tg_step_rows *rows;
    const int *out_rows;       /* rows mode: rows that get logits */
    int n_out;
    tg_rows_work *w;
} fwd_args;

/* The buffers layer l reads and writes. */
typedef struct {
    const float *x;
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *res2, *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *res3;
} layer_io;

static layer_io layer_buffers(tg_model *m, const fwd_args *f, int l) {
    layer_io io;
    if (f->kv) { /* one layer's worth, in place: res2 = res3 = x, ln2 = ln1, fch_gelu = fch */
        tg_rows_work *w = f->w;
        io = (layer_io){.x = w->x, .ln1 = w->xn, .qkv = w->qkv, .atty = w->att, .res2 = w->x, .ln2 = w->xn,
                        .fch = w->h, .fch_gelu = w->h, .res3 = w->x};
        return io;
    }
    acts *a = &m->a;
    size_t BT = f->N, C = (size_t)m->cfg.n_embd, NH = (size_t)m->cfg.n_head, lc = (size_t)l * BT * C;
    io = (layer_io){.x = l > 0 ? a->res3 + lc - BT * C : a->encoded,
                    .ln1 = a->ln1 + lc, .ln1_mean = a->ln1_mean + l * BT, .ln1_rstd = a->ln1_rstd + l * BT,
                    .qkv = a->qkv + 3 * lc, .atty = a->atty + lc, .att = a->att + (size_t)l * BT * NH * f->T,
                    .res2 = a->res2 + lc, .ln2 = a->ln2 + lc, .ln2_mean = a->ln2_mean + l * BT,
                    .ln2_rstd = a->ln2_rstd + l * BT, .fch = a->fch + 4 * lc, .fch_gelu = a->fch_gelu + 4 * lc,
                    .res3 = a->res3 + lc};
    return io;
}

/* The model: embedding, L pre-LayerNorm blocks, final LayerNorm, tied head.
 * PyTorch (HF GPT2LMHeadModel): x = wte(idx) + wpe(pos); for each block
 * x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)); logits = ln_f(x) @ wte^T. */
static void forward(tg_model *m, const tg_model_weights *W, const fwd_args *f) {
    tg_backend *be = m->be;
    const tg_config *c = &m->cfg;
    const tg_params *p = &m->params;
    const int L = c->n_layer, C = c->n_embd, NH = c->n_head;
    const size_t N = f->N;
    const float eps = c->ln_eps;

    layer_io first = layer_buffers(m, f, 0);
    be->encoder_forward(be, (float *)first.x, f->tok, f->pos, p->wte, p->wpe, f->B, f->T, C);
    const float *x = first.x;
    for (int l = 0; l < L; l++) {
        layer_io io = layer_buffers(m, f, l);
        be->layernorm_forward(be, io.ln1, io.ln1_mean, io.ln1_rstd, io.x, p->ln1w + l * C, p->ln1b + l * C, N, C,
                              eps);
        be->matmul_forward(be, io.qkv, io.ln1, &W->qkv[l], p->qkvb + (size_t)l * 3 * C, N);
        if (f->kv) {
            be->kv_store(be, f->kv, l, io.qkv, f->rows);
            be->attention_kv(be, io.atty, io.qkv, f->kv, l, f->rows);
        } else {
            be->attention_forward(be, io.atty, io.att, io.qkv, f->run_start, f->B, f->T, C, NH);
        }
        be->matmul_forward_residual(be, io.res2, io.x, io.atty, &W->attproj[l], p->attprojb + l * C, N);
        be->layernorm_forward(be, io.ln2, io.ln2_mean, io.ln2_rstd, io.res2, p->ln2w + l * C, p->ln2b + l * C, N,
                              C, eps);
        be->matmul_forward(be, io.fch, io.ln2, &W->fc[l], p->fcb + (size_t)l * 4 * C, N);
        be->gelu_forward(be, io.fch_gelu, io.fch, N * 4 * C);
        be->matmul_forward_residual(be, io.res3, io.res2, io.fch_gelu, &W->fcproj[l], p->fcprojb + l * C, N);
        x = io.res3;
    }
    if (f->kv) { /* only the rows that are sampled from */
        tg_rows_work *w = f->w;
        for (int i = 0; i < f->n_out; i++)
            be->copy(be, w->lx + (size_t)i * C, x + (size_t)f->out_rows[i] * C, (size_t)C * sizeof(float));
        be->layernorm_forward(be, w->lx, NULL, NULL, w->lx, p->lnfw, p->lnfb, (size_t)f->n_out, C, eps);
        be->matmul_forward(be, w->logits, w->lx, &W->lm, NULL, (size_t)f->n_out);
        be->mask_padded_vocab(be, w->logits, (size_t)f->n_out, c->vocab_size, c->padded_vocab);
    } else {
        acts *a = &m->a;
        be->layernorm_forward(be, a->lnf, a->lnf_mean, a->lnf_rstd, x, p->lnfw, p->lnfb, N, C, eps);
        be->matmul_forward(be, a->logits, a->lnf, &W->lm, NULL, N);
    }
}

/* Positions and run starts of each row: with segments, position restarts at
 * every run of equal ids and attention is confined to the run. Host arrays. */
static void compute_positions(const tg_batch *bt, int32_t *pos, int32_t *rs) {
    int B = bt->B, T = bt->T;
    for (int b = 0; b < B; b++) {
        const int32_t *seg = bt->segments + (size_t)b * T;
        int start = 0;
        for (int t = 0; t < T; t++) {
            if (t > 0 && seg[t] != seg[t - 1]) start = t;
            rs[(size_t)b * T + t] = start;
            pos[(size_t)b * T + t] = t - start;
        }
    }
}

int tg_model_forward(tg_model *m, const tg_batch *bt, double *loss_sum, double *count) {
    const tg_config *c = &m->cfg;
    tg_backend *be = m->be;
    if (!m->act_mem) return tg_error_set(TG_ERR_RUNTIME, "tg_model_forward before tg_model_alloc_train");
    int B = bt->B, T = bt->T;
    if (B <= 0 || B > m->maxB || T <= 0 || T > m->maxT)
        return tg_error_set(TG_ERR_INPUT, "batch (B=%d, T=%d) outside the allocated (B=%d, T=%d)", B, T, m->maxB,
                            m->maxT);
    int V = c->vocab_size, Vp = c->padded_vocab;
    size_t BT = (size_t)B * T;
    for (size_t i = 0; i < BT; i++) {
        if (bt->inputs[i] < 0 || bt->inputs[i] >= V)
            return tg_error_set(TG_ERR_INPUT, "token id %d at position %zu outside the vocabulary of %d",
                                bt->inputs[i], i, V);
        if (bt->targets && (bt->targets[i] < 0 || bt->targets[i] >= V))
            return tg_error_set(TG_ERR_INPUT, "target id %d at position %zu outside the vocabulary of %d",
                                bt->targets[i], i, V);
    }
    acts *a = &m->a;
    be->to_device(be, a->inputs, bt->inputs, BT * sizeof(int32_t));
    if (bt->targets) be->to_device(be, a->targets, bt->targets, BT * sizeof(int32_t));
    if (bt->weights) be->to_device(be, a->weights, bt->weights, BT * sizeof(float));
    m->segmented = bt->segments != NULL;
    if (m->segmented) {
        /* computed on the host (small), then copied: a backend need not know about segments */
        int32_t *host = m->seg_host;
        compute_positions(bt, host, host + BT);
        be->to_device(be, a->pos, host, BT * sizeof(int32_t));
        be->to_device(be, a->run_start, host + BT, BT * sizeof(int32_t));
    }
    fwd_args f = {.N = BT, .B = B, .T = T, .tok = a->inputs, .pos = m->segmented ? a->pos : NULL,
                  .run_start = m->segmented ? a->run_start : NULL};
    forward(m, &m->tw, &f);

    m->B = B;
    m->T = T;
    m->have_targets = bt->targets != NULL;
    m->have_weights = bt->weights != NULL;
    if (bt->targets) {
        double wsum = 0.0;
        double s = be->crossentropy_forward(be, a->losses, a->lse, a->logits, a->targets,
                                            m->have_weights ? a->weights : NULL, BT, V, Vp, &wsum);
        if (loss_sum) *loss_sum = s;
        if (count) *count = wsum;
    } else {
        be->mask_padded_vocab(be, a->logits, BT, V, Vp); /* padded rows are never predicted */
        if (loss_sum) *loss_sum = 0.0;
        if (count) *count = 0.0;
    }
    return tg_backend_status(be); /* a device op's failure surfaces here (docs/cuda.md) */
}

int tg_model_backward(tg_model *m, float scale) {
    if (!m->have_targets) return tg_error_set(TG_ERR_RUNTIME, "tg_model_backward without a forward with targets");
    tg_backend *be = m->be;
    const tg_config *c = &m->cfg;
    int B = m->B, T = m->T;
    int L = c->n_layer, C = c->n_embd, NH = c->n_head, V = c->vocab_size, Vp = c->padded_vocab;
    size_t BT = (size_t)B * T;
    const tg_params *p = &m->params;
    tg_params *g = &m->grads;
    acts *a = &m->a;
    const tg_model_weights *W = &m->tw;
    const int32_t *pos = m->segmented ? a->pos : NULL;
    const int32_t *rs = m->segmented ? a->run_start : NULL;
    m->have_targets = false; /* logits become dlogits: a second backward would be wrong */
    fwd_args f = {.N = BT, .B = B, .T = T};

    be->crossentropy_backward_inplace(be, a->logits, a->lse, a->targets, m->have_weights ? a->weights : NULL, scale,
                                      BT, V, Vp);
    float *dlogits = a->logits;
    be->matmul_backward_set(be, a->dln, g->wte, NULL, dlogits, a->lnf, &W->lm, BT);
    const float *xL = L > 0 ? a->res3 + (size_t)(L - 1) * BT * C : a->encoded;
    be->fill(be, a->dres, 0.0f, BT * C);
    be->layernorm_backward(be, a->dres, g->lnfw, g->lnfb, a->dln, xL, p->lnfw, a->lnf_mean, a->lnf_rstd, BT, C);

    for (int l = L - 1; l >= 0; l--) {
        layer_io io = layer_buffers(m, &f, l);
        /* MLP: res3 = res2 + fcproj(gelu(fc(ln2(res2)))); dres is d res3 = d res2 (identity part).
         * The _set ops overwrite their input gradient, so nothing is zeroed first. */
        be->matmul_backward_set(be, a->dfch, g->fcprojw + (size_t)l * 4 * C * C, g->fcprojb + l * C, a->dres,
                                io.fch_gelu, &W->fcproj[l], BT);
        be->gelu_backward_inplace(be, a->dfch, io.fch, BT * 4 * C);
        be->matmul_backward_set(be, a->dln, g->fcw + (size_t)l * C * 4 * C, g->fcb + l * 4 * C, a->dfch, io.ln2,
                                &W->fc[l], BT);
        be->layernorm_backward(be, a->dres, g->ln2w + l * C, g->ln2b + l * C, a->dln, io.res2, p->ln2w + l * C,
                               io.ln2_mean, io.ln2_rstd, BT, C);
        /* attention: res2 = x + attproj(attn(qkv(ln1(x)))) */
        be->matmul_backward_set(be, a->datty, g->attprojw + (size_t)l * C * C, g->attprojb + l * C, a->dres,
                                io.atty, &W->attproj[l], BT);
        be->fill(be, a->dqkv, 0.0f, BT * 3 * C);
        be->attention_backward(be, a->dqkv, a->datty, io.qkv, io.att, rs, B, T, C, NH);
        be->matmul_backward_set(be, a->dln, g->qkvw + (size_t)l * C * 3 * C, g->qkvb + l * 3 * C, a->dqkv, io.ln1,
                                &W->qkv[l], BT);
        be->layernorm_backward(be, a->dres, g->ln1w + l * C, g->ln1b + l * C, a->dln, io.x, p->ln1w + l * C,
                               io.ln1_mean, io.ln1_rstd, BT, C);
        if (m->grad_ready) m->grad_ready(m->grad_ready_user, l); /* layer l's 12 tensors are final */
    }
    be->encoder_backward(be, g->wte, g->wpe, a->dres, a->inputs, pos, B, T, C);
    if (m->grad_ready) m->grad_ready(m->grad_ready_user, -1); /* wte, wpe, ln_f */
    return tg_backend_status(be);
}

/* ------------------------------------------------------------ optimizer */

float tg_clip_grad_norm(tg_model *m, float clip) {
    if (!m->grad_mem) return 0.0f;
    tg_backend *be = m->be;
    float norm = (float)sqrt(be->sum_squares(be, m->grad_mem, m->n_params));
    if (clip > 0.0f) {
        float coef = clip / (norm + 1e-6f);
        if (coef < 1.0f) be->scale(be, m->grad_mem, coef, m->n_params);
    }
    return norm;
}

int tg_adamw_update(tg_model *m, int t, float lr, const tg_optim_params *p) {
    if (!m->grad_mem) return tg_error_set(TG_ERR_RUNTIME, "tg_adamw_update before tg_model_alloc_train");
    TG_TRY(alloc_moments(m));
    return tg_adamw_update_range(m, t, lr, p, 0, m->n_params, m->grad_mem, m->m1, m->v2);
}

/* AdamW over the flat parameter range [lo, hi) only, with that range's
 * gradients and moments in separate compact buffers (device memory of
 * hi - lo floats each): the update of one rank's shard under ZeRO-1
 * (src/train/dist.c). The arithmetic per element is tg_adamw_update's, so
 * the shards of all ranks together make exactly the unsharded update. */
int tg_adamw_update_range(tg_model *m, int t, float lr, const tg_optim_params *p, size_t lo, size_t hi,
                          const float *g, float *m1, float *v2) {
    if (lo > hi || hi > m->n_params) return tg_error_set(TG_ERR_RUNTIME, "tg_adamw_update_range: bad range");
    tg_backend *be = m->be;
    size_t sizes[TG_NUM_PARAM_TENSORS];
    tg_param_sizes(&m->cfg, sizes);
    /* PyTorch computes the corrections in Python floats (double). */
    double bc1 = 1.0 - pow((double)p->beta1, t);
    float bc2_sqrt = (float)sqrt(1.0 - pow((double)p->beta2, t));
    float step_size = (float)(lr / bc1);
    size_t off = 0;
    for (int k = 0; k < TG_NUM_PARAM_TENSORS; k++) {
        size_t a = off > lo ? off : lo, b = off + sizes[k] < hi ? off + sizes[k] : hi;
        off += sizes[k];
        if (a >= b) continue;
        float decay = tg_param_decays(k) ? 1.0f - lr * p->weight_decay : 1.0f;
        be->adamw_update(be, m->param_mem + a, g + (a - lo), m1 + (a - lo), v2 + (a - lo), b - a, decay, step_size,
                         p->beta1, p->beta2, bc2_sqrt, p->eps);
    }
    return tg_backend_status(be);
}

/* ------------------------------------------------------------ generation */

int tg_model_rows_init(tg_model *m, tg_rows_work *w, int max_rows, int max_out, int max_ctx) {
    tg_backend *be = m->be;
    const tg_config *c = &m->cfg;
    size_t R = (size_t)max_rows, C = (size_t)c->n_embd;
    memset(w, 0, sizeof *w);
    w->max_rows = max_rows;
    w->max_out = max_out;
    w->x = be->alloc(be, R * C * sizeof(float), "step activations");
    w->xn = be->alloc(be, R * C * sizeof(float), "step activations");
    w->qkv = be->alloc(be, R * 3 * C * sizeof(float), "step activations");
    w->att = be->alloc(be, R * C * sizeof(float), "step activations");
    w->h = be->alloc(be, R * 4 * C * sizeof(float), "step activations");
    w->lx = be->alloc(be, (size_t)max_out * C * sizeof(float), "step activations");
    w->logits = be->alloc(be, (size_t)max_out * c->padded_vocab * sizeof(float), "logits");
    w->tok = be->alloc(be, R * sizeof(int32_t), "step rows");
    w->pos = be->alloc(be, R * sizeof(int32_t), "step rows");
    if (!w->x || !w->xn || !w->qkv || !w->att || !w->h || !w->lx || !w->logits || !w->tok || !w->pos) {
        tg_model_rows_free(m, w);
        return TG_ERR_RUNTIME;
    }
    return be->reserve(be, R, 4 * (int)C, max_ctx);
}

void tg_model_rows_free(tg_model *m, tg_rows_work *w) {
    tg_backend *be = m->be;
    void *bufs[] = {w->x, w->xn, w->qkv, w->att, w->h, w->lx, w->logits, w->tok, w->pos};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->free(be, bufs[i]);
    memset(w, 0, sizeof *w);
}

int tg_model_kv_init(tg_model *m, tg_kv_cache *kv, int S, int max_ctx) {
    const tg_config *c = &m->cfg;
    *kv = (tg_kv_cache){.S = S, .L = c->n_layer, .NH = c->n_head, .HS = c->n_embd / c->n_head, .max_ctx = max_ctx};
    size_t n = (size_t)S * c->n_layer * max_ctx * c->n_embd;
    kv->k = m->be->alloc(m->be, n * sizeof(float), "KV cache (keys)");
    kv->v = m->be->alloc(m->be, n * sizeof(float), "KV cache (values)");
    if (!kv->k || !kv->v) {
        tg_model_kv_free(m, kv);
        return TG_ERR_RUNTIME;
    }
    return TG_OK;
}

void tg_model_kv_free(tg_model *m, tg_kv_cache *kv) {
    m->be->free(m->be, kv->k);
    m->be->free(m->be, kv->v);
    kv->k = kv->v = NULL;
}

int tg_model_forward_rows(tg_model *m, const tg_model_weights *W, tg_kv_cache *kv, const tg_step_rows *rows,
                          const int *out_rows, int n_out, tg_rows_work *w) {
    if (rows->n <= 0) return TG_OK;
    if (rows->n > w->max_rows || n_out > w->max_out)
        return tg_error_set(TG_ERR_RUNTIME, "step of %d rows (%d sampled) over the reserved %d (%d)", rows->n, n_out,
                            w->max_rows, w->max_out);
    /* the embedding reads ids and positions on the device; kv_store and
     * attention_kv take the (small) row description from the host */
    m->be->to_device(m->be, w->tok, rows->tok, (size_t)rows->n * sizeof(int32_t));
    m->be->to_device(m->be, w->pos, rows->pos, (size_t)rows->n * sizeof(int32_t));
    fwd_args f = {.N = (size_t)rows->n, .B = 1, .T = rows->n, .tok = w->tok, .pos = w->pos, .kv = kv,
                  .rows = rows, .out_rows = out_rows, .n_out = n_out, .w = w};
    forward(m, W, &f);
    return tg_backend_status(m->be);
}
