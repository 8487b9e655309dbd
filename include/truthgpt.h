/*
 * truthgpt.h — the public C API of truthgpt.
 *
 * truthgpt trains a chat language model on a community's own posts and serves
 * it (see docs/ and README.md). The command-line program in src/cli uses only
 * what this header declares; so can any program that embeds the library.
 *
 * Conventions:
 *   - Functions that can fail return an int status: TG_OK (0), TG_ERR_RUNTIME
 *     (1) or TG_ERR_INPUT (2, bad usage or bad input). The message, naming the
 *     file, field or flag, is in tg_error_message() (per thread).
 *   - Owning structs come in _init/_free (or _open/_close, _load/_free) pairs.
 *   - Dimension legend: B batch, T time (sequence), C channels, L layers,
 *     H heads, V vocabulary (Vp padded), NH*HS = C.
 */
#ifndef TRUTHGPT_H
#define TRUTHGPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TG_VERSION "0.1.0"

/* ---------------------------------------------------------------- errors */

enum { TG_OK = 0, TG_ERR_RUNTIME = 1, TG_ERR_INPUT = 2 };

/* Records an error for this thread and returns code (so `return tg_error_set(...)`). */
int tg_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last error message of this thread ("" when none). */
const char *tg_error_message(void);
/* The last error code of this thread (TG_OK when none). */
int tg_error_code(void);
void tg_error_clear(void);

/* ------------------------------------------------------------ model config */

typedef struct {
    int n_layer;       /* L */
    int n_head;        /* NH */
    int n_embd;        /* C */
    int n_ctx;         /* maximum T (rows of the position embedding) */
    int vocab_size;    /* V: true vocabulary size, as files hold it */
    int padded_vocab;  /* Vp: rows of wte in memory, V rounded up to 64 */
    float ln_eps;      /* LayerNorm epsilon, 1e-5 */
    int eos_id;        /* <|endoftext|> id (bos and eos of the HF config) */
} tg_config;

/* Fills cfg with a named preset (tiny, small, gpt2, gpt2-medium, gpt2-large,
 * gpt2-xl). vocab_size is set to GPT-2's 50257; callers override it from the
 * tokenizer. Returns TG_ERR_INPUT for an unknown name. */
int tg_config_preset(const char *name, tg_config *cfg);
/* NULL-terminated list of preset names, for --help. */
const char *const *tg_config_preset_names(void);
/* Recomputes derived fields (padded_vocab) and checks the config: C divisible
 * by NH, every size positive. Returns TG_ERR_INPUT with a message otherwise. */
int tg_config_validate(tg_config *cfg);
/* Number of parameters with the true vocabulary (with or without wpe). */
int64_t tg_config_num_params(const tg_config *cfg, bool with_pos_embedding);

/* ------------------------------------------------------------- parameters */

/* The parameter tensors of a GPT-2 model, in memory in Hugging Face's layout
 * (Conv1D weights are [in, out]) so that checkpoints copy straight through.
 * One allocation is carved into all of them, in this order. */
#define TG_NUM_PARAM_TENSORS 16
typedef struct {
    float *wte;      /* (Vp, C)  token embedding, tied LM head; rows >= V are zero */
    float *wpe;      /* (maxT, C) position embedding */
    float *ln1w;     /* (L, C) */
    float *ln1b;     /* (L, C) */
    float *qkvw;     /* (L, C, 3C)  attn.c_attn.weight */
    float *qkvb;     /* (L, 3C) */
    float *attprojw; /* (L, C, C)   attn.c_proj.weight */
    float *attprojb; /* (L, C) */
    float *ln2w;     /* (L, C) */
    float *ln2b;     /* (L, C) */
    float *fcw;      /* (L, C, 4C)  mlp.c_fc.weight */
    float *fcb;      /* (L, 4C) */
    float *fcprojw;  /* (L, 4C, C)  mlp.c_proj.weight */
    float *fcprojb;  /* (L, C) */
    float *lnfw;     /* (C) */
    float *lnfb;     /* (C) */
} tg_params;

/* Element counts of the 16 tensors (padded vocabulary) and whether each gets
 * weight decay (2-D weights and embeddings). */
