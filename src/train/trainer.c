/*
 * trainer.c — the training loop (docs/architecture.md "Training contract")
 * and everything around it: metrics.jsonl, loss.svg, trainer_state.json,
 * checkpoints, resume, the progress line and signal handling. The data come
 * from a tg_next_batch_fn (trainer.h), so pretraining and fine-tuning share
 * this file.
 *
 * One step s (0-based) of A accumulation slices:
 *   fetch micro-batches k = s*A + a (a < A); N = their summed target weights
 *   zero grads; for each slice: forward (loss_sum_a), backward(scale 1/N)
 *   norm = clip_grad_norm(grad_clip); lr = lr_at(s); AdamW(t = s + 1)
 * so the gradient is that of the mean cross-entropy over every counted
 * target of the global batch, whatever the split into slices.
 *
 * Reproducibility: nothing here reads a clock or a random number into the
 * arithmetic; the step's data are a function of k, the update a function of
 * (params, moments, s). A checkpoint stores params and moments bit-exactly
 * (F32), so a resumed run continues bitwise the same (given the threads).
 */
#include "train/trainer.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "train/dist.h"
#include "train/svg.h"

static _Atomic int g_stop_signal = 0;
static _Atomic int g_in_loop = 0; /* a checkpoint can be saved at a step's end */

/* Signals are never delivered asynchronously while training: SIGINT and
 * SIGTERM are blocked in every thread and one watcher thread takes them with
 * sigwait(). (A handler interrupting oneDNN's JIT sgemm corrupted the heap in
 * about one run in eight: tests/e2e_train_resume.sh caught it.) The first
 * signal asks for a checkpoint and a clean stop at the end of the current
 * step; a second one, or one before the loop started, ends the process at
 * once, as the signal's default. */
static void *signal_watch(void *arg) {
    const sigset_t *set = arg;
    for (;;) {
        int sig;
        if (sigwait(set, &sig) != 0) continue;
        if (atomic_load(&g_stop_signal) || !atomic_load(&g_in_loop)) {
            signal(sig, SIG_DFL);
            pthread_sigmask(SIG_UNBLOCK, set, NULL);
            raise(sig);
            _exit(128 + sig);
        }
        atomic_store(&g_stop_signal, sig);
        static const char msg[] = "\nstopping after this step to save a checkpoint (again to quit now)\n";
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) { /* nothing to do */ }
    }
    return NULL;
}

int tg_trainer_install_signals(void) {
    static sigset_t set;
    static int installed = 0;
    if (installed) return TG_OK;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int e = pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t t;
    if (e == 0) e = pthread_create(&t, NULL, signal_watch, &set);
    if (e != 0) return tg_error_set(TG_ERR_RUNTIME, "cannot start the signal thread: %s", strerror(e));
    pthread_detach(t);
    installed = 1;
    return TG_OK;
}

tg_trainer_opts tg_trainer_default_opts(void) {
    tg_trainer_opts o;
    memset(&o, 0, sizeof o);
    o.B = 8;
    o.T = 256;
    o.accum = 1;
    o.steps = 1000;
    o.opt = tg_optim_default_params();
    o.seed = 1337;
    o.dtype = TG_DTYPE_FP32;
    o.eval_every = 100;
    o.eval_batches = 20;
    o.save_every = 0;
    o.label = "train";
    return o;
}

/* ------------------------------------------------------------------ state */

typedef struct {
    const tg_trainer_opts *o;
    tg_model *m;
    int64_t step, tokens;
    uint64_t rng[4];
    tg_point *train;      /* (steps) loss against tokens, for loss.svg */
    int64_t n_train;
    tg_point *val;        /* (evals) */
    int64_t n_val, cap_val;
    double last_loss, last_val;
    char *metrics_path, *svg_path;
    FILE *metrics;
    double flops_per_token, peak_flops;
    bool writer; /* rank 0 of a data-parallel job (or the one process): logs, metrics, checkpoints */
} run_state;

