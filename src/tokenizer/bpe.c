/*
 * bpe.c — the tokenizer in memory (vocabulary, merge table, string index),
 * byte-level BPE encoding and decoding, and the public tg_tokenizer_* API.
 *
 * Encoding: the text is split at special tokens (when allowed), each part is
 * cut into pre-tokens (pretok.c), and each pre-token's bytes are merged pair
 * by pair, always the pair of lowest merge rank (leftmost on ties) — GPT-2's
 * bpe() and Hugging Face's BPE model give the same result. A cache shared
 * by all encoders of a tokenizer maps frequent pre-tokens to their ids, so
 * most words cost one hash lookup; long pre-tokens use a heap so a huge
 * word stays O(n log n).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static tg_word_cache *word_cache_new(void); /* the encoders' shared cache, below */
static void word_cache_free(tg_word_cache *c);

/* ------------------------------------------------------------ hashing */

static inline uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}

/* --------------------------------------------------------- the vocabulary */

int tg_tok_create(tg_tokenizer **out) {
    tg_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    t->mcap = 1024;
    t->mkey = malloc(t->mcap * sizeof *t->mkey);
    t->mval = malloc(t->mcap * sizeof *t->mval);
    t->scap = 1024;
    t->sidx = malloc(t->scap * sizeof *t->sidx);
    if (!t->mkey || !t->mval || !t->sidx) {
        tg_tokenizer_free(t);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    memset(t->mkey, 0xFF, t->mcap * sizeof *t->mkey);
    memset(t->sidx, 0xFF, t->scap * sizeof *t->sidx);
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    t->cache = word_cache_new(); /* none: encoders merge every word, still correct */
    *out = t;
    return TG_OK;
}

void tg_tokenizer_free(tg_tokenizer *t) {
    if (!t) return;
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->special);
    free(t->mkey);
    free(t->mval);
    free(t->merge_left);
    free(t->merge_right);
    free(t->sidx);
    free(t->specials);
    word_cache_free(t->cache);
    free(t);
}

static void sidx_insert(int32_t *idx, size_t cap, const tg_tokenizer *t, int32_t id) {
    size_t h = hash_bytes(t->arena + t->off[id], t->len[id]) & (cap - 1);
    while (idx[h] >= 0) h = (h + 1) & (cap - 1);
    idx[h] = id;
}

int32_t tg_tok_find(const tg_tokenizer *t, const char *bytes, size_t len) {
    size_t h = hash_bytes(bytes, len) & (t->scap - 1);
    for (;;) {
        int32_t id = t->sidx[h];
        if (id < 0) return -1;
        if (t->len[id] == len && memcmp(t->arena + t->off[id], bytes, len) == 0) return id;
        h = (h + 1) & (t->scap - 1);
    }
}

int tg_tok_add(tg_tokenizer *t, const char *bytes, size_t len, int special, int32_t *id) {
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 512;
        uint32_t *off = realloc(t->off, (size_t)cap * sizeof *off);
        if (off) t->off = off;
        uint32_t *ln = realloc(t->len, (size_t)cap * sizeof *ln);
        if (ln) t->len = ln;
        uint8_t *sp = realloc(t->special, (size_t)cap);
        if (sp) t->special = sp;
        if (!off || !ln || !sp) return tg_error_set(TG_ERR_RUNTIME, "out of memory (vocabulary)");
        t->cap = cap;
    }
    if (t->arena_len + len + 1 > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap * 2 : 65536;
        while (cap < t->arena_len + len + 1) cap *= 2;
        char *a = realloc(t->arena, cap);
        if (!a) return tg_error_set(TG_ERR_RUNTIME, "out of memory (vocabulary)");
        t->arena = a;
        t->arena_cap = cap;
    }
    if ((size_t)(t->n + 1) * 2 > t->scap) {
        size_t cap = t->scap * 2;
        int32_t *idx = malloc(cap * sizeof *idx);
        if (!idx) return tg_error_set(TG_ERR_RUNTIME, "out of memory (vocabulary)");
        memset(idx, 0xFF, cap * sizeof *idx);
        for (int i = 0; i < t->n; i++) sidx_insert(idx, cap, t, i);
        free(t->sidx);
        t->sidx = idx;
        t->scap = cap;
    }
    int32_t i = t->n++;
    t->off[i] = (uint32_t)t->arena_len;
    t->len[i] = (uint32_t)len;
    t->special[i] = (uint8_t)(special != 0);
    memcpy(t->arena + t->arena_len, bytes, len);
    t->arena_len += len;
    t->arena[t->arena_len++] = 0; /* NUL after each token: special names are C strings */
    sidx_insert(t->sidx, t->scap, t, i);
    if (len == 1 && !special && t->byte_id[(uint8_t)bytes[0]] < 0) t->byte_id[(uint8_t)bytes[0]] = i;
    if (id) *id = i;
    return TG_OK;
}