void tg_param_sizes(const tg_config *cfg, size_t sizes[TG_NUM_PARAM_TENSORS]);
bool tg_param_decays(int tensor_index);
/* Points the 16 tensors into one buffer of tg_param_sizes' total. */
void tg_params_point(tg_params *p, const tg_config *cfg, float *mem);

/* ------------------------------------------------------------------ model */

/* Matrix-multiply precision. INT8: weights quantized per block of 32 inputs
 * (inference only: sample, chat, serve, bench generate). */
typedef enum { TG_DTYPE_FP32 = 0, TG_DTYPE_BF16 = 1, TG_DTYPE_INT8 = 2 } tg_dtype;

/* One micro-batch. Only inputs is required. */
typedef struct {
    const int32_t *inputs;   /* (B, T) token ids */
    const int32_t *targets;  /* (B, T) next-token ids, or NULL for logits only */
    const float *weights;    /* (B, T) loss weight of each target (0: not counted), or NULL: all 1 */
    const int32_t *segments; /* (B, T) or NULL: attention stays inside runs of equal segment id,
                                and positions restart at 0 at each run's start (packed chats) */
    int B, T;
} tg_batch;

typedef struct tg_model tg_model;  /* opaque: parameters, gradients, activations */

/* Allocates a model for cfg (validated) with parameters zeroed, in the
 * memory of its backend (the CPU today; see docs/architecture.md). */
int tg_model_init(tg_model **out, const tg_config *cfg);
/* The same on a named device: "cpu" (what tg_model_init uses), or another
 * backend this build has ("cuda", "cuda:N"). TG_ERR_INPUT for a device the
 * build or the machine does not have, with the reason. */
int tg_model_init_device(tg_model **out, const tg_config *cfg, const char *device);
/* The device tg_model_init (and so tg_model_load and every command) uses
 * from now on: "cpu" (the default), "cuda", "cuda:N" (what --device sets).
 * TG_ERR_INPUT, with the reason ("no CUDA device: ...", "this build has no
 * CUDA"), where the build or the machine has no such device; the default
 * is then unchanged. */
int tg_set_default_device(const char *device);
const char *tg_default_device(void);
void tg_model_free(tg_model *m);
const tg_config *tg_model_config(const tg_model *m);
const char *tg_model_backend_name(const tg_model *m);
/* GPT-2 initialisation (N(0, 0.02), residual projections / sqrt(2L)),
 * reproducible from seed. */
int tg_model_init_weights(tg_model *m, uint64_t seed);

/* Model memory may live on a device: the host reads and writes it only by
 * copies. "Parameter memory" is tg_param_sizes' 16 tensors back to back
 * (padded vocabulary), as tg_params_point lays them out, so a host copy can
 * be viewed through a tg_params. */
size_t tg_model_num_params(const tg_model *m);            /* floats of parameter memory */
int tg_model_params_to_host(const tg_model *m, float *host);
int tg_model_params_from_host(tg_model *m, const float *host);
/* One parameter tensor, index 0 .. TG_NUM_PARAM_TENSORS-1 in tg_params
 * order, into host (tg_param_sizes()[index] floats; wte: all Vp rows, the
 * padded ones zero), in Hugging Face's layout. TG_ERR_INPUT for a bad index. */
int tg_model_copy_tensor_out(const tg_model *m, int index, float *host);
/* The gradients (TG_ERR_RUNTIME before tg_model_alloc_train). */
int tg_model_grads_to_host(const tg_model *m, float *host);
/* Rows [row0, row0 + n_rows) of the last forward's logits (B*T rows of Vp). */
int tg_model_logits_to_host(const tg_model *m, size_t row0, size_t n_rows, float *host);
/* The AdamW moments, laid out like parameter memory (zeros before the
 * first update); from_host sets them (a resumed run). */
bool tg_model_has_optim(const tg_model *m);
/* Zero moments, allocated here if they are not yet (a fresh run calls it
 * before its first step, so the update allocates nothing). */
int tg_model_optim_reset(tg_model *m);
int tg_model_optim_to_host(const tg_model *m, float *m1, float *v2);
int tg_model_optim_from_host(tg_model *m, const float *m1, const float *v2);
/* Allocates gradients and activations for micro-batches up to (B, T), once,
 * before the first step. dtype chooses the matrix-multiply precision. */