static int metrics_write(run_state *r, const char *line) {
    if (!r->writer) return TG_OK;
    if (fputs(line, r->metrics) == EOF || fputc('\n', r->metrics) == EOF || fflush(r->metrics) != 0)
        return tg_error_set(TG_ERR_RUNTIME, "%s: write failed: %s", r->metrics_path, strerror(errno));
    return TG_OK;
}

static int add_val_point(run_state *r, double tokens, double loss) {
    if (r->n_val == r->cap_val) {
        int64_t nc = r->cap_val ? 2 * r->cap_val : 64;
        tg_point *nv = realloc(r->val, (size_t)nc * sizeof *nv);
        if (!nv) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
        r->val = nv;
        r->cap_val = nc;
    }
    r->val[r->n_val++] = (tg_point){tokens, loss};
    return TG_OK;
}

/* On resume: keeps metrics.jsonl lines up to the checkpoint's step (a run
 * killed after its last checkpoint logged steps that will be redone),
 * rewrites the file atomically, and reloads the chart's points. */
static int metrics_restore(run_state *r) {
    if (!tg_path_exists(r->metrics_path)) return TG_OK;
    char *text;
    size_t len;
    TG_TRY(tg_read_file(r->metrics_path, &text, &len));
    char *kept = malloc(len + 1);
    if (!kept) {
        free(text);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    size_t klen = 0;
    int rc = TG_OK;
    for (char *line = text; *line && rc == TG_OK;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) : strlen(line);
        /* A line cut by kill -9 mid-write fails to parse and is dropped. */
        json_t *o = nl ? json_loadb(line, ll, 0, NULL) : NULL;
        json_t *st = o ? json_object_get(o, "step") : NULL;
        if (json_is_integer(st) && json_integer_value(st) <= r->step) {
            memcpy(kept + klen, line, ll + 1);
            klen += ll + 1;
            json_t *loss = json_object_get(o, "loss"), *vl = json_object_get(o, "val_loss"),
                   *tok = json_object_get(o, "tokens");
            double t = json_is_number(tok) ? json_number_value(tok) : 0;
            if (json_is_number(loss) && r->n_train < r->o->steps)
                r->train[r->n_train++] = (tg_point){t, json_number_value(loss)};
            if (json_is_number(vl)) rc = add_val_point(r, t, json_number_value(vl));
        }
        json_decref(o);
        line = nl ? nl + 1 : line + ll;
    }
    if (rc == TG_OK) rc = tg_write_file_atomic(r->metrics_path, kept, klen);
    free(kept);
    free(text);
    return rc;
}

