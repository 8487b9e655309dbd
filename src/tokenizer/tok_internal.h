/*
 * tok_internal.h — what the tokenizer's files share: the tg_tokenizer struct
 * (vocabulary, merge table, string index), GPT-2's pre-tokeniser scanner,
 * UTF-8 helpers and the byte <-> printable-character map of GPT-2's files.
 */
#ifndef TG_TOK_INTERNAL_H
#define TG_TOK_INTERNAL_H

#include <stdint.h>

#include "core/core.h"

/* The tokenizer. ids are dense: 0..n-1. */
typedef struct tg_word_cache tg_word_cache;

struct tg_tokenizer {
    int n, cap;            /* ids in use, allocated */
    char *arena;           /* every token's bytes back to back */
    size_t arena_len, arena_cap;
    uint32_t *off, *len;   /* (cap) where id's bytes are in arena */
    uint8_t *special;      /* (cap) 1 for special (added) tokens */
    int32_t byte_id[256];  /* id of each single-byte token */

    /* merges: open addressing, key = left << 32 | right, UINT64_MAX empty;
     * value = rank << 32 | merged id. */
    uint64_t *mkey, *mval;
    size_t mcap;            /* power of two */
    int n_merges;
    int32_t *merge_left, *merge_right; /* (n_merges) by rank, for saving */
    int merges_cap;

    /* bytes -> id index over all tokens: open addressing of ids, -1 empty. */
    int32_t *sidx;
    size_t scap;

    int32_t *specials;      /* ids of special tokens, longest first for matching */
    int n_specials;
    uint8_t sha256[32];
    /* pre-token -> ids, shared by the encoders (bpe.c); filled only by
     * encoding, so it stays valid: adding special tokens does not change how
     * ordinary text encodes. */
    struct tg_word_cache *cache;
};

/* Creates an empty tokenizer (no ids). */
int tg_tok_create(tg_tokenizer **out);
/* Appends a token with the given bytes; returns its id in *id. */
int tg_tok_add(tg_tokenizer *t, const char *bytes, size_t len, int special, int32_t *id);
/* Looks a token up by its bytes; -1 if absent. */
int32_t tg_tok_find(const tg_tokenizer *t, const char *bytes, size_t len);
/* Adds the next merge (rank = number of merges so far) of left and right;
 * the merged token must exist already. */
int tg_tok_add_merge(tg_tokenizer *t, int32_t left, int32_t right, int32_t merged);
/* Fills byte_id and checks every byte has a token; sorts specials. */
int tg_tok_finish(tg_tokenizer *t, const char *what);

/* Merge lookup: returns 1 and sets rank/merged when (left, right) merges. */
static inline int tg_tok_merge(const tg_tokenizer *t, int32_t left, int32_t right, uint32_t *rank, int32_t *merged) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t mask = t->mcap - 1;
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 29) & mask;
    for (;;) {
        uint64_t k = t->mkey[h];
        if (k == key) {
            *rank = (uint32_t)(t->mval[h] >> 32);
            *merged = (int32_t)(uint32_t)t->mval[h];
            return 1;
        }
        if (k == UINT64_MAX) return 0;
        h = (h + 1) & mask;
    }
}

/* ---------------------------------------------------------- pre-tokeniser */

enum { TG_C_WS = 0, TG_C_L = 1, TG_C_N = 2, TG_C_O = 3 };
extern const uint8_t tg_ascii_class[128];
/* Class of a non-ASCII code point (JavaScript's \s, utf8proc categories). */
int tg_cp_class(uint32_t cp);

/* Class of the (valid) character at s[i]; *len gets its byte length. */
static inline int tg_char_class(const uint8_t *s, size_t i, size_t *len) {
    uint8_t b = s[i];
    if (b < 0x80) {
        *len = 1;
        return tg_ascii_class[b];
    }
    uint32_t cp;
    if (b < 0xE0) {
        cp = (uint32_t)(b & 0x1F) << 6 | (s[i + 1] & 0x3F);
        *len = 2;
    } else if (b < 0xF0) {
        cp = (uint32_t)(b & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
        *len = 3;
    } else {
        cp = (uint32_t)(b & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3F) << 12 | (uint32_t)(s[i + 2] & 0x3F) << 6 |
             (s[i + 3] & 0x3F);
        *len = 4;
    }
    return tg_cp_class(cp);
}

/* End of the run of characters of class k starting at i. */
static inline size_t tg_run_end(const uint8_t *s, size_t n, size_t i, int k) {
    while (i < n) {
        uint8_t b = s[i];
        if (b < 0x80) {
            if (tg_ascii_class[b] != k) break;
            i++;
        } else {
            size_t l;
            if (tg_char_class(s, i, &l) != k) break;
            i += l;
        }
    }
    return i;
}

/* Returns the end (byte offset) of the pre-token starting at i < n, with
 * the semantics of GPT-2's regex (alternatives in order, each greedy):
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * s must be valid UTF-8. */
static inline size_t tg_pretok_next(const uint8_t *s, size_t n, size_t i) {
    uint8_t b = s[i];
    /* 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, as GPT-2's) */
    if (b == '\'' && i + 1 < n) {
        uint8_t c = s[i + 1];
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
        if (i + 2 < n) {
            uint8_t d = s[i + 2];
            if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return i + 3;
        }
    }
    size_t l;
    /* " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": a leading space joins
     * the run after it unless that is white space too. */
    if (b == ' ' && i + 1 < n) {
        int k = tg_char_class(s, i + 1, &l);
        if (k != TG_C_WS) return tg_run_end(s, n, i + 1 + l, k);
    }
    int k = tg_char_class(s, i, &l);
    if (k != TG_C_WS) return tg_run_end(s, n, i + l, k);
    /* \s+(?!\S) then \s+: the whole white-space run if it ends the text;
     * otherwise all but its last character (which then leads the next
     * piece), or the single character when the run is one long. */
    size_t last = i, j = i;
    while (j < n) {
        size_t m;
        if (tg_char_class(s, j, &m) != TG_C_WS) break;
        last = j;
        j += m;
    }
    if (j == n || last == i) return j;
    return last;
}
/* (tg_utf8_valid_prefix, the UTF-8 check of encode and train: core/core.h.) */

/* ------------------------------------------------ GPT-2 printable bytes */

/* GPT-2's files write each byte as a printable code point. */
uint32_t tg_byte_to_cp(uint8_t b);
/* Appends the printable form of bytes (UTF-8) to out (capacity >= 2*len+1,
 * NUL-terminated); returns its length. */
size_t tg_bytes_to_printable(const char *bytes, size_t len, char *out);
/* Converts a printable string back to bytes (out capacity >= strlen(s));
 * returns the length or -1 if a character is not in the map. */
long tg_printable_to_bytes(const char *s, size_t slen, char *out);

/* ------------------------------------------------------------- loaders */
int tg_tok_load_gpt2(tg_tokenizer **out, const char *encoder_json, const char *vocab_bpe);
int tg_tok_load_json(tg_tokenizer **out, const char *path);
/* A directory's tokenizer: tokenizer.json, else the hub's vocab.json +
 * merges.txt, else GPT-2's encoder.json + vocab.bpe (gpt2_files.c). */
int tg_tok_load_dir(tg_tokenizer **out, const char *dir);

#endif /* TG_TOK_INTERNAL_H */
