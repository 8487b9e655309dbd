/*
 * chat_data_grounded.c — `truthgpt chat-data --grounded DB`: fine-tuning
 * conversations that teach a model to answer from retrieved posts and cite
 * the right one (docs/search.md, "Training a model to cite").
 *
 * For each post of the index (the target):
 *   - a question from its key terms (TF-IDF over the index's posts), the first
 *     term written as it appears in the post;
 *   - the sources: the index's own top results for that question, the target
 *     among them (added if the search missed it), the others as distractors,
 *     filled with random posts when the search finds too few. A distractor
 *     never holds the question's first term, so exactly one source answers
 *     it (near misses share the other words, as search results do); the target's
 *     number is drawn uniformly (a hash of the post and the seed), so citing
 *     [1] always scores only 1/K;
 *   - system: the sources block of tg_search_sources_prompt (the server's
 *     grounding template, word for word); user: the question;
 *   - assistant: a quote of the target from its first key term on, then its
 *     marker: `… zebras graze by the river at dawn [2]`. The quote starts at
 *     a word of the question and the source line ends with its number, so
 *     the answer is a copy of the right line from the question's word on: the
 *     pattern (induction) a small transformer learns first.
 * Posts are held out by a hash of their id (--val-frac); held-out targets are
 * never in the training file, as targets or as distractors.
 *
 * Memory: every post is held (id, text, author, date), so this is for
 * indexes of up to a few million posts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "data/chat_data.h"
#include "search/search.h"

#define SEED_VAL 0x5EED00A1ULL
#define SEED_POS 0x5EED00A2ULL
#define SEED_FILL 0x5EED00A3ULL
#define QUOTE_CHARS 160

typedef struct {
    uint64_t key; /* hash of the id */
    int64_t i;    /* its post */
} id_slot;

typedef struct {
    tg_search_hit *posts;
    int64_t n, cap;
    int64_t max;
    id_slot *by_id; /* (n) sorted by key: search hits back to posts in O(log n) */
} post_list;

static int cmp_slot(const void *a, const void *b) {
    uint64_t x = ((const id_slot *)a)->key, y = ((const id_slot *)b)->key;
    return x < y ? -1 : x > y;
}

/* The index in l of the post with this id, or -1. */
static int64_t find_post(const post_list *l, const char *id) {
    uint64_t key = tg_hash64(id, strlen(id), 0);
    size_t lo = 0, hi = (size_t)l->n;
    while (lo < hi) { /* the first slot with key >= key */
        size_t mid = lo + (hi - lo) / 2;
        if (l->by_id[mid].key < key) lo = mid + 1;
        else hi = mid;
    }
    for (size_t k = lo; k < (size_t)l->n && l->by_id[k].key == key; k++)
        if (!strcmp(l->posts[l->by_id[k].i].id, id)) return l->by_id[k].i;
    return -1;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static int collect(void *ctx, const tg_search_hit *h) {
    post_list *l = ctx;
    if (l->max > 0 && l->n >= l->max) return TG_OK;
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 1024;
        tg_search_hit *p = realloc(l->posts, (size_t)cap * sizeof *p);
        if (!p) return tg_error_set(TG_ERR_RUNTIME, "out of memory holding the posts");
        l->posts = p;
        l->cap = cap;
    }
    tg_search_hit *d = &l->posts[l->n];
    memset(d, 0, sizeof *d);
    d->id = strdup(h->id);
    d->text = strdup(h->text);
    d->author = dup_or_null(h->author);
    d->created_at = dup_or_null(h->created_at);
    d->url = dup_or_null(h->url);
    if (!d->id || !d->text) return tg_error_set(TG_ERR_RUNTIME, "out of memory holding the posts");
    l->n++;
    return TG_OK;
}

static int is_val(const tg_search_hit *h, double frac, uint64_t seed) {
    uint64_t x = tg_hash64(h->id, strlen(h->id), SEED_VAL ^ seed);
    return (double)(x >> 11) * (1.0 / 9007199254740992.0) < frac;
}

/* The first case-insensitive occurrence of term (ASCII-folded, at a word
 * start) in text; its byte offset, or -1. */
static int64_t find_term(const char *text, const char *term) {
    size_t tl = strlen(term), n = strlen(text);
    for (size_t i = 0; i + tl <= n; i++) {
        if (i > 0 && ((unsigned char)text[i - 1] >= 0x80 || (text[i - 1] >= 'a' && text[i - 1] <= 'z') ||
                      (text[i - 1] >= 'A' && text[i - 1] <= 'Z') || (text[i - 1] >= '0' && text[i - 1] <= '9')))
            continue;
        size_t k = 0;
        for (; k < tl; k++) {
            char a = text[i + k], b = term[k];
            if (a >= 'A' && a <= 'Z') a = (char)(a + 32);
            if (a != b) break;
        }
        if (k == tl) return (int64_t)i;
    }
    return -1;
}

