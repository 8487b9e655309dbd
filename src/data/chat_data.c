/*
 * chat_data.c — `truthgpt chat-data`: conversations made from posts.
 *
 * Two streaming passes over the corpus: the first counts the document
 * frequency of every term (memory: one entry per distinct term), the second
 * picks each post's key terms by TF-IDF and writes a conversation
 *   user: "<a phrasing asking for a post about the key terms>"
 *   assistant: "<the post>"
 * to the training or the held-out file. Deterministic: the phrasing and the
 * split are hashes of the post's text and the seed; nothing depends on
 * thread count or on the order of hash-table slots.
 *
 * Not done here: paraphrasing, multi-turn threads (replies could become
 * turns when the corpus keeps reply links), or any model-based prompts.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <utf8proc.h>

#include "core/core.h"
#include "data/chat_data.h"

/* ------------------------------------------------------------- term table */

typedef struct {
    char *s;          /* lower-cased term, NUL-terminated (owned) */
    uint64_t hash;
    int64_t df;       /* documents containing the term */
    int64_t last_doc; /* last document counted, so a term counts once a document */
} term_entry;

/* One extracted occurrence while scoring a text: offset into tfidf.buf. */
typedef struct {
    size_t off;
    int pos;
} occurrence;

typedef struct {
    size_t off;   /* into buf */
    int tf;
    int first;
    double score;
} scored_term;

struct tg_tfidf {
    term_entry *slots; /* open addressing, power-of-two capacity */
    size_t cap, count;
    int64_t docs;
    /* scratch for tg_tfidf_terms, reused across calls (grown, never shrunk) */
    char *buf;
    size_t buf_len, buf_cap;
    occurrence *occ;
    size_t n_occ, occ_cap;
    scored_term *scored;
    size_t scored_cap;
    const char *stop_sorted[256];
    size_t n_stop;
};

/* Common English function words: they carry no topic, so they are never key
 * terms even in a corpus too small for IDF to push them down. */
static const char *const stopwords[] = {
    "about", "above", "after", "again", "against", "all", "also", "and", "any", "are", "aren't", "because",
    "been", "before", "being", "below", "between", "both", "but", "can", "can't", "cannot", "could",
    "couldn't", "did", "didn't", "does", "doesn't", "doing", "don't", "down", "during", "each", "even", "ever",
    "every", "few", "for", "from", "further", "get", "gets", "got", "had", "hadn't", "has", "hasn't", "have",
    "haven't", "having", "he'd", "he'll", "he's", "her", "here", "here's", "hers", "herself", "him",
    "himself", "his", "how", "how's", "i'd", "i'll", "i'm", "i've", "into", "isn't", "it's", "its", "itself",
    "just", "let's", "like", "many", "more", "most", "much", "must", "mustn't", "myself", "never", "nor",
    "not", "now", "off", "once", "one", "only", "other", "ought", "our", "ours", "ourselves", "out", "over",
    "own", "really", "same", "say", "says", "said", "shan't", "she", "she'd", "she'll", "she's", "should",
    "shouldn't", "some", "such", "than", "that", "that's", "the", "their", "theirs", "them", "themselves",
    "then", "there", "there's", "these", "they", "they'd", "they'll", "they're", "they've", "this", "those",
    "through", "too", "under", "until", "upon", "very", "was", "wasn't", "we'd", "we'll", "we're", "we've",
    "were", "weren't", "what", "what's", "when", "when's", "where", "where's", "which", "while", "who",
    "who's", "whom", "why", "why's", "will", "with", "won't", "would", "wouldn't", "yes", "yet", "you",
    "you'd", "you'll", "you're", "you've", "your", "yours", "yourself", "yourselves", "http", "https", "www",
    "com", "org", "net", "amp", "gt", "lt",
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int is_stopword(const tg_tfidf *t, const char *w) {
    return bsearch(&w, t->stop_sorted, t->n_stop, sizeof(char *), cmp_str) != NULL;
}

int tg_tfidf_init(tg_tfidf **out) {
    tg_tfidf *t = calloc(1, sizeof *t);
    if (!t) return tg_error_set(TG_ERR_RUNTIME, "out of memory (tf-idf table)");
    t->cap = 1 << 12;
    t->slots = calloc(t->cap, sizeof *t->slots);
    if (!t->slots) {
        free(t);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory (tf-idf table)");
    }
    t->n_stop = sizeof stopwords / sizeof stopwords[0];
    TG_ASSERT(t->n_stop <= sizeof t->stop_sorted / sizeof t->stop_sorted[0]);
    memcpy(t->stop_sorted, stopwords, sizeof stopwords);
    qsort(t->stop_sorted, t->n_stop, sizeof(char *), cmp_str);
    *out = t;
    return TG_OK;
}

void tg_tfidf_free(tg_tfidf *t) {
    if (!t) return;
    for (size_t i = 0; i < t->cap; i++) free(t->slots[i].s);
    free(t->slots);
    free(t->buf);
    free(t->occ);
    free(t->scored);
    free(t);
}

int64_t tg_tfidf_docs(const tg_tfidf *t) { return t->docs; }

static term_entry *table_find(const tg_tfidf *t, const char *s, size_t len, uint64_t h) {
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        term_entry *e = &t->slots[i];
        if (!e->s) return e; /* the empty slot where it would go */
        if (e->hash == h && strncmp(e->s, s, len) == 0 && e->s[len] == 0) return e;
    }
}

