/*
 * cmd_train.c — `truthgpt train`: pretrain a GPT-2 model on token shards
 * (docs/architecture.md "Pipeline", "Training contract"). This file turns
 * flags into a model and a tg_trainer_opts, checks every input before
 * anything is written (a bad flag, shard or checkpoint exits 2 and leaves
 * --out untouched), builds the manifest (provenance), and hands over to the
 * shared loop in src/train/trainer.c.
 *
 * --resume: hyperparameters not given on the command line come from the
 * newest checkpoint's trainer_state.json, the model from its config.json.
 * Exit status: 0 done, 1 runtime failure, 2 bad input, 130/143 when Ctrl-C
 * or SIGTERM stopped the run (after saving a checkpoint).
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "model/checkpoint_verify.h"
#include "train/dist.h"
#include "train/loader.h"
#include "train/trainer.h"

typedef struct {
    tg_cli_train_common c; /* options shared with finetune */
    const char *preset, *data, *val_data, *init, *out, *shuffle, *doc_attention;
    int layers, heads, dim, ctx, eval_batches, threads, resume;
    int zero;           /* --zero 1: AdamW state sharded across MPI ranks */
    double dist_timeout; /* --dist-timeout S */
} train_flags;

static json_t *shard_list(const tg_token_stream *ts) {
    json_t *a = json_array();
    for (int i = 0; i < ts->n_shards; i++) {
        uint8_t sha[32];
        char hex[65] = "";
        if (tg_sha256_file(ts->shards[i].path, sha) == TG_OK) tg_hex(sha, 32, hex);
        json_array_append_new(a, json_pack("{s:s,s:s,s:I}", "path", ts->shards[i].path, "sha256", hex, "tokens",
                                           (json_int_t)ts->shards[i].n_tokens));
    }
    return a;
}

static json_t *config_json(const tg_config *c) {
    return json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:f,s:i,s:I,s:I}", "family", "gpt2", "n_layer", c->n_layer, "n_head",
                     c->n_head, "n_embd", c->n_embd, "n_ctx", c->n_ctx, "vocab_size", c->vocab_size, "layer_norm_epsilon",
                     (double)c->ln_eps, "eos_token_id", c->eos_id, "params",
                     (json_int_t)tg_config_num_params(c, true), "params_without_wpe",
                     (json_int_t)tg_config_num_params(c, false));
}

/* The flags a resumed run may take from trainer_state.json when not given. */
static int restore_flags(const char *ckpt, train_flags *f, int argc, char **argv, json_t **keep) {
    json_t *s, *h;
    TG_TRY(tg_cli_load_hparams(ckpt, &s, &h));
#define INT_FROM(flag, key, dst) TG_HPARAM_FROM(h, argc, argv, flag, key, json_is_integer, dst, (int)json_integer_value);
#define STR_FROM(flag, key, dst) TG_HPARAM_FROM(h, argc, argv, flag, key, json_is_string, dst, json_string_value);
    tg_cli_train_common_restore(&f->c, h, argc, argv);
    INT_FROM("ctx", "ctx", f->ctx);
    INT_FROM("eval-batches", "eval_batches", f->eval_batches);
    STR_FROM("shuffle", "shuffle", f->shuffle);
    STR_FROM("doc-attention", "doc_attention", f->doc_attention);
    STR_FROM("data", "data", f->data);
    STR_FROM("val-data", "val_data", f->val_data);
#undef INT_FROM
#undef STR_FROM
    *keep = s; /* the strings point into it */
    return TG_OK;
}