static const char *const questions[] = {
    "What did people say about %s?",
    "What was posted about %s?",
    "Find the post about %s.",
    "Who wrote about %s?",
    "Is there a post on %s?",
};
#define N_QUESTIONS (sizeof questions / sizeof questions[0])

/* One conversation for target t into *out; a post without a key term to
 * quote from gives none (*skipped = 1). want_val: a held-out conversation,
 * which may use any post as a distractor (training ones use no held-out post). */
static int make_one(tg_search_db *db, tg_tfidf *tf, const post_list *l, int64_t t, const tg_chat_grounded_params *p,
                    const unsigned char *held, int want_val, json_t **out, int *skipped) {
    const tg_search_hit *target = &l->posts[t];
    *out = NULL;
    *skipped = 0;
    const char *terms[4];
    int nt = tg_tfidf_terms(tf, target->text, strlen(target->text), 2, terms);
    int64_t at = nt > 0 ? find_term(target->text, terms[0]) : -1;
    if (at < 0) { /* no key term we can quote from (e.g. only CJK bigrams, or none) */
        *skipped = 1;
        return TG_OK;
    }
    /* The question: the first term as written in the post, the second as a term. */
    size_t t0l = strlen(terms[0]);
    char about[256];
    if (nt > 1 && strlen(terms[1]) < 100)
        snprintf(about, sizeof about, "%.*s and %s", (int)t0l, target->text + at, terms[1]);
    else snprintf(about, sizeof about, "%.*s", (int)t0l, target->text + at);
    uint64_t h = tg_hash64(target->id, strlen(target->id), SEED_POS ^ p->seed);
    char question[400];
    snprintf(question, sizeof question, questions[(h >> 8) % N_QUESTIONS], about);

    /* The sources: search results other than the target (and, for training
     * conversations, other than held-out posts), then random posts. */
    int k = p->top_k;
    tg_search_hit *src = calloc((size_t)k, sizeof *src);
    if (!src) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    int pos = (int)(h % (uint64_t)k), n = 0;
    tg_search_params sp = tg_search_default_params();
    sp.limit = 4 * k + 4;
    tg_search_results r = {0};
    int rc = tg_search_run(db, question, &sp, &r);
    if (rc != TG_OK && rc != TG_ERR_INPUT) {
        free(src);
        return rc;
    }
    rc = TG_OK;
    /* Search hits are by id; map back to the held list to test held-out. */
    for (int i = 0; i < r.n && n < k - 1; i++) {
        if (!strcmp(r.hits[i].id, target->id)) continue;
        int64_t j = find_post(l, r.hits[i].id);
        if (j < 0 || (!want_val && held[j]) || find_term(l->posts[j].text, terms[0]) >= 0) continue;
        src[n++] = l->posts[j];
    }
    tg_rng rng;
    tg_rng_seed(&rng, h ^ SEED_FILL);
    for (int tries = 0; n < k - 1 && tries < 64 * k; tries++) {
        int64_t j = (int64_t)(tg_rng_next(&rng) % (uint64_t)l->n);
        if (j == t || (!want_val && held[j]) || find_term(l->posts[j].text, terms[0]) >= 0) continue;
        int dup = 0;
        for (int i = 0; i < n; i++) dup |= src[i].id == l->posts[j].id;
        if (!dup) src[n++] = l->posts[j];
    }
    if (pos > n) pos = n;
    memmove(src + pos + 1, src + pos, (size_t)(n - pos) * sizeof *src);
    src[pos] = *target;
    n++;
    char *block = tg_search_sources_prompt(src, n, QUOTE_CHARS);
    /* The answer: the target's text from the key term on, as the source line has it. */
    char *one = tg_search_sources_prompt(target, 1, QUOTE_CHARS);
    char *answer = NULL;
    if (block && one) {
        /* one is "Sources:\n[1] AUTHOR DATE: TEXT [1]\n...": take TEXT, flattened and cut as in block. */
        char *colon = strstr(one, ": "), *end = colon ? strstr(colon, " [1]\n") : NULL;
        if (colon && end) {
            const char *flat = colon + 2;
            size_t fl = (size_t)(end - flat);
            int64_t off = find_term(flat, terms[0]);
            if (off < 0 || (size_t)off > fl) off = 0;
            size_t al = fl - (size_t)off + 32;
            answer = malloc(al);
            if (answer)
                snprintf(answer, al, "%s%.*s [%d]", off > 0 ? "\xE2\x80\xA6 " : "", (int)(fl - (size_t)off), flat + off,
                         pos + 1);
        }
    }
    if (!block || !one || !answer) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    if (rc == TG_OK) {
        json_t *msgs = json_array();
        if (p->system) json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", p->system));
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", block));
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", question));
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "assistant", "content", answer));
        *out = json_pack("{s:o, s:{s:s, s:i, s:i}}", "messages", msgs, "grounding", "target", target->id, "cite", pos + 1,
                         "sources", n);
        if (!*out) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    free(block);
    free(one);
    free(answer);
    free(src);
    tg_search_results_free(&r);
    return rc;
}

