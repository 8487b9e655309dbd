/*
 * minhash.c — near-duplicate detection for ingest: MinHash signatures of
 * character 5-gram shingles, banded into an LSH index, and the 64-bit hash
 * set that also serves exact-duplicate removal.
 *
 * Signatures use one-permutation hashing (each shingle is hashed once and
 * lands in one of K bins, keeping the minimum per bin) with densification of
 * empty bins from pseudo-random donor bins (Shrivastava, 2017). That costs O(1) per
 * shingle instead of O(K), which is what lets ingest keep 100 MB/s with
 * near-duplicate removal on; the match probability of a bin is still the
 * Jaccard similarity of the shingle sets.
 *
 * The index stores only band keys (b 64-bit keys a document), not whole
 * signatures: a document is a near-duplicate when any band of it equals a
 * band of an earlier kept document. b and r are chosen for the threshold the
 * way datasketch does (least false-positive + false-negative area under the
 * S-curve 1-(1-s^r)^b), so the cut is soft around the threshold.
 */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "data/ingest.h"

/* ------------------------------------------------------------ u64 hash set */

/* Open addressing with linear probing; key 0 is the empty marker, so 0 is
 * stored as 1 (one extra collision in 2^64, irrelevant). */
int tg_u64set_init(tg_u64set *s, size_t initial) {
    size_t cap = 1024;
    while (cap < initial * 2) cap <<= 1;
    s->keys = calloc(cap, sizeof(uint64_t));
    if (!s->keys) return tg_error_set(TG_ERR_RUNTIME, "out of memory for a hash set of %zu entries", cap);
    s->cap = cap;
    s->count = 0;
    return TG_OK;
}

void tg_u64set_free(tg_u64set *s) {
    free(s->keys);
    memset(s, 0, sizeof *s);
}

static int u64set_grow(tg_u64set *s) {
    size_t ncap = s->cap * 2;
    uint64_t *nk = calloc(ncap, sizeof(uint64_t));
    if (!nk) return tg_error_set(TG_ERR_RUNTIME, "out of memory growing a hash set to %zu entries", ncap);
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t k = s->keys[i];
        if (!k) continue;
        size_t j = (size_t)(k * 0x9E3779B97F4A7C15ULL >> 7) & (ncap - 1);
        while (nk[j]) j = (j + 1) & (ncap - 1);
        nk[j] = k;
    }
    free(s->keys);
    s->keys = nk;
    s->cap = ncap;
    return TG_OK;
}

int tg_u64set_contains(const tg_u64set *s, uint64_t key) {
    if (!key) key = 1;
    size_t j = (size_t)(key * 0x9E3779B97F4A7C15ULL >> 7) & (s->cap - 1);
    while (s->keys[j]) {
        if (s->keys[j] == key) return 1;
        j = (j + 1) & (s->cap - 1);
    }
    return 0;
}

int tg_u64set_insert(tg_u64set *s, uint64_t key, int *was_present) {
    if (!key) key = 1;
    /* Load factor at most 1/2 keeps probe runs short. */
    if ((s->count + 1) * 2 > s->cap) TG_TRY(u64set_grow(s));
    size_t j = (size_t)(key * 0x9E3779B97F4A7C15ULL >> 7) & (s->cap - 1);
    while (s->keys[j]) {
        if (s->keys[j] == key) {
            *was_present = 1;
            return TG_OK;
        }
        j = (j + 1) & (s->cap - 1);
    }
    s->keys[j] = key;
    s->count++;
    *was_present = 0;
    return TG_OK;
}

size_t tg_u64set_bytes(const tg_u64set *s) { return s->cap * sizeof(uint64_t); }

/* --------------------------------------------------------------- MinHash */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* Next code point of UTF-8 text (already valid), folded for shingling:
 * ASCII upper case to lower, any whitespace run to one space (the caller
 * drops repeats). Returns bytes consumed. */
static inline size_t next_cp(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    if (c < 0x80) {
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        if (c == '\n' || c == '\t' || c == '\r') c = ' ';
        *cp = c;
        return 1;
    }
    size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (k > n) k = n;
    uint32_t v = c;
    for (size_t i = 1; i < k; i++) v = (v << 8) | s[i];
    *cp = v; /* the raw bytes identify the character: no need to decode */
    return k;
}

