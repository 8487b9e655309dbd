/*
 * bpe_train.c — byte-level BPE training.
 *
 * Feeding counts pre-tokens (GPT-2's rule, pretok.c) in a hash table, so the
 * corpus streams through and memory grows only with the number of distinct
 * words. Finishing runs the merges:
 *   - every distinct word is a sequence of symbols (token ids) with a count;
 *   - each adjacent pair has a total count (over words, times word counts)
 *     and a list of the words it may occur in;
 *   - a max-heap orders pairs by (count desc, left id asc, right id asc);
 *     entries can be stale: a popped entry whose count differs from the
 *     pair's current count is re-queued with the current count (a pair's
 *     count only falls, except when a merge re-creates an existing token,
 *     which pushes fresh entries);
 *   - merging (a, b) -> X rewrites only the words in the pair's list, left to
 *     right without overlap, and adjusts only the pairs that involve a, b or
 *     X (every other adjacent pair is the same before and after).
 * The result equals recounting every pair from scratch at every step
 * (tests/bpe_reference.mjs does exactly that; the tests compare the two).
 */
#include <string.h>

#include "tokenizer/tok_internal.h"

#define N_SPECIAL 3
static const char *const special_names[N_SPECIAL] = {TG_TOKEN_ENDOFTEXT, TG_TOKEN_IM_START, TG_TOKEN_IM_END};

typedef struct {
    uint64_t hash; /* 0: empty */
    uint64_t off;  /* bytes in the arena */
    uint32_t len;
    int64_t count;
} word_slot;

struct tg_bpe_trainer {
    word_slot *slots;
    size_t cap, used;
    char *arena;
    size_t arena_len, arena_cap;
};

static inline uint64_t hash_word(const uint8_t *s, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x100000001B3ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return h | 1;
}

int tg_bpe_trainer_new(tg_bpe_trainer **out) {
    tg_bpe_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    tr->cap = 1 << 16;
    tr->slots = calloc(tr->cap, sizeof *tr->slots);
    if (!tr->slots) {
        free(tr);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    *out = tr;
    return TG_OK;
}

void tg_bpe_trainer_free(tg_bpe_trainer *tr) {
    if (!tr) return;
    free(tr->slots);
    free(tr->arena);
    free(tr);
}

static int add_word(tg_bpe_trainer *tr, const uint8_t *w, size_t len, uint64_t hash, int64_t count) {
    if ((tr->used + 1) * 2 > tr->cap) {
        size_t cap = tr->cap * 2;
        word_slot *s = calloc(cap, sizeof *s);
        if (!s) return tg_error_set(TG_ERR_RUNTIME, "out of memory (%zu distinct words)", tr->used);
        for (size_t i = 0; i < tr->cap; i++) {
            if (!tr->slots[i].hash) continue;
            size_t h = tr->slots[i].hash & (cap - 1);
            while (s[h].hash) h = (h + 1) & (cap - 1);
            s[h] = tr->slots[i];
        }
        free(tr->slots);
        tr->slots = s;
        tr->cap = cap;
    }
    size_t h = hash & (tr->cap - 1);
    for (;;) {
        word_slot *s = &tr->slots[h];
        if (!s->hash) break;
        if (s->hash == hash && s->len == len && memcmp(tr->arena + s->off, w, len) == 0) {
            s->count += count;
            return TG_OK;
        }
        h = (h + 1) & (tr->cap - 1);
    }
    if (tr->arena_len + len > tr->arena_cap) {
        size_t cap = tr->arena_cap ? tr->arena_cap * 2 : (1 << 20);
        while (cap < tr->arena_len + len) cap *= 2;
        char *a = realloc(tr->arena, cap);
        if (!a) return tg_error_set(TG_ERR_RUNTIME, "out of memory (%zu distinct words)", tr->used);
        tr->arena = a;
        tr->arena_cap = cap;
    }
    word_slot *s = &tr->slots[h];
    s->hash = hash;
    s->off = tr->arena_len;
    s->len = (uint32_t)len;
    s->count = count;
    memcpy(tr->arena + tr->arena_len, w, len);
    tr->arena_len += len;
    tr->used++;
    return TG_OK;
}

int tg_bpe_trainer_feed(tg_bpe_trainer *tr, const char *text, size_t len) {
    const uint8_t *s = (const uint8_t *)text;
    size_t bad = tg_utf8_valid_prefix(s, len);
    if (bad != len) return tg_error_set(TG_ERR_INPUT, "invalid UTF-8 at byte %zu of the text", bad);
    size_t i = 0;
    while (i < len) {
        size_t j = tg_pretok_next(s, len, i);
        TG_TRY(add_word(tr, s + i, j - i, hash_word(s + i, j - i), 1));
        i = j;
    }
    return TG_OK;
}

int tg_bpe_trainer_merge_counts(tg_bpe_trainer *dst, const tg_bpe_trainer *src) {
    for (size_t i = 0; i < src->cap; i++) {
        const word_slot *s = &src->slots[i];
        if (s->hash) TG_TRY(add_word(dst, (const uint8_t *)src->arena + s->off, s->len, s->hash, s->count));
    }
    return TG_OK;
}

/* ------------------------------------------------------------- merging */

typedef struct {
    int32_t left, right;
    int64_t count;
    int32_t *words; /* words the pair may occur in (may hold stale entries) */
    int32_t nwords, wcap;
    int32_t last_word; /* last word appended, to skip repeats */
    int32_t touched;   /* step that last raised the count */
} pair_info;

typedef struct {
    int32_t *sym; /* symbols (into the trainer's symbol arena) */
    int32_t len;
    int64_t count;
    int32_t stamp; /* last merge step that rewrote this word */
} word_info;

typedef struct {
    int64_t count;
    int32_t left, right, pair;
} heap_entry;

typedef struct {
    pair_info *pairs;
    int32_t npairs, pcap;
    uint64_t *keys; /* pair map: key -> index, UINT64_MAX empty */
    int32_t *vals;
    size_t mcap;
    heap_entry *heap;
    size_t hn, hcap;
    int32_t *raised; /* pairs raised during the current step */
    int32_t nraised, rcap;
} merge_state;

/* a before b in the max-heap */
static inline int heap_before(const heap_entry *a, const heap_entry *b) {
    if (a->count != b->count) return a->count > b->count;
    if (a->left != b->left) return a->left < b->left;
    return a->right < b->right;
}

static int heap_push(merge_state *m, int32_t pair) {
    if (m->hn == m->hcap) {
        size_t cap = m->hcap ? m->hcap * 2 : 65536;
        heap_entry *h = realloc(m->heap, cap * sizeof *h);
        if (!h) return tg_error_set(TG_ERR_RUNTIME, "out of memory (pair queue)");
        m->heap = h;
        m->hcap = cap;
    }
    heap_entry e = {m->pairs[pair].count, m->pairs[pair].left, m->pairs[pair].right, pair};
    size_t i = m->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_before(&e, &m->heap[p])) break;
        m->heap[i] = m->heap[p];
        i = p;
    }
    m->heap[i] = e;
    return TG_OK;
}