static json_t *hparams_json(const tg_trainer_opts *o) {
    json_t *h = NULL;
    if (o->hparams_json) h = json_loads(o->hparams_json, 0, NULL);
    if (!json_is_object(h)) {
        json_decref(h);
        h = json_object();
    }
    json_object_set_new(h, "batch", json_integer(o->B));
    json_object_set_new(h, "ctx", json_integer(o->T));
    json_object_set_new(h, "accum", json_integer(o->accum));
    json_object_set_new(h, "steps", json_integer(o->steps));
    json_object_set_new(h, "lr", json_real(o->opt.lr));
    json_object_set_new(h, "min_lr_frac", json_real(o->opt.min_lr_frac));
    json_object_set_new(h, "warmup", json_integer(o->opt.warmup));
    json_object_set_new(h, "weight_decay", json_real(o->opt.weight_decay));
    json_object_set_new(h, "grad_clip", json_real(o->opt.grad_clip));
    json_object_set_new(h, "beta1", json_real(o->opt.beta1));
    json_object_set_new(h, "beta2", json_real(o->opt.beta2));
    json_object_set_new(h, "eps", json_real(o->opt.eps));
    json_object_set_new(h, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(h, "dtype", json_string(o->dtype == TG_DTYPE_BF16 ? "bf16" : "fp32"));
    json_object_set_new(h, "eval_every", json_integer(o->eval_every));
    json_object_set_new(h, "eval_batches", json_integer(o->eval_batches));
    json_object_set_new(h, "save_every", json_integer(o->save_every));
    json_object_set_new(h, "threads", json_integer(tg_num_threads()));
    json_object_set_new(h, "ranks", json_integer(tg_dist_size(o->dist)));
    return h;
}

static char *trainer_state_text(run_state *r) {
    json_t *s = json_object();
    json_object_set_new(s, "step", json_integer(r->step));
    json_object_set_new(s, "tokens", json_integer(r->tokens));
    /* Micro-batch index the next step starts at (k = s*A + a,
     * docs/architecture.md "Training contract"). */
    json_object_set_new(s, "data_position", json_integer(r->step * r->o->accum * tg_dist_size(r->o->dist)));
    json_t *rng = json_array();
    for (int i = 0; i < 4; i++) {
        char hex[24];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)r->rng[i]);
        json_array_append_new(rng, json_string(hex));
    }
    json_object_set_new(s, "rng", rng);
    json_object_set_new(s, "hyperparameters", hparams_json(r->o));
    json_t *met = json_object();
    json_object_set_new(met, "last_loss", isfinite(r->last_loss) ? json_real(r->last_loss) : json_null());
    json_object_set_new(met, "last_val_loss", isfinite(r->last_val) ? json_real(r->last_val) : json_null());
    json_t *evals = json_array();
    for (int64_t i = 0; i < r->n_val; i++)
        json_array_append_new(evals, json_pack("{s:f,s:f}", "tokens", r->val[i].x, "val_loss", r->val[i].y));
    json_object_set_new(met, "evals", evals);
    json_object_set_new(s, "metrics", met);
    char *text = json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(s);
    return text;
}

static int save_checkpoint(run_state *r) {
    char *state = trainer_state_text(r);
    if (!state) return tg_error_set(TG_ERR_RUNTIME, "cannot serialise trainer_state.json");
    tg_checkpoint_extras x = {true, state, r->o->manifest_json, r->o->tokenizer_path};
    char dir[4096];
    int rc = tg_checkpoint_save(r->o->out_dir, r->step, r->m, &x, dir, sizeof dir);
    free(state);
    if (rc == TG_OK) tg_info("saved %s", dir);
    /* Also redrawn here so a run without validation data gets its chart. */
    if (rc == TG_OK) rc = tg_svg_write_loss(r->svg_path, r->train, r->n_train, r->val, r->n_val, r->o->out_dir);
    return rc;
}

/* Mean loss over the first eval_batches validation micro-batches. */
static int evaluate(run_state *r, double *val_loss) {
    const tg_trainer_opts *o = r->o;
    double sum = 0, cnt = 0;
    /* Data parallel: rank r takes batches r, r+R, ... and the sums are summed. */
    for (int v = tg_dist_rank(o->dist); v < o->eval_batches; v += tg_dist_size(o->dist)) {
        tg_batch b;
        TG_TRY(o->next_val(o->val_ctx, v, &b));
        double ls = 0, c = 0;
        TG_TRY(tg_model_forward(r->m, &b, &ls, &c));
        sum += ls;
        cnt += c;
    }
    double sc[2] = {sum, cnt};
    TG_TRY(tg_dist_sum(o->dist, sc, 2, "the validation loss"));
    sum = sc[0];
    cnt = sc[1];
    *val_loss = cnt > 0 ? sum / cnt : NAN;
    return TG_OK;
}

static int do_eval(run_state *r) {
    double vl;
    TG_TRY(evaluate(r, &vl));
    r->last_val = vl;
    char line[256];
    snprintf(line, sizeof line, "{\"step\":%lld,\"tokens\":%lld,\"val_loss\":%.17g,\"val_ppl\":%.9g}", (long long)r->step,
             (long long)r->tokens, isfinite(vl) ? vl : -1.0, isfinite(vl) ? exp(vl) : -1.0);
    TG_TRY(metrics_write(r, line));
    TG_TRY(add_val_point(r, (double)r->tokens, vl));
    tg_info("step %lld: val loss %.4f (ppl %.2f)", (long long)r->step, vl, exp(vl));
    if (!r->writer) return TG_OK;
    return tg_svg_write_loss(r->svg_path, r->train, r->n_train, r->val, r->n_val, r->o->out_dir);
}