static int table_grow(tg_tfidf *t) {
    size_t ncap = t->cap * 2;
    term_entry *ns = calloc(ncap, sizeof *ns);
    if (!ns) return tg_error_set(TG_ERR_RUNTIME, "out of memory growing the tf-idf table to %zu terms", ncap);
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].s) continue;
        size_t j = t->slots[i].hash & (ncap - 1);
        while (ns[j].s) j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return TG_OK;
}

/* ------------------------------------------------------- term extraction */

static int is_cjk(int32_t c) {
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2FFFF);
}

static int is_word_cp(int32_t c) {
    utf8proc_category_t cat = utf8proc_category(c);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_ME) ||
           (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

static int is_letter_cp(int32_t c) {
    utf8proc_category_t cat = utf8proc_category(c);
    return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}

typedef int (*term_fn)(void *ctx, const char *term, size_t len, int pos);

static int starts_url(const char *s, size_t n) {
    return (n >= 7 && strncasecmp(s, "http://", 7) == 0) || (n >= 8 && strncasecmp(s, "https://", 8) == 0) ||
           (n >= 4 && strncasecmp(s, "www.", 4) == 0);
}

/* Calls fn for every term of text in order; pos counts terms. */
static int extract_terms(const tg_tfidf *t, const char *text, size_t len, term_fn fn, void *ctx) {
    const uint8_t *s = (const uint8_t *)text;
    char word[256];
    size_t wlen = 0;
    int wcps = 0, wletter = 0, pos = 0; /* wcps: letters and digits in word */
    int32_t prev_cjk = -1;
    size_t i = 0;
#define FLUSH()                                                                                       \
    do {                                                                                              \
        if (wlen >= 2 && word[wlen - 2] == '\'' && word[wlen - 1] == 's') wlen -= 2, wcps -= 1;       \
        while (wlen > 0 && word[wlen - 1] == '\'') wlen--;                                            \
        word[wlen] = 0;                                                                               \
        if (wcps >= 3 && wletter && !is_stopword(t, word)) TG_TRY(fn(ctx, word, wlen, pos++));        \
        wlen = 0, wcps = 0, wletter = 0;                                                              \
    } while (0)
    while (i < len) {
        if ((i == 0 || s[i - 1] == ' ' || s[i - 1] == '\n' || s[i - 1] == '\t' || s[i - 1] == '(') &&
            starts_url(text + i, len - i)) {
            FLUSH();
            prev_cjk = -1;
            while (i < len && s[i] != ' ' && s[i] != '\n' && s[i] != '\t') i++;
            continue;
        }
        int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &c);
        if (n <= 0) { /* invalid byte: a separator */
            FLUSH();
            prev_cjk = -1;
            i++;
            continue;
        }
        if (is_cjk(c)) {
            FLUSH();
            if (prev_cjk >= 0) { /* CJK has no spaces: bigrams stand in for words */
                utf8proc_uint8_t bi[8];
                utf8proc_ssize_t a = utf8proc_encode_char(prev_cjk, bi);
                a += utf8proc_encode_char(c, bi + a);
                char tmp[9];
                memcpy(tmp, bi, (size_t)a);
                tmp[a] = 0;
                TG_TRY(fn(ctx, tmp, (size_t)a, pos++));
            }
            prev_cjk = c;
        } else if (is_word_cp(c)) {
            prev_cjk = -1;
            if (wlen + 8 < sizeof word) { /* overlong "words" are truncated, never overflow */
                wlen += (size_t)utf8proc_encode_char(utf8proc_tolower(c), (utf8proc_uint8_t *)word + wlen);
                wcps++;
                if (is_letter_cp(c)) wletter = 1;
            }
        } else if ((c == '\'' || c == 0x2019) && wlen > 0 && wlen + 2 < sizeof word) {
            word[wlen++] = '\''; /* kept only inside a word; FLUSH drops a trailing one; not a letter,
                                    so "m'i" is too short to be a term */
        } else {
            FLUSH();
            prev_cjk = -1;
        }
        i += (size_t)n;
    }
    FLUSH();
#undef FLUSH
    return TG_OK;
}

