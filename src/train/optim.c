/*
 * optim.c — the optimizer of docs/architecture.md "Training contract":
 * warm-up + cosine learning-rate schedule, global-norm gradient clipping with
 * torch.nn.utils.clip_grad_norm_ semantics, and AdamW with
 * torch.optim.AdamW's arithmetic (single-tensor path of PyTorch 1.13: decay
 * first, then the moments, bias-corrected step). Weight decay applies only to
 * 2-D weights and embeddings (tg_param_decays). Elementwise loops are
 * threaded with OpenMP; the norm is summed in double per thread and combined
 * in a fixed order, so it is deterministic for a given thread count.
 */
#include <math.h>

#include "core/core.h"

/* Built with -fno-math-errno (CMakeLists.txt): sqrtf of a second moment is
 * never negative, and errno handling would keep the AdamW loop scalar. */

tg_optim_params tg_optim_default_params(void) {
    tg_optim_params p = {
        .lr = 6e-4f,
        .min_lr_frac = 0.1f,
        .warmup = 0,
        .total_steps = 0,
        .beta1 = 0.9f,
        .beta2 = 0.95f,
        .eps = 1e-8f,
        .weight_decay = 0.1f,
        .grad_clip = 1.0f,
    };
    return p;
}

float tg_lr_at(const tg_optim_params *p, int step) {
    if (step < p->warmup) return p->lr * (float)(step + 1) / (float)p->warmup;
    double lo = (double)p->lr * p->min_lr_frac;
    int span = p->total_steps - p->warmup;
    if (span <= 0) return p->lr; /* no decay phase (total unknown or all warm-up) */
    double frac = (double)(step - p->warmup) / span;
    if (frac > 1.0) frac = 1.0;
    return (float)(lo + 0.5 * (1.0 + cos(M_PI * frac)) * ((double)p->lr - lo));
}

float tg_clip_grad_norm(tg_model *m, float clip) {
    size_t n;
    float *g = tg_model_grad_memory(m, &n);
    if (!g) return 0.0f;
    double ss = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : ss)
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    float norm = (float)sqrt(ss);
    if (clip > 0.0f) {
        float coef = clip / (norm + 1e-6f);
        if (coef < 1.0f) {
#pragma omp parallel for simd schedule(static)
            for (size_t i = 0; i < n; i++) g[i] *= coef;
        }
    }
    return norm;
}

void tg_adamw_update(tg_model *m, float *m1, float *v2, int t, float lr, const tg_optim_params *p) {
    const tg_config *cfg = tg_model_config(m);
    size_t n;
    float *w = tg_model_param_memory(m, &n);
    float *g = tg_model_grad_memory(m, NULL);
    size_t sizes[TG_NUM_PARAM_TENSORS];
    tg_param_sizes(cfg, sizes);
    /* PyTorch computes the corrections in Python floats (double). */
    double bc1 = 1.0 - pow((double)p->beta1, t);
    double bc2_sqrt = sqrt(1.0 - pow((double)p->beta2, t));
    float step_size = (float)(lr / bc1);
    float b1 = p->beta1, b2 = p->beta2, eps = p->eps;
    float one_b1 = 1.0f - b1, one_b2 = 1.0f - b2;
    float bc2s = (float)bc2_sqrt;
    size_t off = 0;
    for (int k = 0; k < TG_NUM_PARAM_TENSORS; k++) {
        float decay = tg_param_decays(k) ? 1.0f - lr * p->weight_decay : 1.0f;
        float *wk = w + off, *gk = g + off, *mk = m1 + off, *vk = v2 + off;
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < sizes[k]; i++) {
            float gi = gk[i];
            float mi = mk[i] * b1 + one_b1 * gi;
            float vi = vk[i] * b2 + one_b2 * gi * gi;
            mk[i] = mi;
            vk[i] = vi;
            float denom = sqrtf(vi) / bc2s + eps;
            wk[i] = wk[i] * decay - step_size * (mi / denom);
        }
        off += sizes[k];
    }
}