static double batch_count(const tg_batch *b) {
    if (!b->targets) return 0;
    if (!b->weights) return (double)b->B * b->T;
    double s = 0;
    for (int64_t i = 0; i < (int64_t)b->B * b->T; i++) s += b->weights[i];
    return s;
}

int tg_trainer_run(tg_model *m, const tg_trainer_opts *o, const tg_trainer_resume *resume, int *interrupted) {
    *interrupted = 0;
    if (o->B <= 0 || o->T <= 0 || o->accum <= 0 || o->steps <= 0)
        return tg_error_set(TG_ERR_INPUT, "trainer: batch, ctx, accum and steps must be positive");
    const tg_config *cfg = tg_model_config(m);
    if (o->T > cfg->n_ctx) return tg_error_set(TG_ERR_INPUT, "--ctx %d is longer than the model's %d", o->T, cfg->n_ctx);
    run_state r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.m = m;
    r.last_loss = r.last_val = NAN;
    r.writer = tg_dist_rank(o->dist) == 0;
    TG_TRY(tg_model_alloc_train(m, o->B, o->T, o->dtype));
    tg_optim_params opt = o->opt;
    opt.total_steps = (int)o->steps;

    int rc = TG_OK;
    tg_batch *batches = calloc((size_t)o->accum, sizeof *batches);
    r.train = calloc((size_t)o->steps, sizeof *r.train);
    r.metrics_path = tg_path_join(o->out_dir, "metrics.jsonl");
    r.svg_path = tg_path_join(o->out_dir, "loss.svg");
    if (!batches || !r.train || !r.metrics_path || !r.svg_path) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    if (rc == TG_OK && resume) {
        r.step = resume->step;
        r.tokens = resume->tokens;
        memcpy(r.rng, resume->rng, sizeof r.rng);
        if (r.writer) rc = metrics_restore(&r); /* the moments are in the model (tg_trainer_resume_state) */
    } else if (rc == TG_OK) {
        tg_rng g;
        tg_rng_seed(&g, o->seed);
        memcpy(r.rng, g.s, sizeof r.rng);
        rc = tg_model_optim_reset(m); /* a fresh run starts from zero moments */
        /* A fresh run starts a fresh log. */
        if (rc == TG_OK && r.writer) rc = tg_write_file_atomic(r.metrics_path, "", 0);
    }
    if (rc == TG_OK && o->manifest_json && r.writer) {
        char *mp = tg_path_join(o->out_dir, "manifest.json");
        rc = tg_write_file_atomic(mp, o->manifest_json, strlen(o->manifest_json));
        free(mp);
    }
    if (rc == TG_OK) rc = tg_dist_attach(o->dist, m, o->accum);
    if (rc == TG_OK && r.writer) {
        r.metrics = fopen(r.metrics_path, "a");
        if (!r.metrics) rc = tg_error_set(TG_ERR_INPUT, "%s: cannot write: %s", r.metrics_path, strerror(errno));
    }
    /* MFU: 6N + 12*L*C*T flops a token (N without wpe) over the GEMM peak. */
    r.flops_per_token = 6.0 * (double)tg_config_num_params(cfg, false) + 12.0 * cfg->n_layer * cfg->n_embd * (double)o->T;
    r.peak_flops = o->peak_flops;

    tg_progress prog;
    int64_t start = r.step;
    tg_progress_start(&prog, o->label ? o->label : "train", (double)(o->steps - start));
    double t_begin = tg_now();
    if (rc == TG_OK && start >= o->steps) tg_info("already at step %lld of %lld: nothing to do", (long long)start, (long long)o->steps);

    atomic_store(&g_in_loop, 1);
    for (int64_t s = start; rc == TG_OK && s < o->steps; s++) {
        double t0 = tg_now();
        double total = 0;
        for (int a = 0; a < o->accum && rc == TG_OK; a++) {
            rc = o->next_batch(o->batch_ctx, tg_dist_batch_index(o->dist, s * o->accum + a), &batches[a]);
            if (rc == TG_OK && (batches[a].B > o->B || batches[a].T > o->T || !batches[a].targets))
                rc = tg_error_set(TG_ERR_RUNTIME, "batch source gave a (%d, %d) batch without targets or over (%d, %d)",
                                  batches[a].B, batches[a].T, o->B, o->T);
            if (rc == TG_OK) total += batch_count(&batches[a]);
        }
        /* Data parallel: the count of the global batch (all ranks). */
        if (rc == TG_OK) rc = tg_dist_sum(o->dist, &total, 1, "the token count");
        if (rc != TG_OK) break;
        /* No counted token in the whole step (possible in fine-tuning):
         * zero gradient, so only weight decay moves the weights. */
        float scale = total > 0 ? (float)(1.0 / total) : 0.0f;
        double loss_sum = 0;
        tg_model_zero_grad(m);
        tg_dist_step_begin(o->dist, s);
        for (int a = 0; a < o->accum && rc == TG_OK; a++) {
            double ls = 0, c = 0;
            rc = tg_model_forward(m, &batches[a], &ls, &c);
            if (rc == TG_OK) rc = tg_model_backward(m, scale);
            loss_sum += ls;
        }
        int64_t step_tokens = 0;
        for (int a = 0; a < o->accum; a++) step_tokens += (int64_t)batches[a].B * batches[a].T;
        /* Data parallel: the gradients are being summed since the backward
         * began (dist.c); the loss, tokens and a stop request too. */
        double stop_sig = atomic_load(&g_stop_signal);
        if (rc == TG_OK && o->dist) {
            double v[2] = {loss_sum, (double)step_tokens};
            rc = tg_dist_grads_wait(o->dist);
            if (rc == TG_OK) rc = tg_dist_sum(o->dist, v, 2, "the loss");
            if (rc == TG_OK) rc = tg_dist_max(o->dist, &stop_sig, 1, "the stop flag");
            loss_sum = v[0];
            step_tokens = (int64_t)v[1];
        }
        if (rc != TG_OK) break;
        float norm = 0;
        float lr = tg_lr_at(&opt, (int)s);
        if (o->dist) rc = tg_dist_update(o->dist, (int)(s + 1), lr, &opt, &norm);
        else {
            norm = tg_clip_grad_norm(m, opt.grad_clip);
            rc = tg_adamw_update(m, (int)(s + 1), lr, &opt);
        }
        if (rc != TG_OK) break;
        double dt = tg_now() - t0;
        double loss = total > 0 ? loss_sum / total : NAN;
        r.step = s + 1;
        r.tokens += step_tokens;
        if (total > 0 && !isfinite(loss)) {
            rc = tg_error_set(TG_ERR_RUNTIME, "loss is %g at step %lld: training diverged (try a lower --lr)", loss,
                              (long long)r.step);
            break;
        }
        r.last_loss = loss;
        if (r.n_train < o->steps) r.train[r.n_train++] = (tg_point){(double)r.tokens, loss};
        double tps = (double)step_tokens / dt;
        double mfu = r.peak_flops > 0 ? tps * r.flops_per_token / r.peak_flops : 0;
        /* Written by hand (numbers only) so the loss keeps all 17
         * digits: resumed and straight runs compare these lines. */
        char line[512], mfu_field[32] = "";
        if (r.peak_flops > 0) snprintf(mfu_field, sizeof mfu_field, ",\"mfu\":%.4f", mfu);
        snprintf(line, sizeof line,
                 "{\"step\":%lld,\"loss\":%.17g,\"lr\":%.9g,\"tokens\":%lld,\"tok_per_s\":%.1f,\"grad_norm\":%.9g%s,"
                 "\"counted\":%.0f,\"time\":%.3f}",
                 (long long)r.step, isfinite(loss) ? loss : -1.0, (double)lr, (long long)r.tokens, tps, (double)norm,
                 mfu_field, total, tg_now() - t_begin);
        rc = metrics_write(&r, line);
        if (rc != TG_OK) break;

        int last = r.step == o->steps;
        if (o->next_val && o->eval_batches > 0 && ((o->eval_every > 0 && r.step % o->eval_every == 0) || last))
            rc = do_eval(&r);
        if (rc != TG_OK) break;
        int stop = o->dist ? stop_sig != 0 : atomic_load(&g_stop_signal) != 0;
        if (last || stop || (o->save_every > 0 && r.step % o->save_every == 0)) {
            /* Every rank takes part (ZeRO-1 gathers the moments); rank 0 writes. */
            rc = tg_dist_gather_optim(o->dist);
            if (rc == TG_OK && r.writer) rc = save_checkpoint(&r);
            rc = tg_dist_agree(o->dist, rc, true);
        }
        if (rc != TG_OK) break;

        char extra[256];
        char val[32] = "";
        if (isfinite(r.last_val)) snprintf(val, sizeof val, " val %.4f", r.last_val);
        char mfus[32] = "";
        if (r.peak_flops > 0) snprintf(mfus, sizeof mfus, " MFU %.1f%%", 100 * mfu);
        snprintf(extra, sizeof extra, "step %lld/%lld loss %.4f%s lr %.2e %.0f tok/s%s", (long long)r.step,
                 (long long)o->steps, loss, val, (double)lr, tps, mfus);
        if (last) tg_progress_finish(&prog, (double)(r.step - start), extra);
        else tg_progress_update(&prog, (double)(r.step - start), extra);
        if (stop) {
            *interrupted = atomic_load(&g_stop_signal) ? atomic_load(&g_stop_signal) : (int)stop_sig;
            if (!tg_log_quiet) fprintf(stderr, "\n");
            tg_info("stopped by signal %d at step %lld; checkpoint saved, continue with --resume", *interrupted,
                    (long long)r.step);
            break;
        }
    }
    atomic_store(&g_in_loop, 0);
    if (r.metrics) fclose(r.metrics);
    free(batches);
    free(r.train);
    free(r.val);
    free(r.metrics_path);
    free(r.svg_path);
    return rc;
}

