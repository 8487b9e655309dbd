/*
 * model.c — the GPT-2 model on the CPU: parameters (one buffer, HF layout),
 * gradients, activations, GPT-2 initialisation, and the forward and backward
 * passes built from the kernels in src/kernels/cpu.
 *
 * Memory: tg_model_init allocates the parameters; tg_model_alloc_train
 * allocates gradients, every activation of a (B, T) micro-batch and the
 * kernels' scratch, once. Forward and backward allocate nothing.
 *
 * The backward keeps one residual-stream gradient buffer (dres) that flows
 * down through the layers: a residual add's backward is the identity, so
 * each sub-block's input gradient is simply accumulated into it.
 */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/core.h"
#include "kernels/cpu/kernels.h"

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
    float *att_scratch;
    int32_t *pos;       /* (B, T) */
    int32_t *run_start; /* (B, T) */
} acts;

struct tg_model {
    tg_config cfg;
    float *param_mem;
    size_t n_params;
    tg_params params;
    float *grad_mem; /* NULL before alloc_train */
    tg_params grads;
    float *act_mem;
    size_t n_act;
    acts a;
    int maxB, maxT;
    int n_threads; /* attention scratch is per thread, sized at alloc time */
    tg_dtype dtype;
    /* the last forward, for backward */
    int B, T;
    bool have_targets;
    bool segmented;
    const int32_t *inputs, *targets;
    const float *weights;
};

int tg_model_init(tg_model **out, const tg_config *cfg_in) {
    *out = NULL;
    tg_config cfg = *cfg_in;
    TG_TRY(tg_config_validate(&cfg));
    tg_model *m = tg_alloc(sizeof *m, "model");
    if (!m) return TG_ERR_RUNTIME;
    m->cfg = cfg;
    size_t sizes[TG_NUM_PARAM_TENSORS];
    tg_param_sizes(&cfg, sizes);
    for (int i = 0; i < TG_NUM_PARAM_TENSORS; i++) m->n_params += sizes[i];
    m->param_mem = tg_alloc(m->n_params * sizeof(float), "model parameters");
    if (!m->param_mem) {
        tg_free(m);
        return TG_ERR_RUNTIME;
    }
    tg_params_point(&m->params, &cfg, m->param_mem);
    *out = m;
    return TG_OK;
}

void tg_model_free(tg_model *m) {
    if (!m) return;
    tg_free(m->act_mem);
    tg_free(m->grad_mem);
    tg_free(m->param_mem);
    tg_free(m);
}

const tg_config *tg_model_config(const tg_model *m) { return &m->cfg; }
tg_params *tg_model_params(tg_model *m) { return &m->params; }
tg_params *tg_model_grads(tg_model *m) { return m->grad_mem ? &m->grads : NULL; }

float *tg_model_param_memory(tg_model *m, size_t *count) {
    if (count) *count = m->n_params;
    return m->param_mem;
}

float *tg_model_grad_memory(tg_model *m, size_t *count) {
    if (count) *count = m->grad_mem ? m->n_params : 0;
    return m->grad_mem;
}

static void fill_normal(float *x, size_t n, float std, tg_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = std * tg_rng_normal(r);
}

void tg_model_init_weights(tg_model *m, uint64_t seed) {
    const tg_config *c = &m->cfg;
    size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer;
    tg_params *p = &m->params;
    tg_rng r;
    tg_rng_seed(&r, seed);
    memset(m->param_mem, 0, m->n_params * sizeof(float));
    /* GPT-2: N(0, 0.02) everywhere, residual projections scaled by 1/sqrt(2L)
     * so the residual stream's variance doesn't grow with depth. The padded
     * vocabulary rows stay zero. */
    float std = 0.02f, proj_std = 0.02f / sqrtf(2.0f * (float)L);
    fill_normal(p->wte, (size_t)c->vocab_size * C, std, &r);
    fill_normal(p->wpe, (size_t)c->n_ctx * C, std, &r);
    fill_normal(p->qkvw, L * C * 3 * C, std, &r);
    fill_normal(p->attprojw, L * C * C, proj_std, &r);
    fill_normal(p->fcw, L * C * 4 * C, std, &r);
    fill_normal(p->fcprojw, L * 4 * C * C, proj_std, &r);
    for (size_t i = 0; i < L * C; i++) p->ln1w[i] = p->ln2w[i] = 1.0f;
    for (size_t i = 0; i < C; i++) p->lnfw[i] = 1.0f;
}