tg_chat_grounded_params tg_chat_grounded_default_params(void) {
    tg_chat_grounded_params p;
    memset(&p, 0, sizeof p);
    p.top_k = 3;
    p.val_frac = 0.05;
    p.seed = 1;
    return p;
}

static int write_line(tg_atomic_file *f, json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT);
    if (!s) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    int ok = fputs(s, f->f) >= 0 && fputc('\n', f->f) != EOF;
    free(s);
    return ok ? TG_OK : tg_error_set(TG_ERR_RUNTIME, "%s: write failed", f->path);
}

int tg_chat_data_grounded(const tg_chat_grounded_params *p, tg_chat_data_stats *st) {
    memset(st, 0, sizeof *st);
    if (!p->index || !p->out) return tg_error_set(TG_ERR_INPUT, "chat-data --grounded: DB and --out are required");
    if (p->top_k < 2 || p->top_k > 10) return tg_error_set(TG_ERR_INPUT, "--top-k: %d is not in 2..10", p->top_k);
    if (!(p->val_frac >= 0 && p->val_frac < 1))
        return tg_error_set(TG_ERR_INPUT, "--val-frac: must be in [0, 1) (got %g)", p->val_frac);
    tg_search_db *db;
    TG_TRY(tg_search_open(p->index, 0, &db));
    post_list l = {.max = p->max_posts};
    int rc = tg_search_each(db, collect, &l);
    if (rc == TG_OK && l.n < p->top_k)
        rc = tg_error_set(TG_ERR_INPUT, "%s: %lld posts; --grounded needs at least --top-k (%d) of them", p->index,
                          (long long)l.n, p->top_k);
    if (rc == TG_OK && !(l.by_id = malloc((size_t)l.n * sizeof *l.by_id))) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    for (int64_t i = 0; rc == TG_OK && i < l.n; i++) l.by_id[i] = (id_slot){tg_hash64(l.posts[i].id, strlen(l.posts[i].id), 0), i};
    if (rc == TG_OK) qsort(l.by_id, (size_t)l.n, sizeof *l.by_id, cmp_slot);
    tg_tfidf *tf = NULL;
    unsigned char *held = rc == TG_OK ? calloc((size_t)l.n, 1) : NULL;
    if (rc == TG_OK && !held) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    if (rc == TG_OK) rc = tg_tfidf_init(&tf);
    for (int64_t i = 0; rc == TG_OK && i < l.n; i++) {
        rc = tg_tfidf_add(tf, l.posts[i].text, strlen(l.posts[i].text));
        held[i] = (unsigned char)is_val(&l.posts[i], p->val_frac, p->seed);
    }
    tg_atomic_file out = {0}, val = {0};
    int out_open = 0, val_open = 0;
    if (rc == TG_OK && (rc = tg_atomic_open(&out, p->out)) == TG_OK) out_open = 1;
    if (rc == TG_OK && p->val_out && (rc = tg_atomic_open(&val, p->val_out)) == TG_OK) val_open = 1;
    tg_progress prog;
    if (rc == TG_OK) tg_progress_start(&prog, "chat-data --grounded", (double)l.n);
    for (int64_t i = 0; rc == TG_OK && i < l.n; i++) {
        st->posts++;
        if (held[i] && !val_open) continue;
        json_t *conv = NULL;
        int skipped = 0;
        rc = make_one(db, tf, &l, i, p, held, held[i], &conv, &skipped);
        if (rc == TG_OK && skipped) st->no_terms++;
        if (rc == TG_OK && conv) {
            rc = write_line(held[i] ? &val : &out, conv);
            if (held[i]) st->val++;
            else st->train++;
        }
        json_decref(conv);
        if ((i & 255) == 0) tg_progress_update(&prog, (double)i, NULL);
    }
    if (rc == TG_OK && st->train == 0)
        rc = tg_error_set(TG_ERR_INPUT, "%s: no post gave a conversation (no key terms?)", p->index);
    if (rc == TG_OK) {
        char extra[96];
        snprintf(extra, sizeof extra, "%lld conversations", (long long)(st->train + st->val));
        tg_progress_finish(&prog, (double)l.n, extra);
    }
    rc = tg_chat_data_close(rc, &out, out_open, &val, val_open);
    tg_tfidf_free(tf);
    free(held);
    for (int64_t i = 0; i < l.n; i++) {
        free(l.posts[i].id);
        free(l.posts[i].text);
        free(l.posts[i].author);
        free(l.posts[i].created_at);
        free(l.posts[i].url);
    }
    free(l.posts);
    free(l.by_id);
    tg_search_close(db);
    return rc;
}