static void merge_insert(uint64_t *keys, uint64_t *vals, size_t cap, uint64_t key, uint64_t val) {
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 29) & (cap - 1);
    while (keys[h] != UINT64_MAX) h = (h + 1) & (cap - 1);
    keys[h] = key;
    vals[h] = val;
}

int tg_tok_add_merge(tg_tokenizer *t, int32_t left, int32_t right, int32_t merged) {
    uint32_t r;
    int32_t m;
    if (tg_tok_merge(t, left, right, &r, &m)) return TG_OK; /* a repeated merge keeps its first rank */
    if ((size_t)(t->n_merges + 1) * 2 > t->mcap) {
        size_t cap = t->mcap * 2;
        uint64_t *k = malloc(cap * sizeof *k), *v = malloc(cap * sizeof *v);
        if (!k || !v) {
            free(k);
            free(v);
            return tg_error_set(TG_ERR_RUNTIME, "out of memory (merges)");
        }
        memset(k, 0xFF, cap * sizeof *k);
        for (size_t i = 0; i < t->mcap; i++)
            if (t->mkey[i] != UINT64_MAX) merge_insert(k, v, cap, t->mkey[i], t->mval[i]);
        free(t->mkey);
        free(t->mval);
        t->mkey = k;
        t->mval = v;
        t->mcap = cap;
    }
    if (t->n_merges == t->merges_cap) {
        int cap = t->merges_cap ? t->merges_cap * 2 : 1024;
        int32_t *l = realloc(t->merge_left, (size_t)cap * sizeof *l);
        if (l) t->merge_left = l;
        int32_t *rr = realloc(t->merge_right, (size_t)cap * sizeof *rr);
        if (rr) t->merge_right = rr;
        if (!l || !rr) return tg_error_set(TG_ERR_RUNTIME, "out of memory (merges)");
        t->merges_cap = cap;
    }
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    merge_insert(t->mkey, t->mval, t->mcap, key, (uint64_t)(uint32_t)t->n_merges << 32 | (uint32_t)merged);
    t->merge_left[t->n_merges] = left;
    t->merge_right[t->n_merges] = right;
    t->n_merges++;
    return TG_OK;
}

int tg_tok_finish(tg_tokenizer *t, const char *what) {
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0)
            return tg_error_set(TG_ERR_INPUT, "%s: no token for byte 0x%02x (not a byte-level BPE vocabulary)", what, b);
    free(t->specials);
    t->specials = NULL;
    t->n_specials = 0;
    int ns = 0;
    for (int i = 0; i < t->n; i++) ns += t->special[i];
    if (ns) {
        t->specials = malloc((size_t)ns * sizeof *t->specials);
        if (!t->specials) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
        for (int i = 0; i < t->n; i++)
            if (t->special[i]) t->specials[t->n_specials++] = i;
        /* longest first, so a special that is a prefix of another never wins */
        for (int a = 1; a < ns; a++) {
            int32_t x = t->specials[a];
            int b = a - 1;
            while (b >= 0 && t->len[t->specials[b]] < t->len[x]) {
                t->specials[b + 1] = t->specials[b];
                b--;
            }
            t->specials[b + 1] = x;
        }
    }
    return TG_OK;
}