int tg_model_alloc_train(tg_model *m, int B, int T, tg_dtype dtype) {
    const tg_config *c = &m->cfg;
    if (B <= 0) return tg_error_set(TG_ERR_INPUT, "--batch must be positive (got %d)", B);
    if (T <= 0 || T > c->n_ctx)
        return tg_error_set(TG_ERR_INPUT, "--ctx %d is outside 1..%d (the model's context)", T, c->n_ctx);
    if (dtype != TG_DTYPE_FP32 && dtype != TG_DTYPE_BF16)
        return tg_error_set(TG_ERR_INPUT, "unknown --dtype (fp32 or bf16)");
    if (!m->grad_mem) {
        m->grad_mem = tg_alloc(m->n_params * sizeof(float), "gradients");
        if (!m->grad_mem) return TG_ERR_RUNTIME;
        tg_params_point(&m->grads, c, m->grad_mem);
    }
    tg_free(m->act_mem);
    m->act_mem = NULL;
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, NH = (size_t)c->n_head, Vp = (size_t)c->padded_vocab;
    size_t BT = (size_t)B * T;
    int nthreads = tg_num_threads();
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
        {&m->a.dfch, BT * 4 * C},
        {&m->a.att_scratch, tg_attention_scratch_floats(T, nthreads)},
        {(float **)&m->a.pos, BT},     {(float **)&m->a.run_start, BT},
    };
    size_t n_plan = sizeof plan / sizeof plan[0], total = 0;
    /* each tensor starts on a 64-byte line so threads splitting one never share a line with another */
    for (size_t i = 0; i < n_plan; i++) total += (plan[i].n + 15) & ~(size_t)15;
    m->act_mem = tg_alloc(total * sizeof(float), "activations");
    if (!m->act_mem) return TG_ERR_RUNTIME;
    m->n_act = total;
    float *p = m->act_mem;
    for (size_t i = 0; i < n_plan; i++) {
        *plan[i].ptr = p;
        p += (plan[i].n + 15) & ~(size_t)15;
    }
    m->maxB = B;
    m->maxT = T;
    m->n_threads = nthreads;
    m->dtype = dtype;
    m->have_targets = false;
    return TG_OK;
}

const float *tg_model_logits(const tg_model *m) { return m->act_mem ? m->a.logits : NULL; }

void tg_model_zero_grad(tg_model *m) {
    if (m->grad_mem) memset(m->grad_mem, 0, m->n_params * sizeof(float));
}

/* Positions and run starts of each row: with segments, position restarts at
 * every run of equal ids and attention is confined to the run. */
static void compute_positions(tg_model *m, const tg_batch *bt) {
    int B = bt->B, T = bt->T;
    for (int b = 0; b < B; b++) {
        const int32_t *seg = bt->segments + (size_t)b * T;
        int32_t *pos = m->a.pos + (size_t)b * T, *rs = m->a.run_start + (size_t)b * T;
        int start = 0;
        for (int t = 0; t < T; t++) {
            if (t > 0 && seg[t] != seg[t - 1]) start = t;
            rs[t] = start;
            pos[t] = t - start;
        }
    }
}

