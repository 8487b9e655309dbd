/*
 * gpt2_vocab.h — a tokenizer's vocabulary as strings in GPT-2's printable
 * alphabet (the form of vocab.json keys and merges.txt lines), for writers
 * of other formats (the GGUF export). Implemented in gpt2_files.c.
 */
#ifndef TG_GPT2_VOCAB_H
#define TG_GPT2_VOCAB_H

#include <stdint.h>

#include "truthgpt.h"

typedef struct {
    int n;            /* tokens, ids 0..n-1 */
    char **tokens;    /* (n) NUL-terminated: printable form; special tokens as their raw text */
    uint8_t *special; /* (n) 1 for special (added) tokens */
    int n_merges;
    char **merges;    /* (n_merges) "A B" in printable form, by rank */
} tg_gpt2_vocab;

int tg_gpt2_vocab_init(tg_gpt2_vocab *v, const tg_tokenizer *t);
void tg_gpt2_vocab_free(tg_gpt2_vocab *v);

#endif /* TG_GPT2_VOCAB_H */