/* --------------------------------------------------------- the public API */

int tg_tokenizer_load(tg_tokenizer **out, const char *path) {
    *out = NULL;
    if (tg_path_is_dir(path)) return tg_tok_load_dir(out, path);
    if (!tg_path_exists(path)) return tg_error_set(TG_ERR_INPUT, "%s: tokenizer not found", path);
    return tg_tok_load_json(out, path);
}

const uint8_t *tg_tokenizer_sha256(const tg_tokenizer *t) { return t->sha256; }
int tg_tokenizer_vocab_size(const tg_tokenizer *t) { return t->n; }

int32_t tg_tokenizer_token_id(const tg_tokenizer *t, const char *special) {
    int32_t id = tg_tok_find(t, special, strlen(special));
    return id >= 0 && t->special[id] ? id : -1;
}

int tg_tokenizer_add_special(tg_tokenizer *t, const char *tok, int32_t *id) {
    size_t len = strlen(tok);
    if (len == 0) return tg_error_set(TG_ERR_INPUT, "special token: empty string");
    int32_t have = tg_tok_find(t, tok, len);
    if (have >= 0 && t->special[have]) {
        if (id) *id = have;
        return TG_OK;
    }
    int32_t nid;
    TG_TRY(tg_tok_add(t, tok, len, 1, &nid));
    TG_TRY(tg_tok_finish(t, "tokenizer"));
    if (id) *id = nid;
    return TG_OK;
}

const char *tg_tokenizer_token_bytes(const tg_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->len[id];
    return t->arena + t->off[id];
}

int tg_tokenizer_decode(const tg_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len) {
    *text = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n)
            return tg_error_set(TG_ERR_INPUT, "decode: token id %d at position %zu is outside the vocabulary (0..%d)",
                                ids[i], i, t->n - 1);
        total += t->len[ids[i]];
    }
    char *s = malloc(total + 1);
    if (!s) return tg_error_set(TG_ERR_RUNTIME, "out of memory decoding %zu tokens", n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(s + k, t->arena + t->off[ids[i]], t->len[ids[i]]);
        k += t->len[ids[i]];
    }
    s[k] = 0;
    *text = s;
    if (len) *len = k;
    return TG_OK;
}

/* ---------------------------------------------------------------- encoder */

#define SMALL_WORD 128          /* longer pre-tokens use the heap merge */
#define CACHE_IDS 11 /* ids an entry holds: a 64-byte entry, one cache line */

/*
 * The pre-token cache, one per tokenizer and shared by all its encoders (so
 * by all threads): a word merged once is a lookup for every thread after.
 * With one cache per encoder each thread merged every word again, so more
 * threads did more total work (bench/README.md has the figure).
 *
 * Open addressing in a fixed table (no resize: nothing to stop readers
 * for); inserts stop at 3/4 full, by when the frequent words are in. An
 * entry is claimed by a CAS of its tag from 0 to CACHE_BUSY, written, then
 * published by storing the final tag with release order; a reader loads the
 * tag with acquire order and reads the rest only when it is final, so no
 * entry is read while being written, and none is written twice.
 */
#define CACHE_BUSY (1u << 30)

typedef struct {
    _Atomic uint32_t tag; /* 0 empty, CACHE_BUSY being written, else len | nids << 8 | 1 << 31 */
    int32_t ids[CACHE_IDS];
    uint64_t w0, w1;      /* the pre-token's 2..16 bytes, zero padded */
} cache_entry;
_Static_assert(sizeof(cache_entry) == 64, "a cache entry is one cache line");

struct tg_word_cache {
    cache_entry *e;       /* tg_big_zalloc: pages are zero until first written */
    size_t cap;           /* power of two */
    _Atomic size_t used;
};

#define CACHE_ENTRIES ((size_t)1 << 19) /* 32 MB of address space */