int tg_model_alloc_train(tg_model *m, int B, int T, tg_dtype dtype);
/* Forward pass over a batch (B, T <= allocated). With targets, stores the
 * weighted sum of cross-entropies in *loss_sum and the summed weights in
 * *count (either may be NULL). Logits (B, T, Vp) stay readable through
 * tg_model_logits_to_host until the next forward or backward (backward turns
 * them into their gradient in place); columns >= V are -inf. The batch's
 * arrays are copied to the model's memory: they may be reused at once. */
int tg_model_forward(tg_model *m, const tg_batch *batch, double *loss_sum, double *count);
void tg_model_zero_grad(tg_model *m);
/* Backward of scale * loss_sum of the last forward (which had targets);
 * gradients accumulate (+=) so accumulation slices add up. */
int tg_model_backward(tg_model *m, float scale);

/* --------------------------------------------------------------- optimizer */

/* The defaults are tg_optim_default_params's (src/train/optim.c), the one
 * place they are written; the commands' own are tg_train_default_params's. */
typedef struct {
    float lr;            /* peak learning rate */
    float min_lr_frac;   /* lo = lr * min_lr_frac */
    int warmup;          /* warm-up steps */
    int total_steps;     /* S */
    float beta1, beta2;  /* AdamW's moment decay rates */
    float eps;           /* AdamW's denominator epsilon */
    float weight_decay;  /* decoupled decay, on 2-D weights and embeddings only */
    float grad_clip;     /* global-norm clip; <= 0 disables */
} tg_optim_params;

tg_optim_params tg_optim_default_params(void);

/* The defaults of `truthgpt train` (TG_TRAIN_PRETRAIN) and `truthgpt
 * finetune` (TG_TRAIN_FINETUNE), one place for each (src/train/defaults.c):
 * both commands start their flags from these and print them in --help. */
typedef enum { TG_TRAIN_PRETRAIN = 0, TG_TRAIN_FINETUNE = 1 } tg_train_kind;
typedef struct {
    int batch;           /* rows per micro-batch */
    int accum;           /* micro-batches per step */
    int64_t steps;       /* optimizer steps (finetune: 0 = `epochs` passes over the data) */
    int epochs;          /* finetune: passes over the conversations when steps is 0 */
    int warmup;          /* linear warm-up steps; -1: warmup_frac of the steps */
    float warmup_frac;   /* the share of the steps a warm-up of -1 stands for */
    float lr;            /* peak learning rate */
    float min_lr_frac;   /* cosine floor as a fraction of lr */
    float weight_decay;  /* AdamW decay on 2-D weights and embeddings */
    float grad_clip;     /* global-norm clip (<= 0: off) */
    float beta1, beta2, eps; /* AdamW's (no flag; tg_optim_default_params's) */
    int64_t seed;        /* initial weights and data order */
    int eval_every;      /* steps between evaluations (0: only at the end) */
    int eval_batches;    /* validation micro-batches an evaluation (finetune 0: all) */
    int save_every;      /* steps between checkpoints (0: only the last step) */
    tg_dtype dtype;      /* matrix-multiply precision */
} tg_train_params;
tg_train_params tg_train_default_params(tg_train_kind kind);
/* The warm-up steps of a run of `steps` steps given --warmup: warmup itself,
 * or p->warmup_frac of the steps when it is -1. */
int tg_train_warmup_steps(const tg_train_params *p, int warmup, int64_t steps);
/* Learning rate at step s (from 0), docs/architecture.md "Training contract". */
float tg_lr_at(const tg_optim_params *p, int step);
/* Global L2 norm of the gradients; scales them by min(1, clip/(norm+1e-6)) as
 * torch.nn.utils.clip_grad_norm_ does. Returns the norm before clipping. */
float tg_clip_grad_norm(tg_model *m, float clip);
/* One AdamW update (torch.optim.AdamW semantics) at step t (1-based for bias
 * correction) with learning rate lr, over the model's own moments (zero
 * until the first update, or as set by tg_model_optim_from_host). */
int tg_adamw_update(tg_model *m, int t, float lr, const tg_optim_params *p);

/* ------------------------------------------------------------- benchmarks */
/* (section owned by perf) */

