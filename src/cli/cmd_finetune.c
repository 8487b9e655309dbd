/*
 * cmd_finetune.c — `truthgpt finetune --model DIR --chat data.jsonl --out RUN`:
 * supervised fine-tuning on OpenAI chat JSONL (src/train/sft.c for the data,
 * src/train/trainer.c for the loop, so progress, checkpoints, metrics,
 * Ctrl-C and --resume behave exactly as in `train`).
 *
 * Order of work: every input (flags, model, tokenizer, chat files) is read
 * and checked before --out is touched, so bad input exits 2 with nothing
 * written. Then the chat tokens are added to a tokenizer that lacks them (a
 * byte-level model gets a byte-level tokenizer.json with them), the
 * embedding grows to match, the grown tokenizer.json goes into RUN and every
 * checkpoint, and the trainer runs. With --val-chat and --eval-exact N, the
 * first N held-out conversations are answered greedily through the ChatML
 * template (stop at <|im_end|>) and the exact-match rate is printed and
 * written to RUN/eval_exact.json.
 *
 * Exit status: 0 done, 1 runtime failure, 2 bad input, 128+signal when
 * Ctrl-C or SIGTERM stopped the run (after saving a checkpoint).
 */
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "train/dist.h"
#include "train/sft.h"
#include "train/trainer.h"

#define BYTE_VOCAB 257 /* `tokenize --bytes`: ids 0-255 bytes, 256 <|endoftext|> */

typedef struct {
    tg_cli_train_common c; /* options shared with train */
    const char *model, *chat, *val_chat, *out, *new_tokens;
    int ctx, eval_batches, threads, resume, no_pack, eval_exact, eval_only, epochs;
} ft_flags;

static int check_flags(const ft_flags *f) {
    TG_TRY(tg_cli_train_common_check(&f->c));
    if (f->c.steps < 0 || f->c.steps > INT32_MAX) return tg_error_set(TG_ERR_INPUT, "--steps must be positive (got %lld)", (long long)f->c.steps);
    if (f->epochs <= 0) return tg_error_set(TG_ERR_INPUT, "--epochs must be positive (got %d)", f->epochs);
    if (f->ctx < 0) return tg_error_set(TG_ERR_INPUT, "--ctx must be positive (got %d)", f->ctx);
    if (f->c.eval_every < 0 || f->c.save_every < 0 || f->eval_batches < 0 || f->eval_exact < 0)
        return tg_error_set(TG_ERR_INPUT, "--eval-every, --eval-batches, --eval-exact and --save-every must be >= 0");
    if (f->threads < 0) return tg_error_set(TG_ERR_INPUT, "--threads must be >= 0");
    if (strcmp(f->new_tokens, "mean") != 0 && strcmp(f->new_tokens, "normal") != 0)
        return tg_error_set(TG_ERR_INPUT, "--new-tokens must be mean or normal (got '%s')", f->new_tokens);
    if (!f->chat && !f->eval_only) return tg_error_set(TG_ERR_INPUT, "--chat FILE is required (OpenAI chat JSONL)");
    if (f->eval_only && !f->val_chat) return tg_error_set(TG_ERR_INPUT, "--eval-only needs --val-chat FILE");
    return TG_OK;
}

/* Flags not given on the command line come from the checkpoint's
 * trainer_state.json, so `finetune --out RUN --resume` needs nothing else. */
static int restore_flags(const char *ckpt, ft_flags *f, int argc, char **argv, json_t **keep) {
    json_t *s, *h;
    TG_TRY(tg_cli_load_hparams(ckpt, &s, &h));
#define FROM(flag, key, test, dst, get) TG_HPARAM_FROM(h, argc, argv, flag, key, test, dst, get);
    tg_cli_train_common_restore(&f->c, h, argc, argv);
    FROM("ctx", "ctx", json_is_integer, f->ctx, (int)json_integer_value);
    FROM("eval-batches", "eval_batches", json_is_integer, f->eval_batches, (int)json_integer_value);
    FROM("chat", "chat", json_is_string, f->chat, json_string_value);
    FROM("val-chat", "val_chat", json_is_string, f->val_chat, json_string_value);
    FROM("model", "model", json_is_string, f->model, json_string_value);
    FROM("no-pack", "no_pack", json_is_integer, f->no_pack, (int)json_integer_value);
#undef FROM
    *keep = s;
    return TG_OK;
}

