/*
 * loader.h — the pretraining batch source
 * (docs/architecture.md "Training contract"): micro-batch k of the
 * concatenated train shards, sequential (--shuffle off) or a seeded
 * permutation of the same windows (on), plus sequential validation batches.
 *
 *   shuffle off: window start = k*B*T (mod the stream length, wrapping)
 *   shuffle on:  W = max(1, n_tokens / (B*T)) windows per epoch; epoch
 *                e = k / W; start = perm_e(k mod W) * B*T, perm_e a
 *                bijection of [0, W) keyed by (seed, e)
 * Row b of the micro-batch takes inputs [start + b*T, start + b*T + T) and
 * targets shifted by one. Everything is a pure function of k, so resuming
 * needs only the step, and ranks/accumulation slices need only their k.
 */
#ifndef TG_LOADER_H
#define TG_LOADER_H

#include <stdint.h>

#include "truthgpt.h"

typedef struct {
    tg_token_stream ts;
    int B, T, slots;      /* slots: micro-batch buffers (accumulation steps) */
    int shuffle;
    uint64_t seed;
    int64_t n_windows;    /* W */
    int32_t *tokens;      /* (slots, B*T + 1) */
    int32_t *inputs;      /* (slots, B, T) */
    int32_t *targets;     /* (slots, B, T) */
    int32_t *segments;    /* (slots, B, T) with --doc-attention, else NULL */
    int ranks;            /* R of a data-parallel job (set after open; 0 or 1: one process) */
} tg_loader;

/* Opens path (a directory's prefix-*.tok, or all *.tok, or one file) for
 * micro-batches of (B, T). slots = how many batches stay valid at once (the
 * trainer's accumulation steps A: batch k lives in slot (k / R) % A, R the
 * ranks, since k = (step*A + a)*R + r). */
int tg_loader_open(tg_loader *l, const char *path, const char *prefix, int B, int T, int slots, int shuffle,
                   uint64_t seed);
void tg_loader_close(tg_loader *l);
/* Document attention (train --doc-attention on): each batch then carries
 * segments where every <|endoftext|> starts a new run, so attention stays
 * inside a document and positions restart at 0 on its <|endoftext|>, as when
 * sampling from <|endoftext|>. Off by default
 * (docs/architecture.md "Training contract": windows of the plain stream). */
int tg_loader_doc_attention(tg_loader *l);
/* The segment ids of B rows of T inputs: 0 from each row's start, +1 at
 * every eot after position 0. Exposed for the tests. */
void tg_doc_segments(int32_t *seg, const int32_t *inputs, int B, int T, int eot);
/* Stream offset where micro-batch k starts. */
int64_t tg_loader_window_start(const tg_loader *l, int64_t k);
/* Fills out with micro-batch k (a tg_next_batch_fn: ctx is the loader). */
int tg_loader_next(void *ctx, int64_t k, tg_batch *out);

/* True if directory dir holds <prefix>-*.tok files (tg_token_stream_open
 * falls back to all *.tok when none match; callers that care ask first). */
int tg_shards_with_prefix(const char *dir, const char *prefix);

/* A keyed bijection of [0, n) (Feistel network with cycle walking):
 * O(1) memory, so any window count works. Exposed for the tests. */
int64_t tg_permute_index(int64_t i, int64_t n, uint64_t key);

#endif /* TG_LOADER_H */
