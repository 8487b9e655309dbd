/*
 * minhash.c — near-duplicate detection for ingest: MinHash signatures of
 * character 5-gram shingles, banded into an LSH index, and the 64-bit hash
 * set that also serves exact-duplicate removal.
 *
 * Signatures use one-permutation hashing (each shingle is hashed once and
 * lands in one of K bins, keeping the minimum per bin) with densification of
 * empty bins from pseudo-random donor bins (Shrivastava, 2017). That costs O(1) per
 * shingle instead of O(K), which keeps near-duplicate removal from
 * dominating ingest's time (bench/README.md has the figures); the match
 * probability of a bin is still the Jaccard similarity of the shingle sets.
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
    s->keys = tg_big_zalloc(cap * sizeof(uint64_t));
    if (!s->keys) return tg_error_set(TG_ERR_RUNTIME, "out of memory for a hash set of %zu entries", cap);
    s->cap = cap;
    s->count = 0;
    return TG_OK;
}

void tg_u64set_free(tg_u64set *s) {
    tg_big_free(s->keys, s->cap * sizeof(uint64_t));
    memset(s, 0, sizeof *s);
}

static int u64set_grow(tg_u64set *s) {
    size_t ncap = s->cap * 2;
    uint64_t *nk = tg_big_zalloc(ncap * sizeof(uint64_t));
    if (!nk) return tg_error_set(TG_ERR_RUNTIME, "out of memory growing a hash set to %zu entries", ncap);
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t k = s->keys[i];
        if (!k) continue;
        size_t j = (size_t)(k * 0x9E3779B97F4A7C15ULL >> 7) & (ncap - 1);
        while (nk[j]) j = (j + 1) & (ncap - 1);
        nk[j] = k;
    }
    tg_big_free(s->keys, s->cap * sizeof(uint64_t));
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

void tg_u64set_prefetch(const tg_u64set *s, uint64_t key) {
    if (!key) key = 1;
    __builtin_prefetch(&s->keys[(size_t)(key * 0x9E3779B97F4A7C15ULL >> 7) & (s->cap - 1)]);
}

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

/* Hashes of single characters: ASCII from a table (folded: upper case to
 * lower, \t \n \r to space), other characters from their UTF-8 bytes. */
static uint64_t ascii_hash[128];
static int ascii_ready;
/* Densification donors: for each bin a fixed pseudo-random order of the
 * other bins (same for every document), and a per-bin salt. */
static uint8_t donors[TG_MINHASH_K][TG_MINHASH_K];
static uint64_t bin_salt[TG_MINHASH_K];

static void init_ascii(void) {
    uint64_t x = 0x2545F4914F6CDD1DULL;
    for (int k = 0; k < TG_MINHASH_K; k++) {
        for (int j = 0; j < TG_MINHASH_K; j++) donors[k][j] = (uint8_t)j;
        for (int j = TG_MINHASH_K - 1; j > 0; j--) { /* Fisher-Yates with a fixed seed */
            x = mix64(x + 0x9E3779B97F4A7C15ULL);
            int r = (int)(x % (uint64_t)(j + 1));
            uint8_t t = donors[k][j];
            donors[k][j] = donors[k][r];
            donors[k][r] = t;
        }
        bin_salt[k] = mix64(x ^ (uint64_t)k);
    }
    for (int c = 0; c < 128; c++) {
        int f = c;
        if (f >= 'A' && f <= 'Z') f += 32;
        if (f == '\n' || f == '\t' || f == '\r') f = ' ';
        ascii_hash[c] = mix64((uint64_t)f + 0x9E3779B97F4A7C15ULL);
    }
    ascii_ready = 1;
}