/* One held-out request's reply as the engine streams it. */
typedef struct {
    int32_t *ids;
    int n, cap;
    int32_t im_end;
    bool done, ended; /* finished; finished on <|im_end|> */
} exact_req;

static int collect_token(const tg_token_event *ev, void *user) {
    exact_req *r = user;
    if (ev->token >= 0 && ev->token != r->im_end && ev->finish != TG_FINISH_STOP && r->n < r->cap)
        r->ids[r->n++] = ev->token;
    if (ev->finish != TG_FINISH_NONE) {
        r->done = true;
        r->ended = ev->finish == TG_FINISH_STOP && ev->token == r->im_end;
    }
    return 0;
}

/* Greedy answers to the first n held-out conversations' last user turn,
 * through the generation engine (src/infer: KV cache, batched slots):
 * prompt = the conversation up to "<|im_start|>assistant\n", reply until
 * <|im_end|>, compared byte for byte with the reference reply. */
static int eval_exact(tg_model *m, const tg_sft_data *val, const tg_sft_vocab *v, int T, int n, const char *out_dir) {
    if (n > val->n_convs) n = (int)val->n_convs;
    int slots = n < 16 ? (n > 0 ? n : 1) : 16;
    tg_engine *e = NULL;
    TG_TRY(tg_engine_init(&e, m, v->tok, slots, T, TG_DTYPE_FP32));
    exact_req *reqs = calloc((size_t)(n > 0 ? n : 1), sizeof *reqs);
    int rc = reqs ? TG_OK : tg_error_set(TG_ERR_RUNTIME, "out of memory");
    int correct = 0, evaluated = 0, misses = 0, next = 0;
    tg_progress prog;
    tg_progress_start(&prog, "exact-match", n);
    while (rc == TG_OK && (next < n || tg_engine_active(e) > 0)) {
        while (rc == TG_OK && next < n && tg_engine_free_slots(e) > 0) {
            int c = next++;
            int64_t s = val->start[c], r = val->reply[c], end = val->reply_end[c];
            int plen = (int)(r - s), elen = (int)(end - r);
            if (plen >= T) continue; /* the prompt alone fills the context: not evaluated */
            exact_req *q = &reqs[c];
            q->cap = elen + 1;
            q->im_end = v->im_end;
            q->ids = malloc((size_t)q->cap * sizeof *q->ids);
            if (!q->ids) {
                rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
                break;
            }
            tg_sampling_params sp = tg_sampling_default_params();
            sp.temperature = 0;
            sp.max_tokens = elen + 1; /* one past the reference shows whether <|im_end|> comes in time */
            sp.stop_ids[0] = v->im_end;
            int slot;
            rc = tg_engine_add(e, val->ids + s, plen, &sp, collect_token, q, &slot);
            evaluated++;
        }
        if (rc == TG_OK) rc = tg_engine_step(e);
        int finished = 0;
        for (int c = 0; c < next; c++) finished += reqs[c].done || !reqs[c].ids;
        char extra[64];
        snprintf(extra, sizeof extra, "%d/%d answered", finished, n);
        tg_progress_update(&prog, finished, extra);
    }
    for (int c = 0; rc == TG_OK && c < n; c++) {
        exact_req *q = &reqs[c];
        if (!q->ids) continue;
        int64_t r = val->reply[c], end = val->reply_end[c];
        char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        rc = tg_tokenizer_decode(v->tok, q->ids, (size_t)q->n, &a, &la);
        if (rc == TG_OK) rc = tg_tokenizer_decode(v->tok, val->ids + r, (size_t)(end - r), &b, &lb);
        if (rc == TG_OK && q->ended && la == lb && memcmp(a, b, la) == 0) correct++;
        else if (rc == TG_OK && ++misses <= 3)
            tg_info("exact-match miss (conversation %d): expected \"%.*s\" got \"%.*s\"%s", c + 1, (int)(lb > 80 ? 80 : lb),
                    b, (int)(la > 80 ? 80 : la), a, q->ended ? "" : " (no <|im_end|>)");
        free(a);
        free(b);
    }
    for (int c = 0; reqs && c < n; c++) free(reqs[c].ids);
    free(reqs);
    tg_engine_free(e);
    if (rc != TG_OK) return rc;
    char extra[64];
    snprintf(extra, sizeof extra, "%d/%d correct", correct, evaluated);
    tg_progress_finish(&prog, n, extra);
    double acc = evaluated ? (double)correct / evaluated : 0;
    printf("held-out exact match: %d/%d = %.1f%% (greedy, ChatML, stop at <|im_end|>)\n", correct, evaluated, 100 * acc);
    fflush(stdout);
    if (out_dir) {
        char *path = tg_path_join(out_dir, "eval_exact.json");
        char buf[256];
        int k = snprintf(buf, sizeof buf, "{\"evaluated\": %d, \"correct\": %d, \"accuracy\": %.6f}\n", evaluated, correct,
                         acc);
        rc = tg_write_file_atomic(path, buf, (size_t)k);
        free(path);
    }
    return rc;
}