/* This machine's matrix-multiply peak in GFLOP/s for dtype, about 1 s; MFU's
 * denominator. fp32: the measured plateau of the best sgemm; bf16: twice
 * that where the CPU has bf16 products (AVX512_BF16), else fp32's (bf16
 * matmuls then run in fp32). */
double tg_gemm_peak_gflops(tg_dtype dtype);
/* The CPU kernel family in use ("avx2", ...: chosen once at start from the
 * CPU, or forced by TG_CPU), those this CPU can run ("generic,avx2,..."),
 * and whether bf16 products run in hardware. */
const char *tg_cpu_kernels(void);
const char *tg_cpu_kernels_available(void);
bool tg_cpu_bf16_native(void);

/* ------------------------------------------------------------ token shards */

#define TG_SHARD_MAGIC 0x4b4f5447u /* "TGTK" little-endian */
#define TG_SHARD_VERSION 1

typedef struct {
    char *path;
    void *map;            /* whole file, mmapped read-only */
    size_t map_size;
    const void *ids;      /* token data after the header */
    int64_t n_tokens;
    int bytes_per_token;  /* 2 or 4 */
    int vocab_size;
    int eot_id;
    uint8_t tokenizer_sha256[32];
} tg_shard;

/* Opens and validates a shard (magic, version, sizes); never reads past the
 * file. Errors name the file. */
int tg_shard_open(tg_shard *s, const char *path);
void tg_shard_close(tg_shard *s);
static inline int32_t tg_shard_get(const tg_shard *s, int64_t i) {
    return s->bytes_per_token == 2 ? (int32_t)((const uint16_t *)s->ids)[i]
                                   : ((const int32_t *)s->ids)[i];
}

/* Streaming shard writer: appends ids, then commits atomically (tmp + fsync +
 * rename) on close. */
typedef struct tg_shard_writer tg_shard_writer;
int tg_shard_writer_open(tg_shard_writer **w, const char *path, int vocab_size, int eot_id,
                         const uint8_t tokenizer_sha256[32]);
int tg_shard_writer_append(tg_shard_writer *w, const int32_t *ids, size_t n);
int64_t tg_shard_writer_count(const tg_shard_writer *w);
/* Finishes the file: header, fsync, rename. Frees w in all cases. */
int tg_shard_writer_close(tg_shard_writer *w);
/* Drops the temporary file without committing. Frees w. */
void tg_shard_writer_abort(tg_shard_writer *w);

/* A list of shards read as one stream (docs/architecture.md "File formats"):
 * a directory's train-*.tok (or all *.tok) in name order, or one file. */
typedef struct {
    tg_shard *shards;
    int n_shards;
    int64_t *starts;   /* (n_shards + 1) cumulative token offsets */
    int64_t n_tokens;
    int vocab_size;    /* the largest of the shards' */
    int eot_id;
} tg_token_stream;

/* prefix: "train" or "val" selects DIR/<prefix>-*.tok; NULL or when none
 * match, all *.tok. */
int tg_token_stream_open(tg_token_stream *ts, const char *path, const char *prefix);
void tg_token_stream_close(tg_token_stream *ts);
int32_t tg_token_stream_get(const tg_token_stream *ts, int64_t i);
/* Copies n tokens from position pos, wrapping at the end of the stream. */
void tg_token_stream_read(const tg_token_stream *ts, int64_t pos, int32_t *out, int64_t n);

/* -------------------------------------------------------------- tokenizer */
/* (section owned by the tokenizer module) */

/* Byte-level BPE exactly as GPT-2's (pre-tokenisation regex semantics, then
 * merges by rank). A loaded tokenizer is read-only and may be shared by
 * threads: encode, decode and the lookups are thread-safe. Only
 * tg_tokenizer_add_special modifies it (not concurrently with anything). */
typedef struct tg_tokenizer tg_tokenizer;

#define TG_TOKEN_ENDOFTEXT "<|endoftext|>"
#define TG_TOKEN_IM_START "<|im_start|>"
#define TG_TOKEN_IM_END "<|im_end|>"

/* path: a tokenizer.json (Hugging Face format), a directory holding one, or
 * a directory with GPT-2's encoder.json + vocab.bpe. Errors name the file. */
