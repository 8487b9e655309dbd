/*
 * trainer.h — the training loop shared by `truthgpt train` and `truthgpt
 * finetune` (docs/architecture.md "Training contract"): gradient accumulation
 * with the loss normalised over the counted target tokens of the whole global
 * batch, warm-up + cosine schedule, global-norm clipping, AdamW, evaluation,
 * checkpoints (RUN/checkpoint-STEP, atomic), --resume (bitwise),
 * metrics.jsonl, loss.svg, manifest.json, a progress line, and Ctrl-C/SIGTERM
 * handling.
 *
 * How to plug in another batch source (fine-tuning):
 *   1. Write `int my_next(void *ctx, int64_t k, tg_batch *out)` that fills
 *      *out with micro-batch k (k = (step*A + a)*R + r, see
 *      docs/architecture.md "Training contract"). Set out->weights to give
 *      0 weight to tokens that must not count (user
 *      turns); the trainer sums the weights of all A slices of a step before
 *      any backward, so the loss is the exact mean over counted tokens.
 *      The A batches of one step are requested (a = 0..A-1) before the first
 *      forward, so keep A buffers (index them by k % A): each batch must
 *      stay valid until the next step's first call.
 *   2. Optionally the same for validation (`next_val`, micro-batch v = 0..).
 *   3. Fill tg_trainer_opts (tg_trainer_default_opts() first), make the model
 *      (tg_model_init + init_weights, or tg_model_load for --init), and call
 *      tg_trainer_run. For --resume call tg_trainer_resume_state first.
 * The batch source decides the data position entirely from k, so resuming
 * needs nothing from it but the step.
 */
#ifndef TG_TRAINER_H
#define TG_TRAINER_H

#include <stdint.h>

#include "truthgpt.h"

typedef int (*tg_next_batch_fn)(void *ctx, int64_t k, tg_batch *out);

typedef struct tg_trainer_opts {
    int B, T;                /* micro-batch rows and sequence length */
    int accum;               /* A: micro-batches per step */
    int64_t steps;           /* S: total steps */
    tg_optim_params opt;     /* lr, schedule, AdamW, clip (opt.total_steps is set from steps) */
    uint64_t seed;           /* recorded; the batch source uses it for shuffling */
    tg_dtype dtype;          /* matrix-multiply precision */
    int eval_every;          /* steps between evaluations (0: only at the end) */
    int eval_batches;        /* validation micro-batches per evaluation */
    int save_every;          /* steps between checkpoints (0: only the last step) */
    const char *out_dir;     /* RUN directory (created) */
    const char *tokenizer_path; /* copied into every checkpoint as tokenizer.json, or NULL */
    const char *manifest_json;  /* manifest.json contents for RUN and each checkpoint, or NULL */
    const char *hparams_json;   /* extra hyperparameters (a JSON object) kept in trainer_state.json, or NULL */
    const char *label;          /* progress-line label ("train", "finetune") */
    tg_next_batch_fn next_batch;
    void *batch_ctx;
    tg_next_batch_fn next_val;  /* NULL: no evaluation */
    void *val_ctx;
    double peak_flops;          /* for MFU in the progress line; 0: measured at start */
    struct tg_dist *dist;       /* data parallel over MPI (train/dist.h): rank 0 alone writes; NULL: one process */
} tg_trainer_opts;

tg_trainer_opts tg_trainer_default_opts(void);

/* State restored by --resume (filled by tg_trainer_resume_state). */
typedef struct {
    int64_t step;       /* completed steps */
    int64_t tokens;     /* tokens seen (counted targets) */
    uint64_t rng[4];
} tg_trainer_resume;

/* Loads checkpoint directory dir's weights and AdamW moments into m and its
 * trainer_state.json into r (plain values: nothing to free). */
int tg_trainer_resume_state(const char *dir, tg_model *m, tg_trainer_resume *r);

/* Runs the loop from step resume->step (or 0 when resume is NULL) to
 * o->steps. Returns TG_OK when done, TG_ERR_* on failure; *interrupted is
 * set to the signal number when Ctrl-C/SIGTERM stopped it (after saving a
 * checkpoint), else 0. */
int tg_trainer_run(tg_model *m, const tg_trainer_opts *o, const tg_trainer_resume *resume, int *interrupted);

/* Blocks SIGINT/SIGTERM in the calling thread (and so in every thread it
 * starts later) and starts a thread that turns the first one into a flag the
 * loop polls at each step's end. Call it before any thread is started. */
int tg_trainer_install_signals(void);

#endif /* TG_TRAINER_H */