size_t tg_minhash_signature(const char *text, size_t n, uint64_t sig[TG_MINHASH_K]) {
    const uint64_t EMPTY = UINT64_MAX;
    for (int k = 0; k < TG_MINHASH_K; k++) sig[k] = EMPTY;
    const unsigned char *s = (const unsigned char *)text;
    uint64_t h[TG_SHINGLE];  /* per-character hashes of the last TG_SHINGLE characters */
    size_t have = 0, shingles = 0, i = 0;
    uint32_t prev = 0;
    while (i < n) {
        uint32_t cp;
        i += next_cp(s + i, n - i, &cp);
        if (cp == ' ' && prev == ' ') continue;
        prev = cp;
        memmove(h, h + 1, (TG_SHINGLE - 1) * sizeof h[0]);
        h[TG_SHINGLE - 1] = mix64(cp + 0x9E3779B97F4A7C15ULL);
        if (++have < TG_SHINGLE) continue;
        /* Order-sensitive combination of the window's character hashes. */
        uint64_t x = 0;
        for (int j = 0; j < TG_SHINGLE; j++) x ^= rotl64(h[j], 13 * j + 1);
        x = mix64(x);
        unsigned bin = (unsigned)(x >> (64 - TG_MINHASH_LOG2K));
        uint64_t v = x & ((1ULL << (64 - TG_MINHASH_LOG2K)) - 1);
        if (v < sig[bin]) sig[bin] = v;
        shingles++;
    }
    if (!shingles && have) { /* shorter than one shingle: the whole text is the shingle */
        uint64_t x = 0;
        for (size_t j = 0; j < have; j++) x ^= rotl64(h[TG_SHINGLE - have + j], 13 * (int)j + 1);
        x = mix64(x);
        sig[x >> (64 - TG_MINHASH_LOG2K)] = x & ((1ULL << (64 - TG_MINHASH_LOG2K)) - 1);
        shingles = 1;
    }
    if (!shingles) return 0;
    /* Densification: an empty bin k takes the value of a non-empty donor
     * bin chosen by a hash sequence of (k, attempt) that is the same for
     * every document ("optimal densification", Shrivastava 2017). Two
     * documents then agree on a borrowed bin with the probability they agree
     * on a real one, and, unlike borrowing from the right-hand neighbour,
     * neighbouring empty bins do not all copy the same donor (which made
     * whole bands match between short, barely similar documents). */
    uint64_t real[TG_MINHASH_K];
    memcpy(real, sig, sizeof real);
    for (int k = 0; k < TG_MINHASH_K; k++) {
        if (real[k] != EMPTY) continue;
        uint64_t x = mix64(0xD1B54A32D192ED03ULL ^ (uint64_t)k);
        for (int attempt = 0;; attempt++) {
            unsigned j = (unsigned)(x >> (64 - TG_MINHASH_LOG2K));
            if (real[j] != EMPTY) {
                sig[k] = mix64(real[j] ^ (uint64_t)k); /* salted: a different value per bin */
                break;
            }
            x = mix64(x + (uint64_t)attempt + 1);
        }
    }
    return shingles;
}

/* Probability that two documents of Jaccard similarity s share a band. */
static double band_prob(double s, int b, int r) { return 1.0 - pow(1.0 - pow(s, r), b); }

void tg_lsh_choose(double threshold, int *bands, int *rows) {
    double best = 1e30;
    int bb = 1, rr = TG_MINHASH_K;
    for (int b = 1; b <= TG_MINHASH_K; b++) {
        int r = TG_MINHASH_K / b;
        if (r < 1) break;
        /* Integrate false positives below the threshold and false negatives
         * above it (midpoint rule, 200 steps: plenty for a smooth curve). */
        double fp = 0, fn = 0;
        for (int i = 0; i < 200; i++) {
            double s = threshold * (i + 0.5) / 200;
            fp += band_prob(s, b, r) * threshold / 200;
            double t = threshold + (1 - threshold) * (i + 0.5) / 200;
            fn += (1 - band_prob(t, b, r)) * (1 - threshold) / 200;
        }
        if (fp + fn < best) {
            best = fp + fn;
            bb = b;
            rr = r;
        }
    }
    *bands = bb;
    *rows = rr;
}

void tg_lsh_band_keys(const uint64_t sig[TG_MINHASH_K], int bands, int rows, uint64_t *keys) {
    for (int b = 0; b < bands; b++) {
        uint64_t x = mix64((uint64_t)b + 1);
        for (int r = 0; r < rows; r++) x = mix64(x ^ sig[b * rows + r]) + (uint64_t)r;
        keys[b] = x;
    }
}

int tg_lsh_init(tg_lsh *l, double threshold) {
    memset(l, 0, sizeof *l);
    tg_lsh_choose(threshold, &l->bands, &l->rows);
    l->sets = calloc((size_t)l->bands, sizeof(tg_u64set));
    if (!l->sets) return tg_error_set(TG_ERR_RUNTIME, "out of memory for the near-duplicate index");
    for (int b = 0; b < l->bands; b++) {
        int rc = tg_u64set_init(&l->sets[b], 1024);
        if (rc != TG_OK) {
            tg_lsh_free(l);
            return rc;
        }
    }
    return TG_OK;
}

void tg_lsh_free(tg_lsh *l) {
    if (l->sets)
        for (int b = 0; b < l->bands; b++) tg_u64set_free(&l->sets[b]);
    free(l->sets);
    memset(l, 0, sizeof *l);
}

int tg_lsh_check_insert(tg_lsh *l, const uint64_t *keys, int *is_dup) {
    /* Band tables are kept separate: equal values in different bands mean
     * nothing (the keys are salted by band anyway). */
    for (int b = 0; b < l->bands; b++)
        if (tg_u64set_contains(&l->sets[b], keys[b])) {
            *is_dup = 1;
            return TG_OK;
        }
    for (int b = 0; b < l->bands; b++) {
        int present;
        TG_TRY(tg_u64set_insert(&l->sets[b], keys[b], &present));
    }
    *is_dup = 0;
    return TG_OK;
}

size_t tg_lsh_bytes(const tg_lsh *l) {
    size_t t = 0;
    for (int b = 0; b < l->bands; b++) t += tg_u64set_bytes(&l->sets[b]);
    return t;
}