static int check_flags(const train_flags *f) {
    TG_TRY(tg_cli_train_common_check(&f->c));
    if (f->c.steps <= 0 || f->c.steps > INT32_MAX) return tg_error_set(TG_ERR_INPUT, "--steps must be positive (got %lld)", (long long)f->c.steps);
    if (f->ctx < 0) return tg_error_set(TG_ERR_INPUT, "--ctx must be positive (got %d)", f->ctx);
    if (f->layers < 0 || f->heads < 0 || f->dim < 0)
        return tg_error_set(TG_ERR_INPUT, "--layers, --heads and --dim must be positive");
    if (f->c.warmup < 0) return tg_error_set(TG_ERR_INPUT, "--warmup must be >= 0");
    if (f->c.eval_every < 0 || f->c.save_every < 0 || f->eval_batches < 0)
        return tg_error_set(TG_ERR_INPUT, "--eval-every, --eval-batches and --save-every must be >= 0");
    if (f->threads < 0) return tg_error_set(TG_ERR_INPUT, "--threads must be >= 0");
    if (tg_cli_on_off("shuffle", f->shuffle) < 0 || tg_cli_on_off("doc-attention", f->doc_attention) < 0)
        return TG_ERR_INPUT;
    if (!f->data) return tg_error_set(TG_ERR_INPUT, "--data DIR|FILE is required (token shards from `truthgpt tokenize`)");
    return TG_OK;
}

/* tokenizer.json beside the shards (`tokenize` puts it there,
 * docs/architecture.md "Pipeline"). */
static char *find_tokenizer(const char *data) {
    char *dir;
    if (tg_path_is_dir(data)) dir = strdup(data);
    else {
        dir = strdup(data);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash) *slash = 0;
        else if (dir) strcpy(dir, ".");
    }
    if (!dir) return NULL;
    char *p = tg_path_join(dir, "tokenizer.json");
    free(dir);
    if (p && tg_path_exists(p)) return p;
    free(p);
    return NULL;
}

static int train_main(train_flags *fp, tg_dist *dist, int argc, char **argv);