size_t tg_minhash_signature(const char *text, size_t n, uint64_t sig[TG_MINHASH_K]) {
    const uint64_t EMPTY = UINT64_MAX;
    const uint64_t VMASK = (1ULL << (64 - TG_MINHASH_LOG2K)) - 1;
    if (!ascii_ready) init_ascii(); /* idempotent: a race writes the same values */
    for (int k = 0; k < TG_MINHASH_K; k++) sig[k] = EMPTY;
    const unsigned char *s = (const unsigned char *)text;
    /* Rolling cyclic-polynomial hash of the last TG_SHINGLE characters:
     * H = rotl(c1, S-1) ^ ... ^ c_S, updated in O(1) per character. */
    uint64_t ring[8] = {0}; /* character hashes, indexed by position & 7 */
    uint64_t H = 0, space = ascii_hash[' '];
    size_t have = 0, shingles = 0, i = 0;
    int prev_space = 0;
    while (i < n) {
        unsigned char c = s[i];
        uint64_t ch;
        if (c < 0x80) {
            ch = ascii_hash[c];
            i++;
            int sp = ch == space;
            if (sp && prev_space) continue; /* whitespace runs count once */
            prev_space = sp;
        } else {
            size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (k > n - i) k = n - i;
            uint64_t v = c;
            for (size_t j = 1; j < k; j++) v = (v << 8) | s[i + j];
            ch = mix64(v ^ 0x632BE59BD9B4E019ULL);
            i += k;
            prev_space = 0;
        }
        H = rotl64(H, 1) ^ ch;
        if (have >= TG_SHINGLE) H ^= rotl64(ring[(have - TG_SHINGLE) & 7], TG_SHINGLE);
        ring[have & 7] = ch;
        if (++have < TG_SHINGLE) continue;
        uint64_t x = mix64(H);
        unsigned bin = (unsigned)(x >> (64 - TG_MINHASH_LOG2K));
        uint64_t v = x & VMASK, cur = sig[bin];
        sig[bin] = v < cur ? v : cur; /* always stored: a branch here mispredicted half the time */
        shingles++;
    }
    if (!shingles && have) { /* shorter than one shingle: the whole text is the shingle */
        uint64_t x = mix64(H);
        sig[x >> (64 - TG_MINHASH_LOG2K)] = x & VMASK;
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
        for (int a = 0; a < TG_MINHASH_K; a++) {
            unsigned j = donors[k][a];
            if (real[j] != EMPTY) {
                sig[k] = (real[j] ^ bin_salt[k]) | ((uint64_t)1 << 63); /* salted, and never a real value */
                break;
            }
        }
    }
    return shingles;
}

/* Probability that two documents of Jaccard similarity s share a band. */
static double band_prob(double s, int b, int r) { return 1.0 - pow(1.0 - pow(s, r), b); }

void tg_lsh_choose(double threshold_in, int *bands, int *rows) {
    /* Candidates are verified, so the S-curve may sit lower than the
     * threshold: that buys recall, the check restores precision. */
    double threshold = threshold_in > 0.2 ? threshold_in - 0.1 : threshold_in;
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

void tg_lsh_block(const uint64_t sig[TG_MINHASH_K], int bands, int rows, uint64_t *block) {
    /* Rows are hashed independently (salted by position) and combined,
     * so the multiplies pipeline instead of forming one long chain. */
    for (int b = 0; b < bands; b++) {
        uint64_t x = (uint64_t)b * 0xA0761D6478BD642FULL;
        for (int r = 0; r < rows; r++) x += mix64(sig[b * rows + r] ^ ((uint64_t)r * 0xE7037ED1A0B428DBULL));
        block[b] = mix64(x);
    }
    uint16_t *s16 = (uint16_t *)(block + bands);
    for (int k = 0; k < TG_MINHASH_K; k++) s16[k] = (uint16_t)(sig[k] ^ (sig[k] >> 29));
}

int tg_lsh_stride(const tg_lsh *l) { return l->bands + TG_MINHASH_K / 4; }


static int band_init(tg_lsh_band *t) {
    t->cap = 1024;
    t->count = 0;
    t->slots = tg_big_zalloc(t->cap * sizeof *t->slots);
    if (!t->slots) return tg_error_set(TG_ERR_RUNTIME, "out of memory for the near-duplicate index");
    return TG_OK;
}

static void band_free(tg_lsh_band *t) { tg_big_free(t->slots, t->cap * sizeof *t->slots); }

static inline uint64_t band_fp(uint64_t key) { return key & 0xFFFFFFFF00000000ULL; }
/* Slot of a fingerprint: its 32 bits multiplied out (the low half of the
 * word is zero: multiplying the whole word would put everything in slot 0). */
static inline size_t fp_slot(uint64_t fp, size_t cap) {
    return (size_t)(((fp >> 32) * 0x9E3779B97F4A7C15ULL) >> 20) & (cap - 1);
}

/* Returns the document of key's fingerprint, or -1. */
static int64_t band_find(const tg_lsh_band *t, uint64_t key) {
    uint64_t fp = band_fp(key);
    size_t j = fp_slot(fp, t->cap);
    while (t->slots[j]) {
        if ((t->slots[j] & 0xFFFFFFFF00000000ULL) == fp) return (int64_t)(t->slots[j] & 0xFFFFFFFFu) - 1;
        j = (j + 1) & (t->cap - 1);
    }
    return -1;
}

/* Slots are placed by the fingerprint (all a rehash knows of the key). */
static int band_put(tg_lsh_band *t, uint64_t key, uint32_t doc) {
    if ((t->count + 1) * 2 > t->cap) {
        size_t ncap = t->cap * 2;
        uint64_t *ns = tg_big_zalloc(ncap * sizeof *ns);
        if (!ns) return tg_error_set(TG_ERR_RUNTIME, "out of memory growing the near-duplicate index to %zu entries", ncap);
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slots[i]) continue;
            size_t j = fp_slot(t->slots[i] & 0xFFFFFFFF00000000ULL, ncap);
            while (ns[j]) j = (j + 1) & (ncap - 1);
            ns[j] = t->slots[i];
        }
        tg_big_free(t->slots, t->cap * sizeof *t->slots);
        t->slots = ns;
        t->cap = ncap;
    }
    uint64_t fp = band_fp(key);
    size_t j = fp_slot(fp, t->cap);
    while (t->slots[j]) {
        if ((t->slots[j] & 0xFFFFFFFF00000000ULL) == fp) return TG_OK; /* the first document keeps it */
        j = (j + 1) & (t->cap - 1);
    }
    t->slots[j] = fp | ((uint64_t)doc + 1);
    t->count++;
    return TG_OK;
}