static tg_word_cache *word_cache_new(void) {
    tg_word_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cap = CACHE_ENTRIES;
    c->e = tg_big_zalloc(c->cap * sizeof(cache_entry));
    if (!c->e) {
        free(c);
        return NULL;
    }
    atomic_init(&c->used, 0);
    return c;
}

static void word_cache_free(tg_word_cache *c) {
    if (!c) return;
    tg_big_free(c->e, c->cap * sizeof(cache_entry));
    free(c);
}

struct tg_encoder {
    const tg_tokenizer *t;
    int32_t *out;
    size_t out_n, out_cap;
    /* merge scratch (cap entries each) */
    int32_t *sym, *mid, *nxt, *prv;
    uint32_t *rank;
    uint64_t *heap;
    size_t cap;
    size_t *snext; /* (n_specials) next occurrence of each special token */
    int snext_cap;
    tg_word_cache *cache; /* the tokenizer's; NULL: no cache */
};

int tg_encoder_new(tg_encoder **out, const tg_tokenizer *t) {
    tg_encoder *e = calloc(1, sizeof *e);
    if (!e) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    e->t = t;
    e->cache = t->cache;
    *out = e;
    return TG_OK;
}

void tg_encoder_free(tg_encoder *e) {
    if (!e) return;
    free(e->out);
    free(e->sym);
    free(e->mid);
    free(e->nxt);
    free(e->prv);
    free(e->rank);
    free(e->heap);
    free(e->snext);
    free(e);
}

static int grow_out(tg_encoder *e, size_t extra) {
    if (e->out_n + extra <= e->out_cap) return TG_OK;
    size_t cap = e->out_cap ? e->out_cap : 1024;
    while (cap < e->out_n + extra) cap *= 2;
    int32_t *o = realloc(e->out, cap * sizeof *o);
    if (!o) return tg_error_set(TG_ERR_RUNTIME, "out of memory (encoding)");
    e->out = o;
    e->out_cap = cap;
    return TG_OK;
}

static int grow_scratch(tg_encoder *e, size_t n) {
    if (n <= e->cap) return TG_OK;
    size_t cap = e->cap ? e->cap : 256;
    while (cap < n) cap *= 2;
    free(e->sym);
    free(e->mid);
    free(e->nxt);
    free(e->prv);
    free(e->rank);
    free(e->heap);
    e->sym = malloc(cap * sizeof *e->sym);
    e->mid = malloc(cap * sizeof *e->mid);
    e->nxt = malloc(cap * sizeof *e->nxt);
    e->prv = malloc(cap * sizeof *e->prv);
    e->rank = malloc(cap * sizeof *e->rank);
    e->heap = malloc(3 * cap * sizeof *e->heap);
    if (!e->sym || !e->mid || !e->nxt || !e->prv || !e->rank || !e->heap) {
        e->cap = 0;
        return tg_error_set(TG_ERR_RUNTIME, "out of memory (encoding a %zu-byte word)", n);
    }
    e->cap = cap;
    return TG_OK;
}

/* Short words: arrays, the pair ranks kept beside the symbols so each merge
 * re-ranks only its two neighbours. Writes the ids to e->sym[0..*n). */
static void merge_small(tg_encoder *e, const uint8_t *w, size_t n0, size_t *nout) {
    const tg_tokenizer *t = e->t;
    int32_t *sym = e->sym, *mid = e->mid;
    uint32_t *rank = e->rank;
    size_t n = n0;
    for (size_t k = 0; k < n; k++) sym[k] = t->byte_id[w[k]];
    for (size_t k = 0; k + 1 < n; k++)
        if (!tg_tok_merge(t, sym[k], sym[k + 1], &rank[k], &mid[k])) rank[k] = UINT32_MAX;
    while (n > 1) {
        uint32_t best = UINT32_MAX;
        size_t bi = 0;
        for (size_t k = 0; k + 1 < n; k++)
            if (rank[k] < best) best = rank[k], bi = k;
        if (best == UINT32_MAX) break;
        sym[bi] = mid[bi];
        size_t tail = n - bi - 2;
        memmove(sym + bi + 1, sym + bi + 2, tail * sizeof *sym);
        memmove(rank + bi + 1, rank + bi + 2, tail * sizeof *rank);
        memmove(mid + bi + 1, mid + bi + 2, tail * sizeof *mid);
        n--;
        if (bi > 0 && !tg_tok_merge(t, sym[bi - 1], sym[bi], &rank[bi - 1], &mid[bi - 1])) rank[bi - 1] = UINT32_MAX;
        if (bi + 1 < n && !tg_tok_merge(t, sym[bi], sym[bi + 1], &rank[bi], &mid[bi])) rank[bi] = UINT32_MAX;
    }
    *nout = n;
}