int tg_tokenizer_load(tg_tokenizer **out, const char *path);
void tg_tokenizer_free(tg_tokenizer *t);
/* Writes the Hugging Face tokenizer.json (atomically). */
int tg_tokenizer_save(const tg_tokenizer *t, const char *path);
/* SHA-256 of the file as loaded (for encoder.json + vocab.bpe: of the two
 * files' bytes concatenated); all zero for a tokenizer made in memory. */
const uint8_t *tg_tokenizer_sha256(const tg_tokenizer *t);
/* Number of ids (merges, bytes and special tokens). */
int tg_tokenizer_vocab_size(const tg_tokenizer *t);
/* Id of a special token such as "<|endoftext|>" or "<|im_start|>", -1 if absent. */
int32_t tg_tokenizer_token_id(const tg_tokenizer *t, const char *special);
/* Appends a special token (if not present already) and returns its id in
 * *id (may be NULL). Used to add <|im_start|>/<|im_end|> for chat. */
int tg_tokenizer_add_special(tg_tokenizer *t, const char *tok, int32_t *id);
/* Raw bytes of one token (not NUL-terminated; *len set), NULL for a bad id.
 * The bytes of a token may be part of a UTF-8 character (streaming decode
 * must buffer incomplete characters). */
const char *tg_tokenizer_token_bytes(const tg_tokenizer *t, int32_t id, size_t *len);

/* Encodes len bytes of UTF-8 text. Special tokens (<|endoftext|>, ...) in the
 * text become their ids only when allow_special; otherwise they are encoded
 * as ordinary text. *ids is malloc'd (free it); *n its count. Invalid UTF-8
 * is TG_ERR_INPUT. Thread-safe. */
int tg_tokenizer_encode(const tg_tokenizer *t, const char *text, size_t len, int allow_special, int32_t **ids,
                        size_t *n);
/* Decodes ids to bytes: *text is malloc'd, NUL-terminated, *len its length
 * (may be NULL). An id out of range is TG_ERR_INPUT. */
int tg_tokenizer_decode(const tg_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len);

/* A reusable encoder for hot loops: owns a cache of frequent words and its
 * scratch memory, so encoding allocates nothing once warm. One per thread. */
typedef struct tg_encoder tg_encoder;
int tg_encoder_new(tg_encoder **out, const tg_tokenizer *t);
void tg_encoder_free(tg_encoder *e);
/* Like tg_tokenizer_encode, but the ids are written to e's own buffer, which
 * stays valid until the next call to tg_encoder_encode on e. */
int tg_encoder_encode(tg_encoder *e, const char *text, size_t len, int allow_special, const int32_t **ids,
                      size_t *n);

/* Trains a byte-level BPE tokenizer: feed texts (pre-token counting), then
 * finish. The vocabulary is the 256 bytes (ids 0-255), then the special
 * tokens (<|endoftext|> = 256, <|im_start|>, <|im_end|>), then merges in
 * order. Each step merges the most frequent adjacent pair (ties: the smaller
 * left id, then the smaller right id). */
typedef struct tg_bpe_trainer tg_bpe_trainer;
int tg_bpe_trainer_new(tg_bpe_trainer **out);
void tg_bpe_trainer_free(tg_bpe_trainer *tr);
/* Counts the pre-tokens of one text (invalid UTF-8: TG_ERR_INPUT). */
int tg_bpe_trainer_feed(tg_bpe_trainer *tr, const char *text, size_t len);
/* Adds the counts of src into dst (for parallel feeding). */
int tg_bpe_trainer_merge_counts(tg_bpe_trainer *dst, const tg_bpe_trainer *src);
/* Runs merges until the vocabulary has vocab_size ids (fewer if no pair is
 * left) with a progress line when verbose. */
int tg_bpe_trainer_finish(tg_bpe_trainer *tr, int vocab_size, int verbose, tg_tokenizer **out);

/* ------------------------------------------------------ checkpoints & runs */
/* (section owned by the training module) */

/* A checkpoint is a Hugging Face GPT-2 directory
 * (docs/architecture.md "File formats"): config.json, model.safetensors,
 * tokenizer.json, and for training optimizer.safetensors, trainer_state.json
 * and manifest.json. A run directory holds checkpoint-STEP/ subdirectories;
 * checkpoint-STEP.tmp/ is one being written and never counts as complete. */