/* ----------------------------------------------------------------- resume */

int tg_trainer_resume_state(const char *dir, tg_model *m, tg_trainer_resume *r) {
    memset(r, 0, sizeof *r);
    TG_TRY(tg_model_load_weights(m, dir));
    int rc = tg_checkpoint_load_optimizer(dir, m);
    char *path = tg_path_join(dir, "trainer_state.json");
    json_error_t jerr;
    json_t *s = rc == TG_OK ? json_load_file(path, 0, &jerr) : NULL;
    if (rc == TG_OK && !s) rc = tg_error_set(TG_ERR_INPUT, "%s: %s", path, jerr.text);
    if (rc == TG_OK) {
        json_t *st = json_object_get(s, "step"), *tk = json_object_get(s, "tokens"), *rng = json_object_get(s, "rng");
        if (!json_is_integer(st) || json_integer_value(st) < 0 || !json_is_integer(tk))
            rc = tg_error_set(TG_ERR_INPUT, "%s: 'step' and 'tokens' must be non-negative integers", path);
        else if (!json_is_array(rng) || json_array_size(rng) != 4)
            rc = tg_error_set(TG_ERR_INPUT, "%s: 'rng' must be 4 hex strings", path);
        else {
            r->step = json_integer_value(st);
            r->tokens = json_integer_value(tk);
            for (int i = 0; i < 4 && rc == TG_OK; i++) {
                const char *h = json_string_value(json_array_get(rng, (size_t)i));
                char *end = NULL;
                r->rng[i] = h ? strtoull(h, &end, 16) : 0;
                if (!h || *end) rc = tg_error_set(TG_ERR_INPUT, "%s: rng[%d] is not a hex string", path, i);
            }
        }
    }
    json_decref(s);
    free(path);
    return rc;
}