/* Binary min-heap of (rank << 32 | left position). */
static void heap_push(uint64_t *h, size_t *hn, uint64_t v) {
    size_t i = (*hn)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *hn) {
    uint64_t top = h[0], v = h[--(*hn)];
    size_t i = 0, n = *hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = v;
    return top;
}

/* Long words: a linked list of symbols and a heap of candidate pairs keyed
 * by (rank, original position), so the same pair is chosen as in
 * merge_small (lowest rank, leftmost) in O(n log n). Stale heap entries are
 * recognised because a rank names exactly one (left, right) pair. */
static void merge_large(tg_encoder *e, const uint8_t *w, size_t n, size_t *nout) {
    const tg_tokenizer *t = e->t;
    int32_t *sym = e->sym, *nxt = e->nxt, *prv = e->prv;
    uint64_t *h = e->heap;
    size_t hn = 0;
    for (size_t k = 0; k < n; k++) {
        sym[k] = t->byte_id[w[k]];
        nxt[k] = k + 1 < n ? (int32_t)(k + 1) : -1;
        prv[k] = (int32_t)k - 1;
    }
    uint32_t r;
    int32_t m;
    for (size_t k = 0; k + 1 < n; k++)
        if (tg_tok_merge(t, sym[k], sym[k + 1], &r, &m)) heap_push(h, &hn, (uint64_t)r << 32 | k);
    while (hn) {
        uint64_t top = heap_pop(h, &hn);
        int32_t p = (int32_t)(uint32_t)top;
        uint32_t want = (uint32_t)(top >> 32);
        if (sym[p] < 0 || nxt[p] < 0) continue;
        if (!tg_tok_merge(t, sym[p], sym[nxt[p]], &r, &m) || r != want) continue;
        int32_t q = nxt[p];
        sym[p] = m;
        sym[q] = -1;
        nxt[p] = nxt[q];
        if (nxt[q] >= 0) prv[nxt[q]] = p;
        if (prv[p] >= 0 && tg_tok_merge(t, sym[prv[p]], sym[p], &r, &m))
            heap_push(h, &hn, (uint64_t)r << 32 | (uint32_t)prv[p]);
        if (nxt[p] >= 0 && tg_tok_merge(t, sym[p], sym[nxt[p]], &r, &m))
            heap_push(h, &hn, (uint64_t)r << 32 | (uint32_t)p);
    }
    size_t k = 0;
    for (int32_t p = 0; p >= 0; p = nxt[p]) sym[k++] = sym[p];
    *nout = k;
}

static inline uint64_t cache_hash(uint64_t w0, uint64_t w1, size_t len) {
    uint64_t h = w0 * 0x9E3779B97F4A7C15ull ^ (w1 + len) * 0xC2B2AE3D27D4EB4Full;
    return h ^ (h >> 29) ^ (h >> 47);
}

/* Remembers word -> ids (it is a cache: a full table or a long id list is
 * simply not stored). */
