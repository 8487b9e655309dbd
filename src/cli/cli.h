/*
 * cli.h — the subcommands of the truthgpt program and a small option parser
 * shared by them. Each subcommand lives in its own file (cmd_<name>.c), takes
 * argv after its name, and returns the process exit status (0, 1 or 2).
 */
#ifndef TG_CLI_H
#define TG_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "truthgpt.h"

typedef enum {
    TG_OPT_STR,    /* const char * */
    TG_OPT_INT,    /* int */
    TG_OPT_I64,    /* int64_t */
    TG_OPT_FLOAT,  /* float */
    TG_OPT_DOUBLE, /* double */
    TG_OPT_FLAG,   /* int, set to 1; no value */
} tg_opt_kind;

typedef struct {
    const char *name;    /* long name without dashes, e.g. "batch" */
    tg_opt_kind kind;
    void *dst;           /* where the value goes (its default stays if absent) */
    const char *metavar; /* shown in --help, e.g. "N" */
    const char *help;    /* one line */
} tg_opt;

/* Parses argv (after the subcommand) into opts; positional arguments are
 * returned in pos (pointers into argv; *npos of them, at most max_pos).
 * `--help` prints usage + description + options and returns -1 (the caller
 * exits 0). A bad flag or value prints a message naming it and returns 2. */
int tg_args_parse(const char *usage, const char *description, const tg_opt *opts, int argc, char **argv,
                  char **pos, int max_pos, int *npos);
/* Prints the command's error (tg_error_message) as "truthgpt: ..." and
 * returns the status to exit with. */
int tg_cli_fail(int status);
/* True if a user flag was given (by name) in argv, for overrides. */
int tg_args_given(int argc, char **argv, const char *name);
/* An on|off flag's value: 1 or 0; else -1 with an error naming --flag. */
int tg_cli_on_off(const char *flag, const char *value);
/* --dtype fp32|bf16: TG_OK and *out, else TG_ERR_INPUT naming the flag. */
int tg_cli_dtype(const char *value, tg_dtype *out);
/* The --dtype spelling of d ("fp32", "bf16", "int8"). */
const char *tg_cli_dtype_name(tg_dtype d);
/* --device cpu|cuda[:N], the same on every command that runs a model: the
 * entry of a command's opts, and the call after parsing that makes it the
 * device of every model the command builds (tg_set_default_device): 0, or
 * the reason printed ("no CUDA device: ...", "this build has no CUDA") and 2. */
#define TG_OPT_DEVICE(dst) \
    { "device", TG_OPT_STR, &(dst), "DEV", "where the model runs: cpu, cuda or cuda:N (docs/cuda.md)" }
int tg_cli_device(const char *device);

#define TG_COMMANDS(X)                                                                  \
    X(ingest, "ingest posts (text, JSONL, X, Mastodon) into a clean corpus")           \
    X(tokenizer, "train a BPE tokenizer; encode or decode ids")                        \
    X(tokenize, "turn a corpus (or raw files with --bytes) into token shards")         \
    X(train, "pretrain a GPT on token shards")                                         \
    X(finetune, "fine-tune a model to chat on OpenAI chat JSONL")                      \
    X(chat_data, "make chat training data from a corpus of posts")                     \
    X(eval, "mean loss and perplexity of a model on token shards")                     \
    X(sample, "generate text from a model")                                            \
    X(chat, "chat with a model in the terminal")                                       \
    X(serve, "serve an OpenAI-compatible API and a web chat page")                     \
    X(inspect, "show where a model came from (manifest, config)")                      \
    X(index, "build or extend the search index (SQLite FTS5) of a corpus")             \
    X(search, "search the posts of an index: ranked, with snippets")                   \
    X(bench, "benchmarks: bench train, bench generate")                                \
    X(export, "write a model as GGUF for llama.cpp and Ollama")                        \
    X(plan, "the arithmetic of training on many GPUs: time, network, memory, failures")

