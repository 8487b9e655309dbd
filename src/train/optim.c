/*
 * optim.c — the optimizer of docs/architecture.md "Training contract": warm-up + cosine learning-rate
 * schedule, global-norm gradient clipping with torch.nn.utils.clip_grad_norm_
 * semantics, and AdamW with torch.optim.AdamW's arithmetic (single-tensor
 * path of PyTorch 1.13: decay first, then the moments, bias-corrected step).
 * Weight decay applies only to 2-D weights and embeddings (tg_param_decays).
 * The clipping and the update themselves run on the model's memory through
 * its backend (tg_clip_grad_norm and tg_adamw_update in src/model/model.c);
 * this file holds the schedule and the defaults.
 */
#include <math.h>

#include "core/core.h"

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