static void cache_put(tg_word_cache *c, uint64_t w0, uint64_t w1, size_t len, uint64_t hash, const int32_t *ids,
                      size_t n) {
    if (n > CACHE_IDS || atomic_load_explicit(&c->used, memory_order_relaxed) >= c->cap / 4 * 3) return;
    uint32_t final_tag = (uint32_t)len | (uint32_t)n << 8 | 1u << 31;
    size_t mask = c->cap - 1, h = hash & mask;
    for (size_t probe = 0; probe < c->cap; probe++, h = (h + 1) & mask) {
        cache_entry *x = &c->e[h];
        uint32_t tag = atomic_load_explicit(&x->tag, memory_order_acquire);
        if (tag == 0) {
            if (atomic_compare_exchange_strong_explicit(&x->tag, &tag, CACHE_BUSY, memory_order_acquire,
                                                        memory_order_acquire)) {
                x->w0 = w0;
                x->w1 = w1;
                memcpy(x->ids, ids, n * sizeof *ids);
                atomic_store_explicit(&x->tag, final_tag, memory_order_release);
                atomic_fetch_add_explicit(&c->used, 1, memory_order_relaxed);
                return;
            }
            /* another thread claimed it first: tag now holds its value */
        }
        if (tag != CACHE_BUSY && x->w0 == w0 && x->w1 == w1 && (tag & 0xFF) == len) return; /* already there */
    }
}

/* A pre-token waiting to be encoded: its bytes as two zero-padded words
 * (cacheable ones: 2..16 bytes) and its hash, computed a batch ahead so the
 * cache slot can be prefetched — a lookup in a cache of 100k+ words is
 * otherwise a main-memory miss, most of the encoding time. */
typedef struct {
    size_t start, len;
    uint64_t w0, w1, hash;
} pending_word;

/* Loads len <= 16 bytes at w zero-padded (end: end of the readable text). */
static inline void load_word(const uint8_t *w, size_t len, const uint8_t *end, uint64_t *w0, uint64_t *w1) {
    if (w + 16 <= end) {
        memcpy(w0, w, 8);
        memcpy(w1, w + 8, 8);
    } else {
        uint8_t tmp[16] = {0};
        memcpy(tmp, w, len);
        memcpy(w0, tmp, 8);
        memcpy(w1, tmp + 8, 8);
    }
    if (len < 8) *w0 &= (1ull << (8 * len)) - 1;
    if (len <= 8) *w1 = 0;
    else if (len < 16) *w1 &= (1ull << (8 * (len - 8))) - 1;
}

/* Encodes one pre-token, appending to e->out. */
static inline int encode_word(tg_encoder *e, const uint8_t *w, const pending_word *pw) {
    const tg_tokenizer *t = e->t;
    size_t len = pw->len;
    if (e->out_n + 3 > e->out_cap) TG_TRY(grow_out(e, 3));
    if (len == 1) {
        e->out[e->out_n++] = t->byte_id[w[0]];
        return TG_OK;
    }
    int cacheable = e->cache && len <= 16;
    if (cacheable) {
        const tg_word_cache *c = e->cache;
        size_t mask = c->cap - 1, h = pw->hash & mask;
        for (;;) {
            const cache_entry *x = &c->e[h];
            uint32_t tag = atomic_load_explicit(&x->tag, memory_order_acquire);
            if (!tag) break;
            if (tag != CACHE_BUSY && x->w0 == pw->w0 && x->w1 == pw->w1 && (tag & 0xFF) == len) {
                size_t n = (tag >> 8) & 0xFF;
                if (n > 3) TG_TRY(grow_out(e, n));
                int32_t *o = e->out + e->out_n;
                if (n <= 3) {
                    o[0] = x->ids[0];
                    o[1] = x->ids[1];
                    o[2] = x->ids[2];
                } else {
                    memcpy(o, x->ids, n * sizeof *o);
                }
                e->out_n += n;
                return TG_OK;
            }
            h = (h + 1) & mask;
        }
    }
    TG_TRY(grow_scratch(e, len));
    size_t n;
    if (len <= SMALL_WORD) merge_small(e, w, len, &n);
    else merge_large(e, w, len, &n);
    TG_TRY(grow_out(e, n));
    memcpy(e->out + e->out_n, e->sym, n * sizeof *e->sym);
    e->out_n += n;
    if (cacheable) cache_put(e->cache, pw->w0, pw->w1, len, pw->hash, e->sym, n);
    return TG_OK;
}