static heap_entry heap_pop(merge_state *m) {
    heap_entry top = m->heap[0], v = m->heap[--m->hn];
    size_t i = 0, n = m->hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(&m->heap[c + 1], &m->heap[c])) c++;
        if (!heap_before(&m->heap[c], &v)) break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (n) m->heap[i] = v;
    return top;
}

static inline size_t pair_slot(uint64_t key, size_t mask) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 23) & mask; }

/* Index of pair (l, r), created with count 0 when absent; -1 on OOM. */
static int32_t pair_get(merge_state *m, int32_t l, int32_t r) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    size_t mask = m->mcap - 1, h = pair_slot(key, mask);
    while (m->keys[h] != UINT64_MAX) {
        if (m->keys[h] == key) return m->vals[h];
        h = (h + 1) & mask;
    }
    if ((size_t)(m->npairs + 1) * 2 > m->mcap) {
        size_t cap = m->mcap * 2;
        uint64_t *k = malloc(cap * sizeof *k);
        int32_t *v = malloc(cap * sizeof *v);
        if (!k || !v) {
            free(k);
            free(v);
            return -1;
        }
        memset(k, 0xFF, cap * sizeof *k);
        for (size_t i = 0; i < m->mcap; i++) {
            if (m->keys[i] == UINT64_MAX) continue;
            size_t s = pair_slot(m->keys[i], cap - 1);
            while (k[s] != UINT64_MAX) s = (s + 1) & (cap - 1);
            k[s] = m->keys[i];
            v[s] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = k;
        m->vals = v;
        m->mcap = cap;
        mask = cap - 1;
        h = pair_slot(key, mask);
        while (m->keys[h] != UINT64_MAX) h = (h + 1) & mask;
    }
    if (m->npairs == m->pcap) {
        int32_t cap = m->pcap ? m->pcap * 2 : 65536;
        pair_info *p = realloc(m->pairs, (size_t)cap * sizeof *p);
        if (!p) return -1;
        m->pairs = p;
        m->pcap = cap;
    }
    int32_t idx = m->npairs++;
    m->pairs[idx] = (pair_info){l, r, 0, NULL, 0, 0, -1, -1};
    m->keys[h] = key;
    m->vals[h] = idx;
    return idx;
}