int tg_model_forward(tg_model *m, const tg_batch *bt, double *loss_sum, double *count) {
    const tg_config *c = &m->cfg;
    if (!m->act_mem) return tg_error_set(TG_ERR_RUNTIME, "tg_model_forward before tg_model_alloc_train");
    int B = bt->B, T = bt->T;
    if (B <= 0 || B > m->maxB || T <= 0 || T > m->maxT)
        return tg_error_set(TG_ERR_INPUT, "batch (B=%d, T=%d) outside the allocated (B=%d, T=%d)", B, T, m->maxB,
                            m->maxT);
    int L = c->n_layer, C = c->n_embd, NH = c->n_head, V = c->vocab_size, Vp = c->padded_vocab;
    size_t BT = (size_t)B * T;
    for (size_t i = 0; i < BT; i++) {
        if (bt->inputs[i] < 0 || bt->inputs[i] >= V)
            return tg_error_set(TG_ERR_INPUT, "token id %d at position %zu outside the vocabulary of %d",
                                bt->inputs[i], i, V);
        if (bt->targets && (bt->targets[i] < 0 || bt->targets[i] >= V))
            return tg_error_set(TG_ERR_INPUT, "target id %d at position %zu outside the vocabulary of %d",
                                bt->targets[i], i, V);
    }
    m->segmented = bt->segments != NULL;
    if (m->segmented) compute_positions(m, bt);
    const int32_t *pos = m->segmented ? m->a.pos : NULL;
    const int32_t *rs = m->segmented ? m->a.run_start : NULL;
    const tg_params *p = &m->params;
    acts *a = &m->a;
    bool bf16 = m->dtype == TG_DTYPE_BF16;

    tg_encoder_forward(a->encoded, bt->inputs, pos, p->wte, p->wpe, B, T, C);
    const float *x = a->encoded;
    for (int l = 0; l < L; l++) {
        size_t lc = (size_t)l * BT * C;
        float *ln1 = a->ln1 + lc, *qkv = a->qkv + 3 * lc, *atty = a->atty + lc, *res2 = a->res2 + lc;
        float *ln2 = a->ln2 + lc, *fch = a->fch + 4 * lc, *fchg = a->fch_gelu + 4 * lc, *res3 = a->res3 + lc;
        float *att = a->att + (size_t)l * BT * NH * T;
        tg_layernorm_forward(ln1, a->ln1_mean + l * BT, a->ln1_rstd + l * BT, x, p->ln1w + l * C, p->ln1b + l * C,
                             BT, C, c->ln_eps);
        tg_matmul_forward(qkv, ln1, p->qkvw + (size_t)l * C * 3 * C, p->qkvb + l * 3 * C, BT, C, 3 * C, bf16);
        tg_attention_forward(atty, att, qkv, rs, B, T, C, NH);
        /* res2 = x + atty @ W + b: the residual add fused into the GEMM (beta 1) */
        tg_matmul_forward_residual(res2, x, atty, p->attprojw + (size_t)l * C * C, p->attprojb + l * C, BT, C, C,
                                   bf16);
        tg_layernorm_forward(ln2, a->ln2_mean + l * BT, a->ln2_rstd + l * BT, res2, p->ln2w + l * C,
                             p->ln2b + l * C, BT, C, c->ln_eps);
        tg_matmul_forward(fch, ln2, p->fcw + (size_t)l * C * 4 * C, p->fcb + l * 4 * C, BT, C, 4 * C, bf16);
        tg_gelu_forward(fchg, fch, BT * 4 * C);
        tg_matmul_forward_residual(res3, res2, fchg, p->fcprojw + (size_t)l * 4 * C * C, p->fcprojb + l * C, BT,
                                   4 * C, C, bf16);
        x = res3;
    }
    tg_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, x, p->lnfw, p->lnfb, BT, C, c->ln_eps);
    tg_matmul_forward_nt(a->logits, a->lnf, p->wte, BT, C, Vp, bf16);

    m->B = B;
    m->T = T;
    m->inputs = bt->inputs;
    m->targets = bt->targets;
    m->weights = bt->weights;
    m->have_targets = bt->targets != NULL;
    if (bt->targets) {
        double wsum = 0.0;
        double s = tg_crossentropy_forward(a->losses, a->lse, a->logits, bt->targets, bt->weights, BT, V, Vp, &wsum);
        if (loss_sum) *loss_sum = s;
        if (count) *count = wsum;
    } else {
        /* padded rows are never predicted */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < BT; i++)
            for (int v = V; v < Vp; v++) a->logits[i * Vp + v] = -INFINITY;
        if (loss_sum) *loss_sum = 0.0;
        if (count) *count = 0.0;
    }
    return TG_OK;
}

