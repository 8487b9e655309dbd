/*
 * run_dir.c — what `train` and `finetune` share about a run directory:
 * the command line recorded in the manifest, checking that --out can be
 * written, finding a run's newest checkpoint, reading the hyperparameters a
 * resumed run takes from trainer_state.json, and the options both commands
 * share (checked, restored and handed to the trainer the same way).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "model/checkpoint_verify.h"
#include "train/trainer.h"

char *tg_cli_command_line(const char *command, int argc, char **argv) {
    size_t n = strlen(command) + 16;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = malloc(n);
    if (!s) return NULL;
    size_t k = (size_t)snprintf(s, n, "truthgpt %s", command);
    for (int i = 0; i < argc; i++) k += (size_t)snprintf(s + k, n - k, " %s", argv[i]);
    return s;
}

/* Probed with a temporary file, since permission bits say nothing when
 * running as root. */
int tg_cli_check_out_dir(const char *out) {
    if (tg_path_exists(out) && !tg_path_is_dir(out))
        return tg_error_set(TG_ERR_INPUT, "--out %s: exists and is not a directory", out);
    if (tg_mkdirs(out) != TG_OK) {
        /* Copied first: tg_error_set must not read its own buffer. */
        char why[512];
        snprintf(why, sizeof why, "%s", tg_error_message());
        return tg_error_set(TG_ERR_INPUT, "--out: %s", why);
    }
    char *probe = tg_path_join(out, ".write-test");
    FILE *fp = fopen(probe, "wb");
    int e = errno;
    if (fp) {
        fclose(fp);
        unlink(probe);
    }
    free(probe);
    if (!fp) return tg_error_set(TG_ERR_INPUT, "--out %s: not writable: %s", out, strerror(e));
    return TG_OK;
}

int tg_cli_run_checkpoint(const char *out, char *ckpt, size_t n) {
    if (!tg_path_is_dir(out)) return 0;
    char *cfg = tg_path_join(out, "config.json");
    int direct = tg_path_exists(cfg);
    free(cfg);
    if (direct) return 0; /* a checkpoint directory itself is not a run */
    int ok = tg_checkpoint_resolve(out, ckpt, n) == TG_OK;
    /* Checkpoints there but none sound: an error, not a fresh start. */
    if (!ok && tg_run_count_checkpoints(out) > 0) return -1;
    if (!ok) tg_error_clear();
    return ok;
}

int tg_cli_load_hparams(const char *ckpt, json_t **state, json_t **hparams) {
    char *path = tg_path_join(ckpt, "trainer_state.json");
    json_error_t jerr;
    json_t *s = json_load_file(path, 0, &jerr);
    if (!s) {
        int rc = tg_error_set(TG_ERR_INPUT, "%s: %s", path, jerr.text);
        free(path);
        return rc;
    }
    free(path);
    *state = s;
    *hparams = json_object_get(s, "hyperparameters");
    return TG_OK;
}

void tg_cli_trainer_opts_fill(tg_trainer_opts *o, const tg_cli_train_common *c, int T) {
    o->B = c->batch;
    o->T = T;
    o->accum = c->accum;
    o->steps = c->steps;
    o->opt.lr = c->lr;
    o->opt.min_lr_frac = c->min_lr_frac;
    o->opt.warmup = c->warmup;
    o->opt.weight_decay = c->weight_decay;
    o->opt.grad_clip = c->grad_clip;
    o->seed = (uint64_t)c->seed;
    if (tg_cli_dtype(c->dtype, &o->dtype) != TG_OK) o->dtype = TG_DTYPE_FP32; /* checked before */
    o->eval_every = c->eval_every;
    o->save_every = c->save_every;
}

void tg_cli_train_common_defaults(tg_cli_train_common *c, const tg_train_params *d) {
    c->dtype = tg_cli_dtype_name(d->dtype);
    c->batch = d->batch;
    c->accum = d->accum;
    c->warmup = d->warmup;
    c->eval_every = d->eval_every;
    c->save_every = d->save_every;
    c->steps = d->steps;
    c->seed = d->seed;
    c->lr = d->lr;
    c->min_lr_frac = d->min_lr_frac;
    c->weight_decay = d->weight_decay;
    c->grad_clip = d->grad_clip;
}

const char *tg_cli_adam_note(const tg_train_params *d, char *buf, size_t n) {
    snprintf(buf, n, "AdamW betas (%g, %g), eps %g (fixed)", (double)d->beta1, (double)d->beta2, (double)d->eps);
    return buf;
}

int tg_cli_train_common_check(const tg_cli_train_common *c) {
    if (c->batch <= 0) return tg_error_set(TG_ERR_INPUT, "--batch must be positive (got %d)", c->batch);
    if (c->accum <= 0) return tg_error_set(TG_ERR_INPUT, "--accum must be positive (got %d)", c->accum);
    if (!(c->lr > 0)) return tg_error_set(TG_ERR_INPUT, "--lr must be positive (got %g)", (double)c->lr);
    if (c->min_lr_frac < 0 || c->min_lr_frac > 1) return tg_error_set(TG_ERR_INPUT, "--min-lr-frac must be in [0, 1]");
    if (c->weight_decay < 0) return tg_error_set(TG_ERR_INPUT, "--weight-decay must be >= 0");
    tg_dtype d;
    return tg_cli_dtype(c->dtype, &d);
}

void tg_cli_train_common_restore(tg_cli_train_common *c, json_t *h, int argc, char **argv) {
    TG_HPARAM_FROM(h, argc, argv, "batch", "batch", json_is_integer, c->batch, (int)json_integer_value);
    TG_HPARAM_FROM(h, argc, argv, "accum", "accum", json_is_integer, c->accum, (int)json_integer_value);
    TG_HPARAM_FROM(h, argc, argv, "steps", "steps", json_is_integer, c->steps, json_integer_value);
    TG_HPARAM_FROM(h, argc, argv, "lr", "lr", json_is_number, c->lr, (float)json_number_value);
    TG_HPARAM_FROM(h, argc, argv, "min-lr-frac", "min_lr_frac", json_is_number, c->min_lr_frac,
                   (float)json_number_value);
    TG_HPARAM_FROM(h, argc, argv, "warmup", "warmup", json_is_integer, c->warmup, (int)json_integer_value);
    TG_HPARAM_FROM(h, argc, argv, "weight-decay", "weight_decay", json_is_number, c->weight_decay,
                   (float)json_number_value);
    TG_HPARAM_FROM(h, argc, argv, "grad-clip", "grad_clip", json_is_number, c->grad_clip, (float)json_number_value);
    TG_HPARAM_FROM(h, argc, argv, "seed", "seed", json_is_integer, c->seed, json_integer_value);
    TG_HPARAM_FROM(h, argc, argv, "eval-every", "eval_every", json_is_integer, c->eval_every, (int)json_integer_value);
    TG_HPARAM_FROM(h, argc, argv, "save-every", "save_every", json_is_integer, c->save_every, (int)json_integer_value);
    TG_HPARAM_FROM(h, argc, argv, "dtype", "dtype", json_is_string, c->dtype, json_string_value);
}