static char *file_sha(const char *path) {
    uint8_t sha[32];
    char *hex = calloc(65, 1);
    if (hex && tg_sha256_file(path, sha) == TG_OK) tg_hex(sha, 32, hex);
    return hex;
}

int tg_cmd_finetune(int argc, char **argv) {
    /* First, before any thread exists: every thread then blocks the signals. */
    if (tg_trainer_install_signals() != TG_OK) return tg_cli_fail(TG_ERR_RUNTIME);
    /* Every training default comes from tg_train_default_params, which
     * --help then prints. */
    tg_train_params d = tg_train_default_params(TG_TRAIN_FINETUNE);
    ft_flags f = {.new_tokens = "mean", .epochs = d.epochs, .eval_batches = d.eval_batches};
    tg_cli_train_common_defaults(&f.c, &d);
    char warmup_help[96];
    snprintf(warmup_help, sizeof warmup_help, "linear warm-up steps (-1: %g%% of the steps)",
             (double)d.warmup_frac * 100.0);
    const char *device = "cpu";
    tg_opt opts[] = {
        {"model", TG_OPT_STR, &f.model, "DIR", "the model to fine-tune: a checkpoint or run directory"},
        {"chat", TG_OPT_STR, &f.chat, "FILE", "training conversations, OpenAI chat JSONL ({\"messages\": [...]} a line)"},
        {"val-chat", TG_OPT_STR, &f.val_chat, "FILE", "held-out conversations: validation loss (and --eval-exact)"},
        {"out", TG_OPT_STR, &f.out, "RUN", "run directory: checkpoint-STEP/, metrics.jsonl, loss.svg, manifest.json"},
        {"steps", TG_OPT_I64, &f.c.steps, "N", "optimizer steps (0: --epochs passes over --chat)"},
        {"epochs", TG_OPT_INT, &f.epochs, "E", "passes over the training conversations when --steps is 0"},
        TG_CLI_OPTIMIZER_OPTS(f.c),
        {"warmup", TG_OPT_INT, &f.c.warmup, "N", warmup_help},
        {"batch", TG_OPT_INT, &f.c.batch, "B", "rows per micro-batch"},
        {"ctx", TG_OPT_INT, &f.ctx, "T", "row length in tokens (0: the model's context); longer conversations are truncated"},
        {"no-pack", TG_OPT_FLAG, &f.no_pack, NULL, "one conversation a row (padding) instead of packing several"},
        {"new-tokens", TG_OPT_STR, &f.new_tokens, "mean|normal", "initial embedding of added chat tokens"},
        {"seed", TG_OPT_I64, &f.c.seed, "N", "seed of the row order (and of new embedding rows)"},
        TG_CLI_RUN_OPTS(f.c),
        {"eval-batches", TG_OPT_INT, &f.eval_batches, "N", "validation micro-batches (0: all of --val-chat)"},
        {"eval-exact", TG_OPT_INT, &f.eval_exact, "N", "after training, answer N held-out prompts greedily; print exact-match rate"},
        {"eval-only", TG_OPT_FLAG, &f.eval_only, NULL, "no training: only --eval-exact on --model with --val-chat"},
        {"resume", TG_OPT_FLAG, &f.resume, NULL, "continue RUN from its newest checkpoint (bitwise)"},
        {"threads", TG_OPT_INT, &f.threads, "N", "threads (0: all cores)"},
        TG_OPT_DEVICE(device),
        {0},
    };
    char *pos[1];
    int npos;
    char adam[96], description[768];
    snprintf(description, sizeof description,
             "Fine-tunes a model to chat on OpenAI chat JSONL: ChatML template, loss only on assistant replies\n"
             "and their <|im_end|> (an assistant message with \"weight\": 0 counts nothing), conversations packed\n"
             "into rows with no attention across them. Adds <|im_start|>/<|im_end|> to a tokenizer and model\n"
             "that lack them. Same checkpoints, progress, Ctrl-C and --resume as `train`.\n%s.",
             tg_cli_adam_note(&d, adam, sizeof adam));
    int rc = tg_args_parse(
        "truthgpt finetune --model DIR --chat data.jsonl --out RUN [--val-chat F] [--steps N] [options]", description,
        opts, argc, argv, pos, 0, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    /* Data parallel is `train`'s only (src/train/dist.c): N copies here would
     * each fine-tune alone into the same --out. */
    if (tg_dist_launcher_size() > 1 || tg_dist_launcher_size() < 0)
        return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "finetune does not run data parallel: launch it without mpirun/srun"));
    if ((rc = tg_cli_device(device)) != 0) return rc;
    if (!f.out && !f.eval_only) {
        fprintf(stderr, "truthgpt: finetune: --out RUN is required\n");
        return 2;
    }
    char ckpt[4096] = "", model_dir[4096] = "";
    json_t *state = NULL;
    int resuming = 0;
    if (!f.eval_only) {
        int found = tg_cli_run_checkpoint(f.out, ckpt, sizeof ckpt);
        if (found < 0) return tg_cli_fail(TG_ERR_INPUT);
        if (f.resume) {
            if (found) {
                resuming = 1;
                if ((rc = restore_flags(ckpt, &f, argc, argv, &state)) != TG_OK) return tg_cli_fail(rc);
            } else {
                tg_info("--resume: no checkpoint in %s yet, starting fresh", f.out);
            }
        } else if (found) {
            tg_error_set(TG_ERR_INPUT, "--out %s already holds a run (%s): pass --resume to continue it, or choose another --out",
                         f.out, ckpt);
            return tg_cli_fail(TG_ERR_INPUT);
        }
    }
    if ((rc = check_flags(&f)) != TG_OK) {
        json_decref(state);
        return tg_cli_fail(rc);
    }
    if (!resuming && !f.model) {
        json_decref(state);
        tg_error_set(TG_ERR_INPUT, "--model DIR is required (a checkpoint or run directory)");
        return tg_cli_fail(TG_ERR_INPUT);
    }
    if (f.threads > 0) tg_set_threads(f.threads);

    tg_model *m = NULL;
    tg_tokenizer *tok = NULL;
    tg_sft_vocab voc = {0};
    tg_sft_data train = {0}, val = {0};
    tg_sft_batcher tb = {0}, vb = {0};
    tg_trainer_resume res;
    memset(&res, 0, sizeof res);
    char *cmdline = NULL, *manifest = NULL, *hparams = NULL, *tok_out = NULL;
    int have_val = 0, grew_tok = 0, base_vocab = 0, interrupted = 0;
    tg_trainer_opts o = tg_trainer_default_opts();

    /* The model and its tokenizer. */
    const char *src = resuming ? ckpt : f.model;
    rc = tg_checkpoint_resolve(src, model_dir, sizeof model_dir);
    if (rc == TG_OK) {
        if (resuming) {
            tg_config cfg;
            rc = tg_checkpoint_read_config(model_dir, &cfg);
            if (rc == TG_OK) rc = tg_model_init(&m, &cfg);
            if (rc == TG_OK) rc = tg_trainer_resume_state(model_dir, m, &res);
        } else {
            rc = tg_model_load(&m, model_dir);
        }
    }
    if (rc == TG_OK) {
        base_vocab = tg_model_config(m)->vocab_size;
        char tp[4200];
        if (tg_checkpoint_tokenizer_path(model_dir, tp, sizeof tp)) {
            rc = tg_tokenizer_load(&tok, tp);
        } else if (base_vocab == BYTE_VOCAB) {
            /* A byte-level model: its tokenizer is byte-level BPE with no merges
             * (bytes, then <|endoftext|> 256, <|im_start|> 257, <|im_end|> 258). */
            tg_bpe_trainer *tr = NULL;
            rc = tg_bpe_trainer_new(&tr);
            if (rc == TG_OK) rc = tg_bpe_trainer_finish(tr, BYTE_VOCAB + 2, 0, &tok);
            tg_bpe_trainer_free(tr);
            if (rc == TG_OK && tg_tokenizer_token_id(tok, TG_TOKEN_ENDOFTEXT) != BYTE_VOCAB - 1)
                rc = tg_error_set(TG_ERR_RUNTIME, "byte-level tokenizer: <|endoftext|> is not id 256");
            grew_tok = 1;
        } else {
            rc = tg_error_set(TG_ERR_INPUT, "--model %s: no tokenizer.json (and a vocabulary of %d is not byte-level)",
                              model_dir, base_vocab);
        }
    }
    if (rc == TG_OK) {
        int32_t s = tg_tokenizer_token_id(tok, TG_TOKEN_IM_START), e = tg_tokenizer_token_id(tok, TG_TOKEN_IM_END);
        if (s < 0) rc = tg_tokenizer_add_special(tok, TG_TOKEN_IM_START, &s), grew_tok = 1;
        if (rc == TG_OK && e < 0) rc = tg_tokenizer_add_special(tok, TG_TOKEN_IM_END, &e), grew_tok = 1;
        voc = (tg_sft_vocab){tok, s, e};
        int nv = tg_tokenizer_vocab_size(tok);
        if (rc == TG_OK && nv > base_vocab) {
            if (resuming || f.eval_only)
                rc = tg_error_set(TG_ERR_INPUT, "%s: the tokenizer has %d ids but the model only %d", model_dir, nv, base_vocab);
            else
                rc = tg_sft_grow_vocab(&m, nv, strcmp(f.new_tokens, "mean") == 0, (uint64_t)f.c.seed);
            if (rc == TG_OK)
                tg_info("added <|im_start|> (%d) and <|im_end|> (%d): vocabulary %d -> %d, embedding rows initialised %s",
                        s, e, base_vocab, nv, strcmp(f.new_tokens, "mean") == 0 ? "to the mean row" : "from N(0, 0.02)");
        }
    }
    const tg_config *mc = m ? tg_model_config(m) : NULL;
    int T = f.ctx;
    if (rc == TG_OK) {
        if (T == 0) T = mc->n_ctx;
        if (T > mc->n_ctx) rc = tg_error_set(TG_ERR_INPUT, "--ctx %d is longer than the model's context of %d", T, mc->n_ctx);
    }
    /* The conversations. */
    if (rc == TG_OK && !f.eval_only) rc = tg_sft_load(&train, f.chat, &voc);
    if (rc == TG_OK && f.val_chat) {
        rc = tg_sft_load(&val, f.val_chat, &voc);
        have_val = rc == TG_OK;
    }
    if (f.eval_only) {
        if (rc == TG_OK) rc = eval_exact(m, &val, &voc, T, f.eval_exact ? f.eval_exact : (int)val.n_convs, NULL);
        goto done;
    }
    if (rc == TG_OK) rc = tg_sft_batcher_init(&tb, &train, f.c.batch, T, f.c.accum, !f.no_pack, true, (uint64_t)f.c.seed);
    if (rc == TG_OK && have_val) rc = tg_sft_batcher_init(&vb, &val, f.c.batch, T, 1, !f.no_pack, false, 0);
    if (rc == TG_OK && f.c.steps == 0) {
        int64_t per_epoch = tg_sft_batches_per_epoch(&tb);
        f.c.steps = ((int64_t)f.epochs * per_epoch + f.c.accum - 1) / f.c.accum;
    }
    if (rc == TG_OK) f.c.warmup = tg_train_warmup_steps(&d, f.c.warmup, f.c.steps);
    if (rc == TG_OK) rc = tg_cli_check_out_dir(f.out);

    /* From here on --out is written. */
    if (rc == TG_OK) {
        if (resuming) {
            char tp[4200];
            tg_checkpoint_tokenizer_path(model_dir, tp, sizeof tp);
            tok_out = strdup(tp);
        } else {
            tok_out = tg_path_join(f.out, "tokenizer.json");
            rc = tg_tokenizer_save(tok, tok_out);
        }
    }
    if (rc == TG_OK) {
        cmdline = tg_cli_command_line("finetune", argc, argv);
        json_t *h = json_object();
        json_object_set_new(h, "model", json_string(f.model ? f.model : model_dir));
        json_object_set_new(h, "chat", json_string(f.chat));
        if (have_val) json_object_set_new(h, "val_chat", json_string(f.val_chat));
        json_object_set_new(h, "no_pack", json_integer(f.no_pack));
        json_object_set_new(h, "new_tokens", json_string(f.new_tokens));
        hparams = json_dumps(h, JSON_COMPACT);
        json_decref(h);

        tg_cli_trainer_opts_fill(&o, &f.c, T);
        o.eval_batches = (int)(have_val ? tg_sft_batches_per_epoch(&vb) : 0);
        if (f.eval_batches > 0 && f.eval_batches < o.eval_batches) o.eval_batches = f.eval_batches;
        o.out_dir = f.out;
        o.tokenizer_path = tok_out;
        o.hparams_json = hparams;
        o.label = "finetune";
        o.next_batch = tg_sft_next_batch;
        o.batch_ctx = &tb;
        o.next_val = have_val ? tg_sft_next_batch : NULL;
        o.val_ctx = have_val ? &vb : NULL;

        /* Manifest: the base model's own manifest, the chat files, the tokenizer. */
        json_t *mf = json_object();
        time_t now = time(NULL);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        json_object_set_new(mf, "created", json_string(when));
        json_object_set_new(mf, "kind", json_string("finetune"));
        json_object_set_new(mf, "truthgpt_version", json_string(TG_VERSION));
        json_object_set_new(mf, "git_commit", json_string(tg_git_commit()));
        json_object_set_new(mf, "cpu_kernels", json_string(tg_cpu_kernels()));
        json_object_set_new(mf, "command_line", json_string(cmdline ? cmdline : ""));
        json_object_set_new(mf, "config",
                            json_pack("{s:i,s:i,s:i,s:i,s:i,s:i}", "n_layer", mc->n_layer, "n_head", mc->n_head, "n_embd",
                                      mc->n_embd, "n_ctx", mc->n_ctx, "vocab_size", mc->vocab_size, "base_vocab_size",
                                      base_vocab));
        char *base_mf_path = tg_path_join(model_dir, "manifest.json");
        json_t *base_mf = json_load_file(base_mf_path, 0, NULL);
        free(base_mf_path);
        json_object_set_new(mf, "base_model", json_pack("{s:s,s:o}", "path", model_dir, "manifest",
                                                        base_mf ? base_mf : json_null()));
        char *sha = file_sha(f.chat);
        json_object_set_new(mf, "chat", json_pack("{s:s,s:s,s:I,s:I,s:I}", "path", f.chat, "sha256", sha ? sha : "",
                                                  "conversations", (json_int_t)train.n_convs, "tokens",
                                                  (json_int_t)train.n_tokens, "counted_tokens",
                                                  (json_int_t)train.n_counted));
        free(sha);
        if (have_val) {
            sha = file_sha(f.val_chat);
            json_object_set_new(mf, "val_chat", json_pack("{s:s,s:s,s:I}", "path", f.val_chat, "sha256", sha ? sha : "",
                                                          "conversations", (json_int_t)val.n_convs));
            free(sha);
        }
        sha = file_sha(tok_out);
        json_object_set_new(mf, "tokenizer", json_pack("{s:s,s:b}", "sha256", sha ? sha : "", "chat_tokens_added",
                                                       grew_tok));
        free(sha);
        json_object_set_new(mf, "resumed_from", resuming ? json_string(ckpt) : json_null());
        manifest = json_dumps(mf, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        json_decref(mf);
        o.manifest_json = manifest;

        tg_info("finetune: L=%d H=%d C=%d V=%d, %.2fM parameters; %lld conversations (%lld tokens, %lld counted) in %lld "
                "rows of %d (%s)%s; %lld steps%s",
                mc->n_layer, mc->n_head, mc->n_embd, mc->vocab_size, (double)tg_config_num_params(mc, true) / 1e6,
                (long long)train.n_convs, (long long)train.n_tokens, (long long)train.n_counted, (long long)tb.n_windows,
                T + 1, f.no_pack ? "one per row" : "packed", have_val ? " + validation" : "", (long long)f.c.steps,
                resuming ? ", resuming" : "");
        if (tb.n_truncated)
            tg_warn("%lld conversations are longer than --ctx %d + 1 tokens and were truncated (their ends are not learned)",
                    (long long)tb.n_truncated, T);
    }
    if (rc == TG_OK) {
        rc = tg_trainer_run(m, &o, resuming ? &res : NULL, &interrupted);
    }
    if (rc == TG_OK && !interrupted && have_val && f.eval_exact > 0) rc = eval_exact(m, &val, &voc, T, f.eval_exact, f.out);
    int status;
done:
    status = rc == TG_OK ? 0 : tg_cli_fail(rc);
    if (rc == TG_OK && interrupted) status = 128 + interrupted;
    tg_sft_batcher_free(&tb);
    if (have_val && vb.order) tg_sft_batcher_free(&vb);
    tg_sft_data_free(&train);
    tg_sft_data_free(&val);
    if (m) tg_model_free(m);
    tg_tokenizer_free(tok);
    free(tok_out);
    free(cmdline);
    free(manifest);
    free(hparams);
    json_decref(state);
    return status;
}
