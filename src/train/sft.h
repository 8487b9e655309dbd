/*
 * sft.h — supervised fine-tuning data (`truthgpt finetune`): OpenAI chat
 * JSONL -> ChatML tokens -> loss-weighted, segment-packed micro-batches for
 * the trainer (src/train/trainer.h), plus the two model edits fine-tuning
 * needs: growing the embedding for the chat tokens.
 *
 * The template (docs/architecture.md "Inference and chat"), built by
 * tg_chat_encode as for sample/chat and the server: each message is
 *     <|im_start|> enc(ROLE "\n") enc(CONTENT) <|im_end|> enc("\n")
 * where enc() never turns text into special tokens, so a user who types
 * "<|im_start|>" gets those characters, not the marker. The role header and
 * the content are encoded separately so the tokens of a reply always start
 * exactly where generation starts after the prompt's "<|im_start|>assistant\n".
 * Loss weight 1 goes exactly to the content tokens of assistant messages
 * (not those with "weight": 0) and to the <|im_end|> that closes them.
 */
#ifndef TG_SFT_H
#define TG_SFT_H

#include <stdbool.h>
#include <stdint.h>

#include "truthgpt.h"

/* The token ids the template needs and how plain text is encoded. */
typedef struct {
    const tg_tokenizer *tok; /* NULL: the byte-level vocabulary (ids 0-255 are bytes) */
    int32_t im_start;        /* <|im_start|> */
    int32_t im_end;          /* <|im_end|> */
} tg_sft_vocab;

/* All conversations of one chat file, tokenised and concatenated. */
typedef struct {
    int32_t *ids;        /* (n_tokens) */
    uint8_t *counted;    /* (n_tokens) 1: the token is a loss target (assistant content, its <|im_end|>) */
    int64_t *start;      /* (n_convs + 1) offsets of each conversation in ids */
    int64_t *reply;      /* (n_convs) offset of the last assistant message's content (for exact-match
                            evaluation: ids[start, reply) is the prompt incl. "<|im_start|>assistant\n") */
    int64_t *reply_end;  /* (n_convs) offset of that message's <|im_end|> */
    int64_t n_convs, n_tokens, n_counted;
    int64_t cap_tokens, cap_convs;
} tg_sft_data;

/* Reads and validates a chat JSONL file ({"messages": [{"role", "content",
 * "weight"?}]} a line; blank lines skipped). Errors are TG_ERR_INPUT naming
 * FILE:LINE: not JSON, no "messages" array, empty messages, unknown role,
 * content not a string, weight not 0 or 1 or on a non-assistant message, no
 * assistant message. */
int tg_sft_load(tg_sft_data *d, const char *path, const tg_sft_vocab *v);
/* Adds one conversation given as JSON text (what tg_sft_load does a line);
 * where/line name it in errors. */
int tg_sft_add_json(tg_sft_data *d, const char *json, size_t len, const tg_sft_vocab *v, const char *where,
                    int64_t line);
void tg_sft_data_free(tg_sft_data *d);

/* Turns conversations into micro-batches of B rows of T inputs (T+1 tokens
 * a row). Packed: conversations, in a seeded order, are laid one after
 * another into rows while they fit, each row's conversations told apart by
 * tg_batch.segments so no attention crosses them and positions restart.
 * Unpacked: one conversation a row. Either way the rest of a row is padding
 * with weight 0. A conversation longer than T+1 tokens is truncated to its
 * first T+1 (counted in n_truncated); it is not split, since a second half
 * without its prompt would teach replies to nothing. */
typedef struct {
    const tg_sft_data *data;
    int B, T, A;          /* rows, inputs a row, micro-batches kept alive (accumulation slices) */
    bool pack;
    bool shuffle;         /* training: rows in a seeded order each epoch; eval: in order, no wrap */
    uint64_t seed;
    int64_t *order;       /* (n_convs) conversations in packing order */
    int64_t *wstart;      /* (n_windows + 1) row w holds order[wstart[w] .. wstart[w+1]) */
    int64_t n_windows;
    int64_t n_truncated;
    int64_t *perm;        /* (n_windows) row order of epoch perm_epoch */
    int64_t perm_epoch;
    int32_t *inputs, *targets, *segments; /* (A, B, T) */
    float *weights;                       /* (A, B, T) */
    int32_t *row;         /* (T+1) scratch */
    uint8_t *rowc;
    int32_t *rowseg;
} tg_sft_batcher;

int tg_sft_batcher_init(tg_sft_batcher *b, const tg_sft_data *d, int B, int T, int A, bool pack, bool shuffle,
                        uint64_t seed);
void tg_sft_batcher_free(tg_sft_batcher *b);
/* A tg_next_batch_fn (trainer.h): fills micro-batch k (rows k*B .. k*B+B-1
 * of the row sequence). Without shuffle, rows past the last window are all
 * padding (weight 0), so one pass of ceil(n_windows/B) batches counts every
 * window exactly once. */
int tg_sft_next_batch(void *ctx, int64_t k, tg_batch *out);
/* Micro-batches that cover every window once. */
int64_t tg_sft_batches_per_epoch(const tg_sft_batcher *b);

/* Grows the model's vocabulary to new_vocab (>= the current one): a new
 * model with the same weights and new wte rows drawn from N(0, 0.02)
 * (mean = false) or set to the mean of the existing rows (mean = true).
 * *m is replaced (the old model freed) on success. */
int tg_sft_grow_vocab(tg_model **m, int new_vocab, bool mean, uint64_t seed);

#endif /* TG_SFT_H */
