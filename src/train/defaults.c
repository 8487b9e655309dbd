/*
 * defaults.c — the defaults of `truthgpt train` and `truthgpt finetune`: the
 * commands start their flags from tg_train_default_params, so `--help`
 * prints exactly the values a run then uses (tests/e2e_train_defaults.sh
 * checks --help against the hyperparameters a run records).
 *
 * Each value is written once. What the training loop and the optimizer
 * already define (batch, steps, seed, evaluation, learning rate, floor,
 * decay, clip, AdamW's betas and eps) is taken from tg_trainer_default_opts
 * and tg_optim_default_params; only what the commands add is set here:
 * pretraining warms up for 100 steps (the optimizer's own default has no
 * warm-up) and saves every 1000 steps; fine-tuning differs as below.
 */
#include "core/core.h"
#include "train/trainer.h"

tg_train_params tg_train_default_params(tg_train_kind kind) {
    tg_trainer_opts loop = tg_trainer_default_opts();
    const tg_optim_params *adam = &loop.opt;
    tg_train_params p = {
        .batch = loop.B,
        .accum = loop.accum,
        .steps = loop.steps,
        .epochs = 1,
        .warmup = 100,
        .warmup_frac = 0.05f,
        .lr = adam->lr,
        .min_lr_frac = adam->min_lr_frac,
        .weight_decay = adam->weight_decay,
        .grad_clip = adam->grad_clip,
        .beta1 = adam->beta1,
        .beta2 = adam->beta2,
        .eps = adam->eps,
        .seed = (int64_t)loop.seed,
        .eval_every = loop.eval_every,
        .eval_batches = loop.eval_batches,
        .save_every = 1000,
        .dtype = loop.dtype,
    };
    if (kind == TG_TRAIN_FINETUNE) {
        /* A pretrained model moves less and over fewer steps: a lower peak
         * rate, a warm-up that scales with the run, one pass over the
         * conversations, every held-out conversation evaluated, and only
         * the last step saved. */
        p.steps = 0;      /* 0: --epochs passes over the training conversations */
        p.warmup = -1;    /* -1: warmup_frac of the steps */
        p.lr = 1e-4f;
        p.eval_batches = 0; /* 0: all of --val-chat */
        p.save_every = 0;
    }
    return p;
}

int tg_train_warmup_steps(const tg_train_params *p, int warmup, int64_t steps) {
    if (warmup >= 0) return warmup;
    double w = (double)steps * p->warmup_frac;
    return w > 2147483647.0 ? 2147483647 : (int)w;
}