#define BATCH 16

static int encode_ordinary(tg_encoder *e, const uint8_t *s, size_t n) {
    pending_word q[BATCH];
    size_t i = 0;
    while (i < n) {
        int k = 0;
        for (; k < BATCH && i < n; k++) {
            size_t j = tg_pretok_next(s, n, i);
            pending_word *p = &q[k];
            p->start = i;
            p->len = j - i;
            if (e->cache && p->len >= 2 && p->len <= 16) {
                load_word(s + i, p->len, s + n, &p->w0, &p->w1);
                p->hash = cache_hash(p->w0, p->w1, p->len);
                __builtin_prefetch(&e->cache->e[p->hash & (e->cache->cap - 1)]);
            }
            i = j;
        }
        for (int m = 0; m < k; m++) TG_TRY(encode_word(e, s + q[m].start, &q[m]));
    }
    return TG_OK;
}

int tg_encoder_encode(tg_encoder *e, const char *text, size_t len, int allow_special, const int32_t **ids,
                      size_t *n) {
    const tg_tokenizer *t = e->t;
    const uint8_t *s = (const uint8_t *)text;
    e->out_n = 0;
    size_t bad = tg_utf8_valid_prefix(s, len);
    if (bad != len) return tg_error_set(TG_ERR_INPUT, "encode: invalid UTF-8 at byte %zu of the text", bad);
    if (!allow_special || t->n_specials == 0) {
        TG_TRY(encode_ordinary(e, s, len));
    } else {
        /* next occurrence of each special at or after the cursor, recomputed
         * only when the cursor passes it */
        int ns = t->n_specials;
        if (ns > e->snext_cap) {
            size_t *g = realloc(e->snext, (size_t)ns * sizeof *g);
            if (!g) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
            e->snext = g;
            e->snext_cap = ns;
        }
        size_t *next = e->snext;
        for (int k = 0; k < ns; k++) next[k] = (size_t)-1 - 1; /* unknown */
        size_t pos = 0;
        while (pos < len) {
            size_t best = len;
            int bk = -1;
            for (int k = 0; k < ns; k++) {
                if (next[k] == (size_t)-1) continue; /* none left */
                if (next[k] == (size_t)-1 - 1 || next[k] < pos) {
                    const char *p = memmem(text + pos, len - pos, t->arena + t->off[t->specials[k]],
                                           t->len[t->specials[k]]);
                    next[k] = p ? (size_t)(p - text) : (size_t)-1;
                    if (!p) continue;
                }
                if (next[k] < best) best = next[k], bk = k; /* specials are longest first: ties keep the longest */
            }
            TG_TRY(encode_ordinary(e, s + pos, best - pos));
            if (bk < 0) break;
            TG_TRY(grow_out(e, 1));
            e->out[e->out_n++] = t->specials[bk];
            pos = best + t->len[t->specials[bk]];
        }
    }
    *ids = e->out;
    *n = e->out_n;
    return TG_OK;
}

int tg_tokenizer_encode(const tg_tokenizer *t, const char *text, size_t len, int allow_special, int32_t **ids,
                        size_t *n) {
    *ids = NULL;
    *n = 0;
    tg_encoder *e = NULL;
    TG_TRY(tg_encoder_new(&e, t)); /* it uses the tokenizer's word cache: nothing to set up */
    const int32_t *out;
    size_t cnt;
    int rc = tg_encoder_encode(e, text, len, allow_special, &out, &cnt);
    if (rc == TG_OK) {
        /* hand the buffer over instead of copying it */
        *ids = e->out ? e->out : malloc(sizeof(int32_t));
        if (!*ids) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
        e->out = NULL;
        *n = cnt;
    }
    tg_encoder_free(e);
    return rc;
}