int tg_cmd_train(int argc, char **argv) {
    /* First, before any thread exists: every thread then blocks the signals. */
    if (tg_trainer_install_signals() != TG_OK) return tg_cli_fail(TG_ERR_RUNTIME);
    /* Every training default comes from tg_train_default_params, which
     * --help then prints. */
    tg_train_params d = tg_train_default_params(TG_TRAIN_PRETRAIN);
    train_flags f = {.preset = "tiny", .shuffle = "on", .doc_attention = "off", .eval_batches = d.eval_batches,
                     .dist_timeout = 30.0};
    tg_cli_train_common_defaults(&f.c, &d);
    char presets[128] = "";
    for (const char *const *p = tg_config_preset_names(); *p; p++)
        snprintf(presets + strlen(presets), sizeof presets - strlen(presets), "%s%s", p == tg_config_preset_names() ? "" : ", ", *p);
    char preset_help[192];
    snprintf(preset_help, sizeof preset_help, "model size: %s", presets);
    const char *device = "cpu";
    tg_opt opts[] = {
        {"preset", TG_OPT_STR, &f.preset, "NAME", preset_help},
        {"layers", TG_OPT_INT, &f.layers, "L", "override the preset's layers (0: preset)"},
        {"heads", TG_OPT_INT, &f.heads, "H", "override the preset's heads (0: preset)"},
        {"dim", TG_OPT_INT, &f.dim, "C", "override the preset's width (0: preset)"},
        {"ctx", TG_OPT_INT, &f.ctx, "T", "context length (0: the preset's or the --init model's)"},
        {"data", TG_OPT_STR, &f.data, "DIR|FILE", "train shards: DIR's train-*.tok (or all *.tok), or one .tok file"},
        {"val-data", TG_OPT_STR, &f.val_data, "DIR|FILE", "validation shards (default: --data DIR's val-*.tok if any)"},
        {"batch", TG_OPT_INT, &f.c.batch, "B", "sequences per micro-batch"},
        TG_CLI_OPTIMIZER_OPTS(f.c),
        {"steps", TG_OPT_I64, &f.c.steps, "N", "optimizer steps"},
        {"warmup", TG_OPT_INT, &f.c.warmup, "N", "linear warm-up steps"},
        {"seed", TG_OPT_I64, &f.c.seed, "N", "seed of the initial weights and the shuffle"},
        {"shuffle", TG_OPT_STR, &f.shuffle, "on|off", "seeded permutation of the windows, or sequential"},
        {"doc-attention", TG_OPT_STR, &f.doc_attention, "on|off",
         "attention stays inside each document, positions restart at its <|endoftext|>"},
        {"init", TG_OPT_STR, &f.init, "DIR", "start from a checkpoint's weights (fresh optimizer, step 0)"},
        {"out", TG_OPT_STR, &f.out, "RUN", "run directory: checkpoint-STEP/, metrics.jsonl, loss.svg, manifest.json"},
        TG_CLI_RUN_OPTS(f.c),
        {"eval-batches", TG_OPT_INT, &f.eval_batches, "N", "validation micro-batches per evaluation"},
        {"resume", TG_OPT_FLAG, &f.resume, NULL, "continue RUN from its newest checkpoint (bitwise)"},
        {"threads", TG_OPT_INT, &f.threads, "N", "threads (0: all cores)"},
        {"zero", TG_OPT_INT, &f.zero, "0|1", "under mpirun: 1 shards AdamW's state across the ranks (ZeRO-1)"},
        {"dist-timeout", TG_OPT_DOUBLE, &f.dist_timeout, "S",
         "under mpirun: a rank silent this long in a collective ends the job (docs/distributed.md)"},
        TG_OPT_DEVICE(device),
        {0},
    };
    char *pos[1];
    int npos;
    char adam[96], description[512];
    snprintf(description, sizeof description,
             "Pretrains a GPT-2 model on token shards. Checkpoints are Hugging Face GPT-2 directories\n"
             "(RUN/checkpoint-STEP); Ctrl-C saves one and stops; --resume continues bitwise.\n"
             "Warm-up, then cosine decay to --min-lr-frac; %s.",
             tg_cli_adam_note(&d, adam, sizeof adam));
    int rc = tg_args_parse("truthgpt train --data DIR --out RUN [--preset tiny] [options]", description, opts, argc,
                           argv, pos, 0, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if ((rc = tg_cli_device(device)) != 0) return rc;
    if (!f.out) {
        fprintf(stderr, "truthgpt: train: --out RUN is required\n");
        return 2;
    }
    if (f.zero != 0 && f.zero != 1) {
        fprintf(stderr, "truthgpt: train: --zero must be 0 or 1 (got %d)\n", f.zero);
        return 2;
    }
    if (!(f.dist_timeout > 0)) {
        fprintf(stderr, "truthgpt: train: --dist-timeout must be positive seconds\n");
        return 2;
    }
    /* Under mpirun/srun: one rank of a data-parallel job (rank 0 alone
     * writes and logs); an error on any rank then ends the whole job. */
    tg_dist *dist = NULL;
    tg_dist_params dp = tg_dist_default_params();
    dp.zero = f.zero;
    dp.timeout_s = f.dist_timeout;
    if (tg_dist_init(&dist, &dp) != TG_OK) return tg_cli_fail(TG_ERR_INPUT);
    if (tg_dist_rank(dist) != 0) tg_log_quiet = 1;
    if (f.zero && !dist) tg_warn("--zero 1 without mpirun: one process holds the whole optimizer state anyway");
    int status = train_main(&f, dist, argc, argv);
    /* An error on one rank would leave the others waiting: end the job. A
     * stop by signal was agreed by every rank (checkpoint saved): exit. */
    if (status != 0 && status < 128 && tg_dist_size(dist) > 1) tg_dist_abort(dist, status);
    tg_dist_free(dist);
    return status;
}

/* The rest of `train` after the flags, for one rank (or the one process). */
static int train_main(train_flags *fp, tg_dist *dist, int argc, char **argv) {
    train_flags f = *fp;
    int rc = TG_OK;

    /* Resume: find the newest checkpoint first, since it supplies defaults. */
    char ckpt[4096] = "";
    json_t *state = NULL;
    int resuming = 0;
    /* What a kill left in the run (checkpoint-N.tmp, loss.svg.tmp.PID; a
     * checkpoint-N.old that is the only copy of its step is put back). */
    if (f.resume && tg_dist_rank(dist) == 0) tg_run_remove_stale(f.out);
    if (tg_dist_barrier(dist, "the start") != TG_OK) return tg_cli_fail(TG_ERR_RUNTIME);
    int found = tg_cli_run_checkpoint(f.out, ckpt, sizeof ckpt);
    if (found < 0) return tg_cli_fail(TG_ERR_INPUT);
    if (f.resume) {
        if (found) {
            resuming = 1;
            rc = restore_flags(ckpt, &f, argc, argv, &state);
            if (rc != TG_OK) return tg_cli_fail(rc);
        } else {
            tg_error_clear();
            tg_info("--resume: no checkpoint in %s yet, starting fresh", f.out);
        }
    } else if (found) {
        tg_error_set(TG_ERR_INPUT, "--out %s already holds a run (%s): pass --resume to continue it, or choose another --out",
                     f.out, ckpt);
        return tg_cli_fail(TG_ERR_INPUT);
    } else tg_error_clear();
    if ((rc = check_flags(&f)) != TG_OK) {
        json_decref(state);
        return tg_cli_fail(rc);
    }
    if (f.threads > 0) tg_set_threads(f.threads);

    /* Data: everything is opened and checked before --out is touched. */
    tg_loader train, val;
    memset(&train, 0, sizeof train);
    memset(&val, 0, sizeof val);
    tg_model *m = NULL;
    tg_trainer_resume res;
    memset(&res, 0, sizeof res);
    char *tok_path = NULL, *cmdline = NULL, *manifest = NULL, *hparams = NULL;
    int have_val = 0;
    tg_config cfg;
    int T = f.ctx;
    /* The loaders need T, which may come from the model: settle the model
     * config first, then open the data with it. */
    if (resuming) {
        rc = tg_checkpoint_read_config(ckpt, &cfg);
        if (rc == TG_OK) rc = tg_checkpoint_check_weights(ckpt, &cfg);
    } else if (f.init) {
        char dir[4096];
        rc = tg_checkpoint_resolve(f.init, dir, sizeof dir);
        if (rc == TG_OK) rc = tg_checkpoint_read_config(dir, &cfg);
        if (rc == TG_OK && (f.layers || f.heads || f.dim))
            tg_warn("--layers/--heads/--dim are ignored with --init (the model comes from %s)", dir);
    } else {
        rc = tg_config_preset(f.preset, &cfg);
        if (rc != TG_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", tg_error_message());
            tg_error_set(TG_ERR_INPUT, "--preset: %s", why);
        }
        if (f.layers) cfg.n_layer = f.layers;
        if (f.heads) cfg.n_head = f.heads;
        if (f.dim) cfg.n_embd = f.dim;
        if (f.ctx) cfg.n_ctx = f.ctx;
    }
    if (rc == TG_OK && T == 0) T = cfg.n_ctx;
    if (rc == TG_OK && T > cfg.n_ctx)
        rc = tg_error_set(TG_ERR_INPUT, "--ctx %d is longer than the model's context of %d", T, cfg.n_ctx);
    int shuffle = tg_cli_on_off("shuffle", f.shuffle) == 1;
    if (rc == TG_OK)
        rc = tg_loader_open(&train, f.data, tg_shards_with_prefix(f.data, "train") ? "train" : NULL, f.c.batch, T, f.c.accum,
                            shuffle, (uint64_t)f.c.seed);
    train.ranks = tg_dist_size(dist);
    if (rc == TG_OK) {
        if (f.val_data) {
            rc = tg_loader_open(&val, f.val_data, tg_shards_with_prefix(f.val_data, "val") ? "val" : NULL, f.c.batch, T, 1, 0, 0);
            have_val = rc == TG_OK;
        } else if (tg_shards_with_prefix(f.data, "val")) {
            rc = tg_loader_open(&val, f.data, "val", f.c.batch, T, 1, 0, 0);
            have_val = rc == TG_OK;
        }
    }
    if (rc == TG_OK && tg_cli_on_off("doc-attention", f.doc_attention) == 1) {
        rc = tg_loader_doc_attention(&train);
        if (rc == TG_OK && have_val) rc = tg_loader_doc_attention(&val);
    }
    if (rc == TG_OK && !resuming && !f.init) {
        cfg.vocab_size = train.ts.vocab_size;
        cfg.eos_id = train.ts.eot_id;
        rc = tg_config_validate(&cfg);
    }
    if (rc == TG_OK && train.ts.vocab_size > cfg.vocab_size)
        rc = tg_error_set(TG_ERR_INPUT, "--data %s: vocabulary of %d is larger than the model's %d", f.data,
                          train.ts.vocab_size, cfg.vocab_size);
    if (rc == TG_OK && have_val && val.ts.vocab_size > cfg.vocab_size)
        rc = tg_error_set(TG_ERR_INPUT, "--val-data %s: vocabulary of %d is larger than the model's %d",
                          f.val_data ? f.val_data : f.data, val.ts.vocab_size, cfg.vocab_size);
    /* The model (weights checked against config.json before any write). */
    if (rc == TG_OK) {
        if (resuming) {
            rc = tg_model_init(&m, &cfg);
            if (rc == TG_OK) rc = tg_trainer_resume_state(ckpt, m, &res);
        } else if (f.init) {
            rc = tg_model_load(&m, f.init);
        } else {
            rc = tg_model_init(&m, &cfg);
            if (rc == TG_OK) rc = tg_model_init_weights(m, (uint64_t)f.c.seed);
        }
    }
    if (rc == TG_OK && tg_dist_rank(dist) == 0) rc = tg_cli_check_out_dir(f.out);

    tg_trainer_opts o = tg_trainer_default_opts();
    if (rc == TG_OK) {
        if (train.ts.n_tokens < (int64_t)f.c.batch * T + 1)
            tg_warn("--data %s: %lld tokens, less than one micro-batch (%d x %d): the data repeat within a batch", f.data,
                    (long long)train.ts.n_tokens, f.c.batch, T);
        tok_path = find_tokenizer(f.data);
        cmdline = tg_cli_command_line("train", argc, argv);
        json_t *h = json_object();
        json_object_set_new(h, "data", json_string(f.data));
        if (have_val) json_object_set_new(h, "val_data", json_string(f.val_data ? f.val_data : f.data));
        json_object_set_new(h, "shuffle", json_string(f.shuffle));
        json_object_set_new(h, "doc_attention", json_string(f.doc_attention));
        json_object_set_new(h, "preset", json_string(f.preset));
        if (f.init) json_object_set_new(h, "init", json_string(f.init));
        json_object_set_new(h, "zero", json_integer(f.zero));
        hparams = json_dumps(h, JSON_COMPACT);
        json_decref(h);

        tg_cli_trainer_opts_fill(&o, &f.c, T);
        o.eval_batches = f.eval_batches;
        if (have_val && o.eval_batches > val.n_windows) o.eval_batches = (int)val.n_windows;
        o.out_dir = f.out;
        o.tokenizer_path = tok_path;
        o.hparams_json = hparams;
        o.label = "train";
        o.next_batch = tg_loader_next;
        o.batch_ctx = &train;
        o.next_val = have_val ? tg_loader_next : NULL;
        o.val_ctx = have_val ? &val : NULL;
        o.dist = dist;
        /* MFU needs the GEMM peak (a short measurement): only worth it
         * when someone watches the progress line. */
        o.peak_flops = isatty(2) ? tg_gemm_peak_gflops(o.dtype) * 1e9 : 0;

        /* Manifest: where this model comes from. */
        json_t *mf = json_object();
        time_t now = time(NULL);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        json_object_set_new(mf, "created", json_string(when));
        json_object_set_new(mf, "truthgpt_version", json_string(TG_VERSION));
        json_object_set_new(mf, "git_commit", json_string(tg_git_commit()));
        json_object_set_new(mf, "cpu_kernels", json_string(tg_cpu_kernels()));
        json_object_set_new(mf, "command_line", json_string(cmdline ? cmdline : ""));
        json_object_set_new(mf, "config", config_json(tg_model_config(m)));
        json_t *hp = json_loads(hparams, 0, NULL);
        json_object_set_new(hp, "batch", json_integer(o.B));
        json_object_set_new(hp, "ctx", json_integer(o.T));
        json_object_set_new(hp, "accum", json_integer(o.accum));
        json_object_set_new(hp, "steps", json_integer(o.steps));
        json_object_set_new(hp, "lr", json_real(o.opt.lr));
        json_object_set_new(hp, "min_lr_frac", json_real(o.opt.min_lr_frac));
        json_object_set_new(hp, "warmup", json_integer(o.opt.warmup));
        json_object_set_new(hp, "weight_decay", json_real(o.opt.weight_decay));
        json_object_set_new(hp, "grad_clip", json_real(o.opt.grad_clip));
        json_object_set_new(hp, "seed", json_integer((json_int_t)o.seed));
        json_object_set_new(hp, "dtype", json_string(f.c.dtype));
        json_object_set_new(hp, "threads", json_integer(tg_num_threads()));
        json_object_set_new(mf, "hyperparameters", hp);
        json_object_set_new(mf, "data", shard_list(&train.ts));
        json_object_set_new(mf, "val_data", have_val ? shard_list(&val.ts) : json_null());
        if (tok_path) {
            uint8_t sha[32];
            char hex[65] = "";
            if (tg_sha256_file(tok_path, sha) == TG_OK) tg_hex(sha, 32, hex);
            json_object_set_new(mf, "tokenizer", json_pack("{s:s,s:s}", "path", tok_path, "sha256", hex));
        } else {
            /* Byte-level shards need no tokenizer file; say which ids mean what. */
            json_object_set_new(mf, "tokenizer",
                                train.ts.vocab_size == 257 ? json_pack("{s:s}", "kind", "bytes (ids 0-255 bytes, 256 <|endoftext|>)")
                                                          : json_null());
        }
        json_object_set_new(mf, "init", f.init ? json_string(f.init) : json_null());
        json_object_set_new(mf, "resumed_from", resuming ? json_string(ckpt) : json_null());
        manifest = json_dumps(mf, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        json_decref(mf);
        o.manifest_json = manifest;

        const tg_config *mc = tg_model_config(m);
        tg_info("model: L=%d H=%d C=%d T=%d V=%d, %.2fM parameters; data: %lld tokens%s; %s", mc->n_layer, mc->n_head,
                mc->n_embd, T, mc->vocab_size, (double)tg_config_num_params(mc, true) / 1e6,
                (long long)train.ts.n_tokens, have_val ? " (+ validation)" : " (no validation data)",
                resuming ? "resuming" : f.init ? "from --init weights" : "fresh weights");
        if (resuming) tg_info("resuming from %s at step %lld", ckpt, (long long)res.step);
    }
    int interrupted = 0;
    if (rc == TG_OK) {
        if (dist)
            tg_info("data parallel: %d ranks (%s), global batch %d x %d micro-batches of %d x %d%s", tg_dist_size(dist),
                    tg_dist_host(dist, 0), tg_dist_size(dist), o.accum, o.B, o.T, f.zero ? ", ZeRO-1" : "");
        double t0 = tg_now();
        rc = tg_trainer_run(m, &o, resuming ? &res : NULL, &interrupted);
        double t = tg_now() - t0;
        if (dist && rc == TG_OK && t > 0)
            tg_info("rank 0 waited %.2f s of %.2f s on collectives (%.1f%%)", tg_dist_wait_seconds(dist), t,
                    100 * tg_dist_wait_seconds(dist) / t);
    }
    int status = rc == TG_OK ? 0 : tg_cli_fail(rc);
    if (rc == TG_OK && interrupted) status = 128 + interrupted;
    tg_dist_detach(dist); /* before the model goes */
    if (m) tg_model_free(m);
    if (have_val) tg_loader_close(&val);
    if (train.tokens) tg_loader_close(&train);
    free(tok_path);
    free(cmdline);
    free(manifest);
    free(hparams);
    json_decref(state);
    return status;
}