int tg_lsh_init(tg_lsh *l, double threshold) {
    memset(l, 0, sizeof *l);
    if (!ascii_ready) init_ascii(); /* before any thread hashes */
    l->threshold = threshold;
    tg_lsh_choose(threshold, &l->bands, &l->rows);
    l->tabs = calloc((size_t)l->bands, sizeof *l->tabs);
    if (!l->tabs) return tg_error_set(TG_ERR_RUNTIME, "out of memory for the near-duplicate index");
    for (int b = 0; b < l->bands; b++) {
        int rc = band_init(&l->tabs[b]);
        if (rc != TG_OK) {
            tg_lsh_free(l);
            return rc;
        }
    }
    return TG_OK;
}

void tg_lsh_free(tg_lsh *l) {
    if (l->tabs)
        for (int b = 0; b < l->bands; b++) band_free(&l->tabs[b]);
    free(l->tabs);
    tg_big_free(l->sigs, l->cap_docs * TG_MINHASH_K * sizeof *l->sigs);
    memset(l, 0, sizeof *l);
}

int tg_lsh_check_insert(tg_lsh *l, const uint64_t *block, int *is_dup) {
    const uint16_t *sig = (const uint16_t *)(block + l->bands);
    /* Agreement needed: at least threshold*K equal values (the estimate of
     * the Jaccard similarity); 16-bit values collide by chance 1 in 65536. */
    int need = (int)ceil(l->threshold * TG_MINHASH_K - 1e-9);
    int64_t checked[64];
    int nchecked = 0;
    for (int b = 0; b < l->bands; b++) {
        int64_t d = band_find(&l->tabs[b], block[b]);
        if (d < 0) continue;
        int seen = 0;
        for (int c = 0; c < nchecked; c++) seen |= checked[c] == d;
        if (seen) continue;
        if (nchecked < 64) checked[nchecked++] = d;
        const uint16_t *o = l->sigs + (size_t)d * TG_MINHASH_K;
        int eq = 0;
        for (int k = 0; k < TG_MINHASH_K; k++) eq += o[k] == sig[k];
        if (eq >= need) {
            *is_dup = 1;
            return TG_OK;
        }
    }
    *is_dup = 0;
    if (l->n_docs == l->cap_docs) {
        size_t ncap = l->cap_docs ? l->cap_docs * 2 : 4096;
        uint16_t *ns = tg_big_grow(l->sigs, l->cap_docs * TG_MINHASH_K * sizeof *ns, ncap * TG_MINHASH_K * sizeof *ns);
        if (!ns) return tg_error_set(TG_ERR_RUNTIME, "out of memory for %zu near-duplicate signatures", ncap);
        l->sigs = ns;
        l->cap_docs = ncap;
    }
    if (l->n_docs >= UINT32_MAX - 1) return tg_error_set(TG_ERR_RUNTIME, "near-duplicate index full (2^32 documents)");
    memcpy(l->sigs + l->n_docs * TG_MINHASH_K, sig, TG_MINHASH_K * sizeof *sig);
    for (int b = 0; b < l->bands; b++) TG_TRY(band_put(&l->tabs[b], block[b], (uint32_t)l->n_docs));
    l->n_docs++;
    return TG_OK;
}

size_t tg_lsh_bytes(const tg_lsh *l) {
    size_t t = l->cap_docs * TG_MINHASH_K * sizeof(uint16_t);
    for (int b = 0; b < l->bands; b++) t += l->tabs[b].cap * sizeof(uint64_t);
    return t;
}

void tg_lsh_prefetch(const tg_lsh *l, const uint64_t *block) {
    for (int b = 0; b < l->bands; b++)
        __builtin_prefetch(&l->tabs[b].slots[fp_slot(band_fp(block[b]), l->tabs[b].cap)]);
}