/* Resolves a --model PATH into a checkpoint directory: PATH itself when it
 * holds config.json, otherwise PATH's newest complete checkpoint-STEP
 * (highest STEP). Writes it to out (n bytes). TG_ERR_INPUT naming PATH when
 * there is none. */
int tg_checkpoint_resolve(const char *path, char *out, size_t n);
/* Reads a checkpoint's config.json (GPT2Config fields) into cfg, validated.
 * dir is a checkpoint directory (not resolved). */
int tg_checkpoint_read_config(const char *dir, tg_config *cfg);
/* Loads a model from PATH (checkpoint or run directory, resolved as above):
 * config.json + model.safetensors. Every tensor's presence, dtype (F32, F16
 * or BF16) and shape is checked; extras such as attn.bias buffers and
 * lm_head.weight are ignored; names with or without the "transformer."
 * prefix are accepted (HF's gpt2 files have none). Errors name the file and
 * the tensor, TG_ERR_INPUT. */
int tg_model_load(tg_model **out, const char *path);
/* Loads model.safetensors of checkpoint directory dir into m, whose config
 * must match the file's shapes (same checks as tg_model_load). */
int tg_model_load_weights(tg_model *m, const char *dir);
/* Writes config.json and model.safetensors (true vocabulary rows only) into
 * the existing directory dir, each file atomically. */
int tg_model_save(tg_model *m, const char *dir);
/* The tokenizer of a checkpoint: writes "<dir>/tokenizer.json" into out and
 * returns 1 if that file exists, 0 otherwise. */
int tg_checkpoint_tokenizer_path(const char *dir, char *out, size_t n);

/* What a full training checkpoint holds besides the model. */
typedef struct {
    bool optimizer;                  /* write the model's AdamW moments (optimizer.safetensors) */
    const char *trainer_state_json;  /* contents of trainer_state.json, or NULL */
    const char *manifest_json;       /* contents of manifest.json, or NULL */
    const char *tokenizer_path;      /* file copied to tokenizer.json, or NULL */
} tg_checkpoint_extras;
/* Saves RUN/checkpoint-STEP atomically: writes everything into
 * RUN/checkpoint-STEP.tmp, then renames it (replacing an older
 * checkpoint-STEP). The final path goes to out_dir (may be NULL). */
int tg_checkpoint_save(const char *run_dir, int64_t step, tg_model *m, const tg_checkpoint_extras *x,
                       char *out_dir, size_t n);
/* Reads optimizer.safetensors of dir into m's AdamW moments (padded rows
 * zeroed). */
int tg_checkpoint_load_optimizer(const char *dir, tg_model *m);

/* ----------------------------------------------------------------- export */

/* GGUF tensor types of an export: F32; F16 (2-D weights as half, the rest
 * F32); Q8_0 (2-D weights in ggml's 32-value blocks with an fp16 scale). */
typedef enum { TG_GGUF_F32 = 0, TG_GGUF_F16 = 1, TG_GGUF_Q8_0 = 2 } tg_gguf_type;
/* Writes m with tok's vocabulary (tok's ids must fit the model's rows) as
 * GGUF v3 for llama.cpp's "gpt2" architecture, atomically, at path;
 * name goes to general.name. See docs/interop.md. */
int tg_gguf_export(tg_model *m, const tg_tokenizer *tok, tg_gguf_type type, const char *name, const char *path);

/* ------------------------------------------------------ inference & chat */
/* (section owned by the inference module) */

/* The generation engine (src/infer): KV-cached GPT-2 forward, continuous
 * batching over fixed slots, sampling, streaming events. One thread owns an
 * engine (the scheduler thread of the server, or the CLI): no function below
 * may be called on the same engine from two threads at once. Inside, each
 * step uses the OpenMP threads. All memory (max_slots x max_ctx KV cache,
 * activations for a full-context prefill) is allocated at init; steps
 * allocate nothing. See docs/inference.md. */

/* Request limits: the one table that the engine (tg_engine_add) and the
 * server's request parser (src/serve/openai.c) both check. Each is inclusive:
 * a request at the limit is accepted, one past it refused. */
#define TG_MAX_STOP 4           /* stop strings per request (OpenAI allows 4) */
#define TG_MAX_STOP_LEN 256     /* bytes per stop string, at most */
#define TG_MAX_STOP_IDS 4       /* extra stop token ids per request */
#define TG_MAX_TOP_LOGPROBS 20  /* top alternatives per token (OpenAI's 0-20) */
#define TG_MAX_MESSAGES 4096    /* messages in one chat request */