static int add_term(void *ctx, const char *term, size_t len, int pos) {
    (void)pos;
    tg_tfidf *t = ctx;
    uint64_t h = tg_hash64(term, len, 0x7466696466ull);
    term_entry *e = table_find(t, term, len, h);
    if (!e->s) {
        if ((t->count + 1) * 10 > t->cap * 7) { /* keep the load under 0.7 */
            TG_TRY(table_grow(t));
            e = table_find(t, term, len, h);
        }
        e->s = malloc(len + 1);
        if (!e->s) return tg_error_set(TG_ERR_RUNTIME, "out of memory (tf-idf term)");
        memcpy(e->s, term, len);
        e->s[len] = 0;
        e->hash = h;
        e->df = 0;
        e->last_doc = -1;
        t->count++;
    }
    if (e->last_doc != t->docs) {
        e->df++;
        e->last_doc = t->docs;
    }
    return TG_OK;
}

int tg_tfidf_add(tg_tfidf *t, const char *text, size_t len) {
    TG_TRY(extract_terms(t, text, len, add_term, t));
    t->docs++;
    return TG_OK;
}

static int collect_term(void *ctx, const char *term, size_t len, int pos) {
    tg_tfidf *t = ctx;
    if (t->buf_len + len + 1 > t->buf_cap) {
        size_t nc = (t->buf_cap ? t->buf_cap * 2 : 4096) + len + 1;
        char *nb = realloc(t->buf, nc);
        if (!nb) return tg_error_set(TG_ERR_RUNTIME, "out of memory (tf-idf scratch)");
        t->buf = nb;
        t->buf_cap = nc;
    }
    if (t->n_occ == t->occ_cap) {
        size_t nc = t->occ_cap ? t->occ_cap * 2 : 256;
        occurrence *no = realloc(t->occ, nc * sizeof *no);
        if (!no) return tg_error_set(TG_ERR_RUNTIME, "out of memory (tf-idf scratch)");
        t->occ = no;
        t->occ_cap = nc;
    }
    memcpy(t->buf + t->buf_len, term, len + 1);
    t->occ[t->n_occ++] = (occurrence){t->buf_len, pos};
    t->buf_len += len + 1;
    return TG_OK;
}

/* qsort has no context argument; the scratch buffer is reached through this
 * thread-local, set only for the duration of one sort. */
static _Thread_local const char *sort_buf;