int tg_model_backward(tg_model *m, float scale) {
    if (!m->have_targets) return tg_error_set(TG_ERR_RUNTIME, "tg_model_backward without a forward with targets");
    if (tg_num_threads() > m->n_threads)
        return tg_error_set(TG_ERR_RUNTIME, "thread count raised to %d after tg_model_alloc_train (%d): set threads first",
                            tg_num_threads(), m->n_threads);
    const tg_config *c = &m->cfg;
    int B = m->B, T = m->T;
    int L = c->n_layer, C = c->n_embd, NH = c->n_head, V = c->vocab_size, Vp = c->padded_vocab;
    size_t BT = (size_t)B * T;
    const tg_params *p = &m->params;
    tg_params *g = &m->grads;
    acts *a = &m->a;
    const int32_t *pos = m->segmented ? a->pos : NULL;
    const int32_t *rs = m->segmented ? a->run_start : NULL;
    bool bf16 = m->dtype == TG_DTYPE_BF16;
    m->have_targets = false; /* logits become dlogits: a second backward would be wrong */

    tg_crossentropy_backward_inplace(a->logits, a->lse, m->targets, m->weights, scale, BT, V, Vp);
    float *dlogits = a->logits;
    memset(a->dln, 0, BT * C * sizeof(float));
    tg_matmul_backward_nt(a->dln, g->wte, dlogits, a->lnf, p->wte, BT, C, Vp, bf16);
    const float *xL = L > 0 ? a->res3 + (size_t)(L - 1) * BT * C : a->encoded;
    memset(a->dres, 0, BT * C * sizeof(float));
    tg_layernorm_backward(a->dres, g->lnfw, g->lnfb, a->dln, xL, p->lnfw, a->lnf_mean, a->lnf_rstd, BT, C);

    for (int l = L - 1; l >= 0; l--) {
        size_t lc = (size_t)l * BT * C;
        const float *x = l > 0 ? a->res3 + (size_t)(l - 1) * BT * C : a->encoded;
        float *ln1 = a->ln1 + lc, *qkv = a->qkv + 3 * lc, *atty = a->atty + lc, *res2 = a->res2 + lc;
        float *ln2 = a->ln2 + lc, *fch = a->fch + 4 * lc, *fchg = a->fch_gelu + 4 * lc;
        float *att = a->att + (size_t)l * BT * NH * T;
        /* MLP: res3 = res2 + fcproj(gelu(fc(ln2(res2)))); dres is d res3 = d res2 (identity part).
         * The _set GEMMs overwrite their input gradient, so nothing is zeroed first. */
        tg_matmul_backward_set(a->dfch, g->fcprojw + (size_t)l * 4 * C * C, g->fcprojb + l * C, a->dres, fchg,
                               p->fcprojw + (size_t)l * 4 * C * C, BT, 4 * C, C, bf16);
        tg_gelu_backward_inplace(a->dfch, fch, BT * 4 * C);
        tg_matmul_backward_set(a->dln, g->fcw + (size_t)l * C * 4 * C, g->fcb + l * 4 * C, a->dfch, ln2,
                               p->fcw + (size_t)l * C * 4 * C, BT, C, 4 * C, bf16);
        tg_layernorm_backward(a->dres, g->ln2w + l * C, g->ln2b + l * C, a->dln, res2, p->ln2w + l * C,
                              a->ln2_mean + l * BT, a->ln2_rstd + l * BT, BT, C);
        /* attention: res2 = x + attproj(attn(qkv(ln1(x)))) */
        tg_matmul_backward_set(a->datty, g->attprojw + (size_t)l * C * C, g->attprojb + l * C, a->dres, atty,
                               p->attprojw + (size_t)l * C * C, BT, C, C, bf16);
        memset(a->dqkv, 0, BT * 3 * C * sizeof(float));
        tg_attention_backward(a->dqkv, a->att_scratch, a->datty, qkv, att, rs, B, T, C, NH);
        tg_matmul_backward_set(a->dln, g->qkvw + (size_t)l * C * 3 * C, g->qkvb + l * 3 * C, a->dqkv, ln1,
                               p->qkvw + (size_t)l * C * 3 * C, BT, C, 3 * C, bf16);
        tg_layernorm_backward(a->dres, g->ln1w + l * C, g->ln1b + l * C, a->dln, x, p->ln1w + l * C,
                              a->ln1_mean + l * BT, a->ln1_rstd + l * BT, BT, C);
    }
    tg_encoder_backward(g->wte, g->wpe, a->dres, m->inputs, pos, B, T, C);
    return TG_OK;
}