static int pair_add_word(pair_info *p, int32_t w) {
    if (p->last_word == w) return TG_OK;
    if (p->nwords == p->wcap) {
        int32_t cap = p->wcap ? p->wcap * 2 : 4;
        int32_t *a = realloc(p->words, (size_t)cap * sizeof *a);
        if (!a) return tg_error_set(TG_ERR_RUNTIME, "out of memory (pair index)");
        p->words = a;
        p->wcap = cap;
    }
    p->words[p->nwords++] = w;
    p->last_word = w;
    return TG_OK;
}

/* count += delta for pair (l, r); remembers raised pairs of this step. */
static int pair_change(merge_state *m, int32_t l, int32_t r, int64_t delta, int32_t word, int32_t step) {
    int32_t idx = pair_get(m, l, r);
    if (idx < 0) return tg_error_set(TG_ERR_RUNTIME, "out of memory (pairs)");
    pair_info *p = &m->pairs[idx];
    p->count += delta;
    if (delta > 0) {
        TG_TRY(pair_add_word(p, word));
        if (p->touched != step) {
            p->touched = step;
            if (m->nraised == m->rcap) {
                int32_t cap = m->rcap ? m->rcap * 2 : 1024;
                int32_t *a = realloc(m->raised, (size_t)cap * sizeof *a);
                if (!a) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
                m->raised = a;
                m->rcap = cap;
            }
            m->raised[m->nraised++] = idx;
        }
    }
    return TG_OK;
}

static void merge_state_free(merge_state *m) {
    for (int32_t i = 0; i < m->npairs; i++) free(m->pairs[i].words);
    free(m->pairs);
    free(m->keys);
    free(m->vals);
    free(m->heap);
    free(m->raised);
}