static int cmp_occ(const void *a, const void *b) {
    const occurrence *x = a, *y = b;
    int c = strcmp(sort_buf + x->off, sort_buf + y->off);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_scored(const void *a, const void *b) {
    const scored_term *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

int tg_tfidf_terms(tg_tfidf *t, const char *text, size_t len, int k, const char **terms) {
    t->buf_len = 0;
    t->n_occ = 0;
    if (extract_terms(t, text, len, collect_term, t) != TG_OK) return 0;
    if (t->n_occ == 0 || k <= 0) return 0;
    /* O(n log n) in the text's term count: sort occurrences, count runs */
    sort_buf = t->buf;
    qsort(t->occ, t->n_occ, sizeof *t->occ, cmp_occ);
    sort_buf = NULL;
    if (t->scored_cap < t->n_occ) {
        scored_term *ns = realloc(t->scored, t->n_occ * sizeof *ns);
        if (!ns) return 0;
        t->scored = ns;
        t->scored_cap = t->n_occ;
    }
    size_t nu = 0;
    for (size_t i = 0; i < t->n_occ;) {
        size_t j = i;
        const char *s = t->buf + t->occ[i].off;
        while (j < t->n_occ && strcmp(t->buf + t->occ[j].off, s) == 0) j++;
        size_t slen = strlen(s);
        term_entry *e = table_find(t, s, slen, tg_hash64(s, slen, 0x7466696466ull));
        double df = e->s ? (double)e->df : 0.0;
        double idf = log((1.0 + (double)t->docs) / (1.0 + df)) + 1.0; /* smoothed, as scikit-learn's */
        t->scored[nu++] = (scored_term){t->occ[i].off, (int)(j - i), t->occ[i].pos, (double)(j - i) * idf};
        i = j;
    }
    qsort(t->scored, nu, sizeof *t->scored, cmp_scored);
    int n = (int)(nu < (size_t)k ? nu : (size_t)k);
    for (int i = 0; i < n; i++) terms[i] = t->buf + t->scored[i].off;
    return n;
}

/* ----------------------------------------------------------- prompts */

/* Several phrasings, so the model learns the request, not one sentence. */
static const char *const phrasings[] = {
    "Write a post about %s.",
    "Can you write a post about %s?",
    "Post something about %s.",
    "Share your thoughts on %s.",
    "What's on your mind about %s?",
    "Write a short post on %s.",
    "Tell us about %s.",
    "Say something about %s.",
};
#define N_PHRASINGS (sizeof phrasings / sizeof phrasings[0])

char *tg_chat_data_prompt(const char *const *terms, int n_terms, uint64_t choice) {
    if (n_terms <= 0) return strdup("Write a post.");
    size_t need = 64;
    for (int i = 0; i < n_terms; i++) need += strlen(terms[i]) + 8;
    char *list = malloc(need);
    if (!list) return NULL;
    list[0] = 0;
    for (int i = 0; i < n_terms; i++) { /* "a", "a and b", "a, b and c" */
        if (i > 0) strcat(list, i == n_terms - 1 ? " and " : ", ");
        strcat(list, terms[i]);
    }
    const char *fmt = phrasings[choice % N_PHRASINGS];
    size_t n = strlen(fmt) + strlen(list) + 1;
    char *out = malloc(n);
    if (out) snprintf(out, n, fmt, list);
    free(list);
    return out;
}

/* ------------------------------------------------------------ the corpus */

tg_chat_data_params tg_chat_data_default_params(void) {
    tg_chat_data_params p = {0};
    p.field = "text";
    p.val_frac = -1;
    p.seed = 1234;
    p.n_terms = 3;
    return p;
}

typedef struct {
    char *path;
    int is_val; /* -1: split by hash; 0/1: the corpus's own split */
} input_file;

typedef int (*doc_fn)(void *ctx, const char *text, size_t len, int is_val, const char *path, int64_t line);

/* Reads every {"field": "..."} line of a JSONL file; errors name file:line. */
static int read_jsonl(const input_file *in, const char *field, doc_fn fn, void *ctx, tg_progress *prog,
                      double *done) {
    FILE *f = fopen(in->path, "rb");
    if (!f) return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", in->path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t lineno = 0;
    int rc = TG_OK;
    while (rc == TG_OK && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        *done += (double)n;
        size_t k = (size_t)n;
        while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r' || line[k - 1] == ' ')) k--;
        if (k == 0) continue;
        json_error_t jerr;
        json_t *root = json_loadb(line, k, 0, &jerr);
        if (!root) {
            rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: not JSON: %s", in->path, (long long)lineno, jerr.text);
            break;
        }
        json_t *v = json_is_object(root) ? json_object_get(root, field) : NULL;
        if (!json_is_string(v)) {
            rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: no string field \"%s\" (see --field)", in->path,
                              (long long)lineno, field);
        } else {
            rc = fn(ctx, json_string_value(v), json_string_length(v), in->is_val, in->path, lineno);
        }
        json_decref(root);
        if (prog) tg_progress_update(prog, *done, NULL);
    }
    if (rc == TG_OK && ferror(f)) rc = tg_error_set(TG_ERR_INPUT, "%s: read error", in->path);
    free(line);
    fclose(f);
    return rc;
}

typedef struct {
    const tg_chat_data_params *p;
    tg_tfidf *tf;
    tg_atomic_file *out, *val;
    tg_chat_data_stats *st;
    double val_frac;
    const char **terms;
} make_ctx;

static int count_doc(void *ctx, const char *text, size_t len, int is_val, const char *path, int64_t line) {
    (void)is_val, (void)path, (void)line;
    make_ctx *c = ctx;
    if (len == 0) return TG_OK;
    return tg_tfidf_add(c->tf, text, len);
}

static int append_message(json_t *msgs, const char *role, const char *content, size_t len) {
    json_t *m = json_object();
    if (!m || json_object_set_new(m, "role", json_string(role)) ||
        json_object_set_new(m, "content", json_stringn(content, len)) || json_array_append_new(msgs, m))
        return tg_error_set(TG_ERR_RUNTIME, "out of memory building a conversation");
    return TG_OK;
}

static int write_doc(void *ctx, const char *text, size_t len, int is_val, const char *path, int64_t line) {
    make_ctx *c = ctx;
    c->st->posts++;
    if (len == 0) {
        c->st->empty++;
        return TG_OK;
    }
    uint64_t h = tg_hash64(text, len, c->p->seed ^ 0x5eedc4a7ull);
    if (is_val < 0) is_val = (double)(h >> 11) * 0x1.0p-53 < c->val_frac;
    tg_atomic_file *dst = is_val ? c->val : c->out;
    if (!dst) return TG_OK; /* held-out post with no held-out file */
    int nt = tg_tfidf_terms(c->tf, text, len, c->p->n_terms, c->terms);
    if (nt == 0) c->st->no_terms++;
    uint64_t choice = tg_hash64(text, len, c->p->seed ^ 0x9e3779b97f4a7c15ull);
    char *prompt = tg_chat_data_prompt(c->terms, nt, choice);
    if (!prompt) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    json_t *root = json_object(), *msgs = json_array();
    int rc = root && msgs ? TG_OK : tg_error_set(TG_ERR_RUNTIME, "out of memory");
    if (rc == TG_OK && c->p->system) rc = append_message(msgs, "system", c->p->system, strlen(c->p->system));
    if (rc == TG_OK) rc = append_message(msgs, "user", prompt, strlen(prompt));
    if (rc == TG_OK) rc = append_message(msgs, "assistant", text, len);
    free(prompt);
    if (rc == TG_OK) {
        json_object_set(root, "messages", msgs);
        char *s = json_dumps(root, JSON_COMPACT);
        if (!s) rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: cannot encode the post as JSON", path, (long long)line);
        else if (fputs(s, dst->f) < 0 || fputc('\n', dst->f) < 0)
            rc = tg_error_set(TG_ERR_RUNTIME, "%s: write failed: %s", dst->path, strerror(errno));
        free(s);
    }
    json_decref(msgs);
    json_decref(root);
    if (rc == TG_OK) (is_val ? c->st->val++ : c->st->train++);
    return rc;
}

int tg_chat_data_close(int rc, tg_atomic_file *out, int out_open, tg_atomic_file *val, int val_open) {
    if (rc == TG_OK && out_open) {
        rc = tg_atomic_commit(out);
        out_open = 0;
    }
    if (rc == TG_OK && val_open) {
        rc = tg_atomic_commit(val);
        val_open = 0;
    }
    if (out_open) tg_atomic_abort(out);
    if (val_open) tg_atomic_abort(val);
    return rc;
}

int tg_chat_data_make(const tg_chat_data_params *p, tg_chat_data_stats *st) {
    memset(st, 0, sizeof *st);
    if (!p->corpus || !p->out) return tg_error_set(TG_ERR_INPUT, "chat-data: CORPUS and --out are required");
    if (p->n_terms < 0 || p->n_terms > 16) return tg_error_set(TG_ERR_INPUT, "--terms: must be 0..16");
    if (p->val_frac >= 1) return tg_error_set(TG_ERR_INPUT, "--val-frac: must be below 1 (got %g)", p->val_frac);
    input_file in[2] = {{0}};
    int n_in = 0;
    double val_frac = p->val_frac;
    if (tg_path_is_dir(p->corpus)) {
        in[0].path = tg_path_join(p->corpus, "train.jsonl");
        in[0].is_val = -1;
        n_in = 1;
        if (!tg_path_exists(in[0].path)) {
            tg_error_set(TG_ERR_INPUT, "%s: no train.jsonl in this directory (is it an ingest output?)", p->corpus);
            free(in[0].path);
            return TG_ERR_INPUT;
        }
        char *vp = tg_path_join(p->corpus, "val.jsonl");
        if (val_frac < 0 && tg_path_exists(vp)) { /* keep ingest's split: val posts stay unseen */
            in[0].is_val = 0;
            in[1].path = vp;
            in[1].is_val = 1;
            n_in = 2;
        } else {
            free(vp);
        }
    } else {
        if (!tg_path_exists(p->corpus)) return tg_error_set(TG_ERR_INPUT, "%s: no such file or directory", p->corpus);
        in[0].path = strdup(p->corpus);
        in[0].is_val = -1;
        n_in = 1;
    }
    if (val_frac < 0) val_frac = 0.05;

    double total = 0;
    for (int i = 0; i < n_in; i++) {
        struct stat sb;
        if (stat(in[i].path, &sb) == 0) total += (double)sb.st_size;
    }
    make_ctx c = {.p = p, .st = st, .val_frac = val_frac};
    const char *terms[16];
    c.terms = terms;
    int rc = tg_tfidf_init(&c.tf);
    tg_atomic_file out = {0}, val = {0};
    int out_open = 0, val_open = 0;
    tg_progress prog;
    tg_progress_start(&prog, "chat-data", 2 * total);
    double done = 0;
    for (int i = 0; rc == TG_OK && i < n_in; i++) rc = read_jsonl(&in[i], p->field, count_doc, &c, &prog, &done);
    if (rc == TG_OK && (rc = tg_atomic_open(&out, p->out)) == TG_OK) out_open = 1;
    if (rc == TG_OK && p->val_out && (rc = tg_atomic_open(&val, p->val_out)) == TG_OK) val_open = 1;
    c.out = out_open ? &out : NULL;
    c.val = val_open ? &val : NULL;
    for (int i = 0; rc == TG_OK && i < n_in; i++) rc = read_jsonl(&in[i], p->field, write_doc, &c, &prog, &done);
    if (rc == TG_OK && st->train == 0)
        rc = tg_error_set(TG_ERR_INPUT, "%s: no posts with text for the training file", p->corpus);
    if (rc == TG_OK) {
        char extra[96];
        snprintf(extra, sizeof extra, "%lld conversations", (long long)(st->train + st->val));
        tg_progress_finish(&prog, done, extra);
    }
    rc = tg_chat_data_close(rc, &out, out_open, &val, val_open);
    tg_tfidf_free(c.tf);
    for (int i = 0; i < n_in; i++) free(in[i].path);
    return rc;
}