/* Run directories, shared by train and finetune (run_dir.c). */
typedef struct json_t json_t;
/* "truthgpt COMMAND ARG..." for the manifest (malloc'd). */
char *tg_cli_command_line(const char *command, int argc, char **argv);
/* --out must be a directory that can be created and written into. */
int tg_cli_check_out_dir(const char *out);
/* 1 and the newest complete checkpoint of run directory OUT in ckpt, 0 if it
 * has none (a checkpoint directory itself is not a run), -1 with the error
 * set if it has checkpoints but none passes its checks. */
int tg_cli_run_checkpoint(const char *out, char *ckpt, size_t n);
/* Loads CKPT/trainer_state.json; hparams points into state (free state with
 * json_decref when the strings taken from it are no longer needed). */
int tg_cli_load_hparams(const char *ckpt, json_t **state, json_t **hparams);
/* The options train and finetune share (each has its own defaults). */
typedef struct {
    const char *dtype; /* "fp32" or "bf16" */
    int batch, accum, warmup, eval_every, save_every;
    int64_t steps, seed;
    float lr, min_lr_frac, weight_decay, grad_clip;
} tg_cli_train_common;
/* Option-table rows that train and finetune share word for word. */
#define TG_CLI_OPTIMIZER_OPTS(c)                                                                                \
    {"accum", TG_OPT_INT, &(c).accum, "A", "micro-batches per step (gradient accumulation)"},                 \
    {"lr", TG_OPT_FLOAT, &(c).lr, "X", "peak learning rate"},                                                 \
    {"min-lr-frac", TG_OPT_FLOAT, &(c).min_lr_frac, "X", "cosine decay floor as a fraction of --lr"},         \
    {"weight-decay", TG_OPT_FLOAT, &(c).weight_decay, "X", "AdamW weight decay (2-D weights and embeddings)"}, \
    {"grad-clip", TG_OPT_FLOAT, &(c).grad_clip, "X", "clip the global gradient norm (0: off)"}
#define TG_CLI_RUN_OPTS(c)                                                                                             \
    {"eval-every", TG_OPT_INT, &(c).eval_every, "N", "steps between validation evaluations (0: only at the end)"},     \
    {"save-every", TG_OPT_INT, &(c).save_every, "N", "steps between checkpoints (0: only the last step)"},            \
    {"dtype", TG_OPT_STR, &(c).dtype, "fp32|bf16", "matrix-multiply precision (bf16 keeps fp32 master weights)"}
/* Sets them to the command's defaults (tg_train_default_params), so --help
 * prints the values a run uses. */
void tg_cli_train_common_defaults(tg_cli_train_common *c, const tg_train_params *d);
/* The fixed AdamW constants for a --help description: "AdamW betas (0.9,
 * 0.95), eps 1e-08" from d, into buf. */
const char *tg_cli_adam_note(const tg_train_params *d, char *buf, size_t n);
/* The checks both commands make of them (an error names the flag). */
int tg_cli_train_common_check(const tg_cli_train_common *c);
/* Takes each of them a resumed run did not get on the command line from
 * trainer_state.json's hyperparameters h (dtype then points into h). */
void tg_cli_train_common_restore(tg_cli_train_common *c, json_t *h, int argc, char **argv);
struct tg_trainer_opts;
/* Copies the shared options into the trainer's (T: the context length). */
void tg_cli_trainer_opts_fill(struct tg_trainer_opts *o, const tg_cli_train_common *c, int T);

/* In a restore function: take hyperparameter KEY into DST unless --FLAG was given. */
#define TG_HPARAM_FROM(h, argc, argv, flag, key, test, dst, get) \
    if (!tg_args_given(argc, argv, flag) && test(json_object_get(h, key))) dst = get(json_object_get(h, key))

/* bench subcommands (bench_train.c, bench_generate.c) */
int tg_bench_train(int argc, char **argv);
int tg_bench_generate(int argc, char **argv);

#define TG_DECLARE(name, help) int tg_cmd_##name(int argc, char **argv);
TG_COMMANDS(TG_DECLARE)
#undef TG_DECLARE

#endif /* TG_CLI_H */