int tg_bpe_trainer_finish(tg_bpe_trainer *tr, int vocab_size, int verbose, tg_tokenizer **out) {
    *out = NULL;
    int base = 256 + N_SPECIAL;
    if (vocab_size < base)
        return tg_error_set(TG_ERR_INPUT, "--vocab %d: must be at least %d (256 bytes + %d special tokens)", vocab_size,
                            base, N_SPECIAL);
    tg_tokenizer *t;
    TG_TRY(tg_tok_create(&t));
    int rc = TG_OK;
    for (int b = 0; b < 256 && rc == TG_OK; b++) {
        char c = (char)b;
        rc = tg_tok_add(t, &c, 1, 0, NULL);
    }
    for (int k = 0; k < N_SPECIAL && rc == TG_OK; k++)
        rc = tg_tok_add(t, special_names[k], strlen(special_names[k]), 1, NULL);
    if (rc != TG_OK) {
        tg_tokenizer_free(t);
        return rc;
    }

    /* words in hash-table order: the order changes no count, and ties are
     * broken by ids, so the merges do not depend on it (nor on threads) */
    size_t nw = tr->used;
    word_info *words = calloc(nw ? nw : 1, sizeof *words);
    int32_t *sym = malloc((tr->arena_len ? tr->arena_len : 1) * sizeof *sym);
    merge_state m = {0};
    m.mcap = 1 << 16;
    m.keys = malloc(m.mcap * sizeof *m.keys);
    m.vals = malloc(m.mcap * sizeof *m.vals);
    char *tokbuf = NULL;
    if (!words || !sym || !m.keys || !m.vals) {
        rc = tg_error_set(TG_ERR_RUNTIME, "out of memory (%zu distinct words)", nw);
        goto done;
    }
    memset(m.keys, 0xFF, m.mcap * sizeof *m.keys);
    size_t k = 0, so = 0;
    for (size_t i = 0; i < tr->cap; i++) {
        const word_slot *s = &tr->slots[i];
        if (!s->hash) continue;
        words[k].sym = sym + so;
        words[k].len = (int32_t)s->len;
        words[k].count = s->count;
        words[k].stamp = -1;
        for (uint32_t j = 0; j < s->len; j++) sym[so + j] = (uint8_t)tr->arena[s->off + j];
        so += s->len;
        k++;
    }
    /* initial pair counts (word order only affects list order, not counts) */
    for (size_t w = 0; w < nw && rc == TG_OK; w++)
        for (int32_t j = 0; j + 1 < words[w].len && rc == TG_OK; j++)
            rc = pair_change(&m, words[w].sym[j], words[w].sym[j + 1], words[w].count, (int32_t)w, -2);
    for (int32_t p = 0; p < m.npairs && rc == TG_OK; p++) rc = heap_push(&m, p);
    if (rc != TG_OK) goto done;

    tg_progress prog;
    int target = vocab_size - base;
    if (verbose) tg_progress_start(&prog, "bpe merges", target);
    size_t maxtok = 256;
    tokbuf = malloc(maxtok);
    int32_t step = 0;
    while (t->n < vocab_size && m.hn > 0 && rc == TG_OK) {
        heap_entry top = heap_pop(&m);
        pair_info *p = &m.pairs[top.pair];
        if (top.count != p->count) {
            /* stale: requeue with the current count when it fell (a raised
             * count already has its own fresh entry) */
            if (p->count > 0 && p->count < top.count) rc = heap_push(&m, top.pair);
            continue;
        }
        if (p->count <= 0) continue;
        int32_t a = p->left, b = p->right;
        /* the new token (or the existing one with the same bytes) */
        size_t la = t->len[a], lb = t->len[b];
        if (la + lb > maxtok) {
            while (maxtok < la + lb) maxtok *= 2;
            char *nb = realloc(tokbuf, maxtok);
            if (!nb) {
                rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
                break;
            }
            tokbuf = nb;
        }
        memcpy(tokbuf, t->arena + t->off[a], la);
        memcpy(tokbuf + la, t->arena + t->off[b], lb);
        int32_t x = tg_tok_find(t, tokbuf, la + lb);
        if (x < 0 || t->special[x]) rc = tg_tok_add(t, tokbuf, la + lb, 0, &x);
        if (rc == TG_OK) rc = tg_tok_add_merge(t, a, b, x);
        if (rc != TG_OK) break;
        step++;
        m.nraised = 0;
        /* rewrite every word holding (a, b); p may move when pairs grow */
        int32_t nlist = p->nwords;
        int32_t *list = p->words;
        p->words = NULL;
        p->nwords = p->wcap = 0;
        p->last_word = -1;
        for (int32_t li = 0; li < nlist && rc == TG_OK; li++) {
            int32_t w = list[li];
            word_info *wd = &words[w];
            if (wd->stamp == step) continue;
            wd->stamp = step;
            int32_t *s = wd->sym, n = wd->len;
            int found = 0;
            for (int32_t j = 0; j + 1 < n; j++)
                if (s[j] == a && s[j + 1] == b) {
                    found = 1;
                    break;
                }
            if (!found) continue;
            int64_t c = wd->count;
#define INVOLVED(v) ((v) == a || (v) == b || (v) == x)
            for (int32_t j = 0; j + 1 < n && rc == TG_OK; j++)
                if (INVOLVED(s[j]) || INVOLVED(s[j + 1])) rc = pair_change(&m, s[j], s[j + 1], -c, w, step);
            int32_t o = 0;
            for (int32_t j = 0; j < n;) {
                if (j + 1 < n && s[j] == a && s[j + 1] == b) {
                    s[o++] = x;
                    j += 2;
                } else {
                    s[o++] = s[j++];
                }
            }
            wd->len = o;
            for (int32_t j = 0; j + 1 < o && rc == TG_OK; j++)
                if (INVOLVED(s[j]) || INVOLVED(s[j + 1])) rc = pair_change(&m, s[j], s[j + 1], c, w, step);
#undef INVOLVED
        }
        free(list);
        for (int32_t r = 0; r < m.nraised && rc == TG_OK; r++)
            if (m.pairs[m.raised[r]].count > 0) rc = heap_push(&m, m.raised[r]);
        if (verbose && (step & 63) == 0) {
            char extra[64];
            snprintf(extra, sizeof extra, "vocab %d", t->n);
            tg_progress_update(&prog, step, extra);
        }
    }
    if (rc == TG_OK && verbose) {
        char extra[96];
        snprintf(extra, sizeof extra, "%d merges, vocab %d, %zu distinct words", t->n_merges, t->n, nw);
        tg_progress_finish(&prog, step, extra);
    }
    if (rc == TG_OK) rc = tg_tok_finish(t, "trained tokenizer");
done:
    merge_state_free(&m);
    free(words);
    free(sym);
    free(tokbuf);
    if (rc != TG_OK) {
        tg_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return TG_OK;
}