/* Sampling settings of one request. Start from tg_sampling_default_params(). */
typedef struct {
    float temperature;       /* 0: greedy (argmax, ties to the lowest id); default 1 */
    int top_k;               /* keep the k most likely tokens; 0: off */
    float top_p;             /* nucleus: smallest set with mass >= top_p; 1: off */
    float min_p;             /* drop tokens with p < min_p * p_max; 0: off */
    float frequency_penalty; /* OpenAI: logit -= f * count of the token among generated ones */
    float presence_penalty;  /* OpenAI: logit -= p * (count > 0) */
    uint64_t seed;           /* per-request RNG seed (same seed, same settings: same tokens) */
    int max_tokens;          /* generated tokens at most; <= 0: until the context is full */
    const char *stop[TG_MAX_STOP]; /* stop strings (NULL: unused); copied by tg_engine_add.
                                       Generation ends when the text contains one; the stop
                                       string itself and what follows are not emitted. */
    int32_t stop_ids[TG_MAX_STOP_IDS]; /* extra token ids that end generation (e.g. <|im_end|>); -1 unused */
    bool ignore_eos;         /* false (default): the model's eos id ends generation */
    bool logprobs;           /* fill tg_token_event.logprob and top alternatives */
    int top_logprobs;        /* number of top alternatives, 0-20 (needs logprobs) */
} tg_sampling_params;

tg_sampling_params tg_sampling_default_params(void);

typedef enum {
    TG_FINISH_NONE = 0,      /* not the last event */
    TG_FINISH_STOP = 1,      /* eos / stop id / stop string */
    TG_FINISH_LENGTH = 2,    /* max_tokens reached or the context is full */
    TG_FINISH_CANCELLED = 3, /* tg_engine_cancel, or the callback returned non-zero */
} tg_finish_reason;
/* "stop", "length", "cancelled" ("" for NONE): OpenAI's finish_reason strings. */
const char *tg_finish_reason_str(tg_finish_reason r);

/* One alternative at a position (top_logprobs). */
typedef struct {
    int32_t id;
    const char *text;  /* the token's own bytes (may be a partial UTF-8 sequence) */
    int text_len;
    float logprob;
} tg_token_alt;

/* What the callback gets for every generated token, and once at the end.
 * Pointers are valid only during the callback. */
typedef struct {
    int slot;                  /* the request's slot */
    int32_t token;             /* the generated id; -1 on a final event that carries no
                                  token (cancellation) */
    const char *token_text;    /* this token's own bytes (for logprobs displays) */
    int token_text_len;
    const char *text;          /* the text this event completes, to append to the output:
                                  incomplete UTF-8 and text that may start a stop string are
                                  held back until resolved; flushed on the final event
                                  (except a matched stop string, which is never emitted) */
    int text_len;
    float logprob;             /* log p(token) under the model's distribution at temperature
                                  1 before penalties and filtering (0 when logprobs off) */
    int n_top;                 /* alternatives in top[], most likely first (0 when off) */
    const tg_token_alt *top;
    tg_finish_reason finish;   /* != TG_FINISH_NONE on the last event of the request */
    int n_prompt;              /* prompt tokens (usage) */
    int n_generated;           /* generated tokens so far, this one included */
} tg_token_event;

/* Returns 0 to continue, non-zero to cancel the request (a final event with
 * TG_FINISH_CANCELLED follows at once, in the same step). */
typedef int (*tg_token_callback)(const tg_token_event *ev, void *user);

typedef struct tg_engine tg_engine;

/* Builds an engine over model's parameters (read, not copied for fp32 GEMMs;
 * repacked once for decode, and converted to bf16 when dtype is BF16). The
 * model (and tokenizer) must outlive the engine. tok may be NULL: then ids
 * 0-255 are the bytes 0-255 (the byte-level vocabulary) and other ids are
 * empty text. max_ctx <= the model's n_ctx (0: the model's). */
int tg_engine_init(tg_engine **out, tg_model *model, const tg_tokenizer *tok, int max_slots, int max_ctx,
                   tg_dtype dtype);
void tg_engine_free(tg_engine *e);
/* Starts a request: its prompt is prefilled at the next tg_engine_step,
 * joining the running batch. Returns TG_OK and the slot in *slot;
 * TG_ERR_RUNTIME when every slot is busy (check tg_engine_free_slots);
 * TG_ERR_INPUT for an empty prompt, a prompt that leaves no room to generate
 * (n >= max_ctx), an id out of the vocabulary, or bad params. */
int tg_engine_add(tg_engine *e, const int32_t *prompt, int n, const tg_sampling_params *p,
                  tg_token_callback cb, void *user, int *slot);
/* One step: prefills the prompts added since the last step, then decodes one
 * token for every active request, all rows of the step going through each
 * weight matrix in one matrix multiply. Fires the callbacks (in slot order);
 * finished requests free their slots. Returns TG_OK when nothing is active. */
int tg_engine_step(tg_engine *e);
/* Ends a request now: its callback gets a final TG_FINISH_CANCELLED event and
 * the slot is freed. Not to be called from inside a callback (return non-zero
 * there). TG_ERR_INPUT for a slot that is not active. */
int tg_engine_cancel(tg_engine *e, int slot);
int tg_engine_active(const tg_engine *e);     /* requests in progress */
int tg_engine_free_slots(const tg_engine *e); /* slots free for tg_engine_add */
int tg_engine_max_slots(const tg_engine *e);
int tg_engine_max_ctx(const tg_engine *e);
/* Threads the per-token work uses now. By default the engine measures, now
 * and then, whether one thread or all of them decode faster (on a busy
 * machine OpenMP barriers can make all threads much slower) and keeps the
 * faster; results never depend on it. Off: always all threads. */
int tg_engine_threads(const tg_engine *e);
void tg_engine_set_adaptive_threads(tg_engine *e, bool on);
/* The token's bytes as the engine streams them. */
const char *tg_engine_token_text(const tg_engine *e, int32_t id, int *len);

/* Runs one prompt to completion on an idle engine (the CLI's `sample`):
 * ids go to out (up to max_out, *n_out set; out may be NULL), events to cb
 * (may be NULL). Returns the finish reason in *finish (may be NULL). */
int tg_generate(tg_engine *e, const int32_t *prompt, int n, const tg_sampling_params *p,
                tg_token_callback cb, void *user, int32_t *out, int max_out, int *n_out,
                tg_finish_reason *finish);

/* ChatML (docs/architecture.md "Inference and chat"):
 * "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message, then
 * "<|im_start|>assistant\n" when add_generation_prompt. Roles: system, user,
 * assistant. Returns TG_ERR_INPUT for another role or a NULL content; *out is
 * malloc'd (free()). */
typedef struct {
    const char *role;
    const char *content;
} tg_chat_message;
int tg_chat_format(const tg_chat_message *msgs, int n, bool add_generation_prompt, char **out);
/* The token ids of a ChatML conversation: the one builder that fine-tuning
 * (src/train/sft.c), sample/chat (tg_infer_encode_chat) and the server use,
 * so a model is prompted with exactly the tokens it was trained on. Each
 * message is
 *     im_start  enc("ROLE\n")  enc(CONTENT)  im_end  enc("\n")
 * and add_generation_prompt appends im_start enc("assistant\n"). enc()
 * encodes plain text with tok (special-token names typed in a message stay
 * text, so no one can forge a marker) or, when tok is NULL, as one id a byte
 * (the byte-level vocabulary). The role header and the content are two
 * pieces, so a reply's tokens start exactly where generation starts after
 * the prompt. A marker id < 0 (a model without chat tokens) is encoded as
 * its text instead. spans (n entries, may be NULL) receives where each
 * message's content lies in the ids: [begin, end), with its im_end at end
 * when that id is >= 0. Roles and contents are checked as tg_chat_format
 * checks them (TG_ERR_INPUT); *ids is malloc'd. */
typedef struct {
    size_t begin, end;
} tg_chat_span;
int tg_chat_encode(const tg_tokenizer *tok, int32_t im_start, int32_t im_end, const tg_chat_message *msgs, int n,
                   bool add_generation_prompt, int32_t **ids, size_t *n_ids, tg_chat_span *spans);

#ifdef __cplusplus
}
#endif
#endif /* TRUTHGPT_H */
