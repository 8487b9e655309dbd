/*
 * ingest.c — the ingest pipeline: format detection and dispatch of each
 * INPUT, then for every document UTF-8 repair, clean-up, length filters,
 * exact and near-duplicate removal, the train/val split and the output files.
 *
 * Readers (ingest_text.c, ingest_jsonl.c, ingest_x.c, ingest_mastodon.c)
 * queue raw documents into a batch; a full batch is processed in two stages:
 *   1. in parallel (OpenMP), per document: repair, parse (JSONL), clean,
 *      hash, MinHash band keys, and the output line (jansson);
 *   2. in input order, on one thread: the duplicate sets, counts and writes.
 * Stage 2 sees documents in input order whatever the thread count, so the
 * output is the same for any --threads.
 *
 * Memory stays bounded: a batch holds at most BATCH_BYTES of input (or one
 * document of up to --max-bytes), the line reader at most --max-bytes; only
 * the duplicate sets grow with the corpus (8 bytes a document, plus 8 bytes a
 * band for near-duplicates), and their sizes are reported.
 *
 * Output files are written under temporary names and renamed into place only
 * when the whole run succeeded: a failed run leaves CORPUS as it was.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/core.h"
#include "data/ingest.h"
#include "data/jsonl_fields.h"

#define BATCH_ITEMS 8192
#define BATCH_BYTES ((size_t)8 << 20)
#define SEED_EXACT 0x5EED0001ULL
#define SEED_SPLIT 0x5EED0002ULL

typedef struct {
    /* input, set by tg_ingest_add */
    tg_item_kind kind;
    int source;
    int64_t line;
    size_t off, len;          /* raw bytes in the arena */
    int64_t id_off, ca_off;   /* -1: none */
    size_t id_len, ca_len;
    int64_t au_off, url_off;  /* author and URL: -1: none */
    size_t au_len, url_len;
    /* results of stage 1 */
    int drop;                 /* -1 kept so far, else a tg_drop_reason */
    char *err;                /* message of a malformed document (malloc'd) */
    int json_buf;             /* the output line (JSON, no newline): in out[json_buf] */
    size_t json_off, json_len;
    uint64_t h_exact, h_split;
    int64_t invalid, escapes, controls, chars;
    size_t text_len;
    int has_sig;
} item;

struct tg_ingest {
    tg_ingest_opts o;
    tg_ingest_stats st;
    char **sources;
    int n_sources, cap_sources;
    char *arena;
    size_t arena_len, arena_cap;
    /* Two batches: while the current one is processed in parallel, one
     * thread commits the previous one (stage 2 overlaps stage 1). */
    item *items[2];
    uint64_t *band_keys[2];   /* (BATCH_ITEMS, bands) each */
    int cur;                  /* index of the batch being filled */
    int n_items, n_prev;      /* documents in the current / previous batch */
    tg_jsonl_parser **jp;     /* per thread: the JSONL parser (made on first use) */
    /* Output lines, one buffer per (batch, thread): out[b * n_threads + t].
     * Filled in stage 1, read in stage 2, emptied when the batch is reused:
     * no malloc/free a document (frees from the other thread contended for
     * malloc's lock). */
    struct outbuf {
        char *buf;
        size_t len, cap;
    } *out;
    struct outbuf *scratch;   /* per thread: the cleaned text of the document in hand */
    int n_threads;
    tg_u64set exact;
    tg_lsh lsh;
    tg_atomic_file train, val;
    tg_progress prog;
    int64_t bytes_total, bytes_base, bytes_cur;
    int failed;               /* a fatal error was recorded */
    char *x_user;             /* X handle from data/account.js, or NULL */
};

tg_ingest_opts tg_ingest_default_opts(void) {
    tg_ingest_opts o;
    memset(&o, 0, sizeof o);
    o.split = "blank-line";
    o.field = "text";
    o.min_chars = 8;
    o.max_bytes = (int64_t)4 << 20;
    o.near_dup = 0.9;
    o.val_frac = 0.01;
    return o;
}

const tg_ingest_opts *tg_ingest_options(const tg_ingest *g) { return &g->o; }

int tg_ingest_source(tg_ingest *g, const char *name) {
    if (g->n_sources == g->cap_sources) {
        int ncap = g->cap_sources ? g->cap_sources * 2 : 16;
        char **ns = realloc(g->sources, (size_t)ncap * sizeof *ns);
        if (!ns) return 0;
        g->sources = ns;
        g->cap_sources = ncap;
    }
    g->sources[g->n_sources] = strdup(name);
    if (!g->sources[g->n_sources]) return 0;
    return g->n_sources++;
}

void tg_ingest_count_file(tg_ingest *g) { g->st.files++; }

void tg_ingest_count_invalid(tg_ingest *g, int64_t n) { g->st.invalid_bytes += n; }

void tg_ingest_drop(tg_ingest *g, tg_drop_reason why) {
    g->st.read++;
    g->st.dropped[why]++;
}

static void progress_draw(tg_ingest *g) {
    if (g->o.quiet) return;
    double done = (double)(g->bytes_base + g->bytes_cur);
    double el = tg_now() - g->prog.start;
    char extra[128];
    snprintf(extra, sizeof extra, "%.1f MB/s, %lld docs kept", el > 0 ? done / el / 1e6 : 0.0,
             (long long)g->st.kept);
    tg_progress_update(&g->prog, done, extra);
}

void tg_ingest_progress(tg_ingest *g, int64_t bytes_done) {
    g->bytes_cur = bytes_done;
    progress_draw(g);
}

/* -------------------------------------------------------------- batching */

static int arena_put(tg_ingest *g, const char *data, size_t len, size_t *off) {
    if (g->arena_len + len > g->arena_cap) {
        size_t ncap = g->arena_cap;
        while (ncap < g->arena_len + len) ncap *= 2;
        char *na = realloc(g->arena, ncap);
        if (!na) return tg_error_set(TG_ERR_RUNTIME, "out of memory (batch of %zu bytes)", ncap);
        g->arena = na;
        g->arena_cap = ncap;
    }
    memcpy(g->arena + g->arena_len, data, len);
    *off = g->arena_len;
    g->arena_len += len;
    return TG_OK;
}

static char *fmt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_err(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return strdup(buf);
}

/* Room for need more bytes at b->buf + b->len (grown by doubling, kept for
 * the next document), or NULL when memory is short. */
static char *outbuf_reserve(struct outbuf *b, size_t need) {
    if (b->len + need > b->cap) {
        size_t ncap = b->cap ? b->cap : (size_t)1 << 20;
        while (ncap < b->len + need) ncap *= 2;
        char *nb = realloc(b->buf, ncap);
        if (!nb) return NULL;
        b->buf = nb;
        b->cap = ncap;
    }
    return b->buf + b->len;
}

static char *put_lit(char *o, const char *lit) {
    size_t n = strlen(lit);
    memcpy(o, lit, n);
    return o + n;
}

/* Writes s (valid UTF-8) as a JSON string: '"', '\\' and control characters
 * escaped (\b \f \n \r \t, else \u00XX), everything else as is. o needs
 * 6n + 2 bytes. */
static char *put_json_string(char *o, const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        size_t j = i; /* copy the run that needs no escape in one go */
        while (j < n && (unsigned char)s[j] >= 0x20 && s[j] != '"' && s[j] != '\\') j++;
        memcpy(o, s + i, j - i);
        o += j - i;
        if (j == n) break;
        unsigned char c = (unsigned char)s[j];
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        i = j + 1;
    }
    *o++ = '"';
    return o;
}

/* Stage 1 for one document: everything that needs no shared state. */
static void process_item(tg_ingest *g, int batch, item *it, uint64_t *keys) {
    const char *raw = g->arena + it->off;
    size_t n = it->len;
    char *fixed = NULL;
    const char *text = raw;
    size_t tlen = n;
    const char *id = it->id_off >= 0 ? g->arena + it->id_off : NULL;
    size_t id_len = it->id_len;
    const char *ca = it->ca_off >= 0 ? g->arena + it->ca_off : NULL;
    size_t ca_len = it->ca_len;
    const char *au = it->au_off >= 0 ? g->arena + it->au_off : NULL;
    size_t au_len = it->au_len;
    const char *url = it->url_off >= 0 ? g->arena + it->url_off : NULL;
    size_t url_len = it->url_len;

    int t = 0; /* this thread's parser and output buffer */
#ifdef _OPENMP
    t = omp_get_thread_num();
#endif

    it->drop = -1;
    if (tg_utf8_valid_prefix((const uint8_t *)raw, n) < n) {
        fixed = malloc(3 * n + 1);
        if (!fixed) {
            it->drop = TG_DROP_malformed;
            it->err = fmt_err("out of memory");
            return;
        }
        tlen = tg_utf8_sanitize(raw, n, fixed, 3 * n, &it->invalid);
        text = fixed;
    }
    if (it->kind == TG_ITEM_JSONL) {
        if (memchr(text, 0, tlen)) {
            it->drop = TG_DROP_malformed;
            it->err = fmt_err("NUL byte in the line");
            goto done;
        }
        if (!g->jp[t]) g->jp[t] = tg_jsonl_parser_new();
        tg_jsonl_doc d;
        char msg[256];
        int jr = g->jp[t] ? tg_jsonl_extract(g->jp[t], text, tlen, g->o.field, &d, msg, sizeof msg) : TG_JSONL_NOMEM;
        if (jr != TG_JSONL_OK) {
            it->drop = TG_DROP_malformed;
            it->err = strdup(g->jp[t] ? msg : "out of memory");
            goto done;
        }
        text = d.text;
        tlen = d.text_len;
        id = d.id;
        id_len = d.id_len;
        ca = d.created_at;
        ca_len = d.created_at_len;
        au = d.author;
        au_len = d.author_len;
        url = d.url;
        url_len = d.url_len;
        /* A JSON string may hold \u0000: the clean-up removes it with the other control characters. */
    }
    char *clean = outbuf_reserve(&g->scratch[t], tlen + 1);
    if (!clean) {
        it->drop = TG_DROP_malformed;
        it->err = fmt_err("out of memory");
        goto done;
    }
    tg_clean_counts cc = {0, 0, 0};
    size_t clen = tg_clean_text(text, tlen, clean, &cc);
    it->escapes = cc.escapes;
    it->controls = cc.controls;
    it->chars = cc.chars;
    it->text_len = clen;
    if (clen == 0) {
        it->drop = TG_DROP_empty;
        goto done;
    }
    if (cc.chars < g->o.min_chars) {
        it->drop = TG_DROP_too_short;
        goto done;
    }
    it->h_exact = tg_hash64(clean, clen, SEED_EXACT);
    it->h_split = tg_hash64(clean, clen, SEED_SPLIT);
    if (g->o.near_dup > 0) {
        uint64_t sig[TG_MINHASH_K];
        it->has_sig = tg_minhash_signature(clean, clen, sig) > 0;
        if (it->has_sig) tg_lsh_block(sig, g->lsh.bands, g->lsh.rows, keys);
    }
    char idbuf[17];
    if (!id) { /* no id in the source: the content hash names the document */
        snprintf(idbuf, sizeof idbuf, "%016llx", (unsigned long long)it->h_exact);
        id = idbuf;
        id_len = 16;
    }
    /* The output line, written here: jansson's object and dump cost a
     * quarter of an ingest run. Strings are escaped as jansson's compact
     * dump does (the same bytes out). */
    const char *src = g->sources[it->source];
    size_t src_len = strlen(src);
    /* id and created_at are valid UTF-8 as they are: they come from simdjson
     * or jansson, both of which validate, or from the content hash. */
    size_t need = 6 * (id_len + clen + src_len + (ca ? ca_len : 0) + (au ? au_len : 0) + (url ? url_len : 0)) + 96;
    struct outbuf *ob = &g->out[batch * g->n_threads + t];
    char *o0 = outbuf_reserve(ob, need), *o = o0;
    if (o0) {
        o = put_lit(o, "{\"id\":");
        o = put_json_string(o, id, id_len);
        o = put_lit(o, ",\"text\":");
        o = put_json_string(o, clean, clen);
        o = put_lit(o, ",\"source\":");
        o = put_json_string(o, src, src_len);
        o = put_lit(o, ",\"created_at\":");
        o = ca ? put_json_string(o, ca, ca_len) : put_lit(o, "null");
        if (au && au_len) {
            o = put_lit(o, ",\"author\":");
            o = put_json_string(o, au, au_len);
        }
        if (url && url_len) {
            o = put_lit(o, ",\"url\":");
            o = put_json_string(o, url, url_len);
        }
        o = put_lit(o, "}");
        it->json_buf = batch * g->n_threads + t;
        it->json_off = ob->len;
        it->json_len = (size_t)(o - o0);
        ob->len += it->json_len;
    } else {
        it->drop = TG_DROP_malformed;
        it->err = fmt_err("out of memory");
    }
done:
    free(fixed);
}

static void report(tg_ingest *g, int source, int64_t line, const char *msg) {
    if (g->o.quiet) return;
    if (g->prog.tty) fprintf(stderr, "\r\033[K");
    if (line > 0) fprintf(stderr, "truthgpt: warning: %s:%lld: %s\n", g->sources[source], (long long)line, msg);
    else if (line < 0)
        fprintf(stderr, "truthgpt: warning: %s: record %lld: %s\n", g->sources[source], (long long)-line, msg);
    else fprintf(stderr, "truthgpt: warning: %s: %s\n", g->sources[source], msg);
}

static int fatal_here(tg_ingest *g, int source, int64_t line, const char *msg) {
    g->failed = 1;
    if (line > 0)
        return tg_error_set(TG_ERR_INPUT, "%s:%lld: %s (--strict)", g->sources[source], (long long)line, msg);
    if (line < 0)
        return tg_error_set(TG_ERR_INPUT, "%s: record %lld: %s (--strict)", g->sources[source], (long long)-line, msg);
    return tg_error_set(TG_ERR_INPUT, "%s: %s (--strict)", g->sources[source], msg);
}

/* Stage 2 for one document, in input order. */
static int commit_item(tg_ingest *g, item *it, const uint64_t *keys) {
    tg_ingest_stats *st = &g->st;
    st->read++;
    st->invalid_bytes += it->invalid;
    st->escapes += it->escapes;
    st->controls += it->controls;
    if (it->drop >= 0) {
        st->dropped[it->drop]++;
        if (it->err) {
            if (g->o.strict) return fatal_here(g, it->source, it->line, it->err);
            report(g, it->source, it->line, it->err);
        }
        return TG_OK;
    }
    int present;
    TG_TRY(tg_u64set_insert(&g->exact, it->h_exact, &present));
    if (present) {
        st->dropped[TG_DROP_duplicate]++;
        return TG_OK;
    }
    if (g->o.near_dup > 0 && it->has_sig) {
        int dup;
        TG_TRY(tg_lsh_check_insert(&g->lsh, keys, &dup));
        if (dup) {
            st->dropped[TG_DROP_near_duplicate]++;
            return TG_OK;
        }
    }
    /* The split is a function of the content alone: the same post lands on
     * the same side in every run, whatever else is ingested with it. */
    double u = (double)(it->h_split >> 11) * (1.0 / 9007199254740992.0);
    tg_atomic_file *af = u < g->o.val_frac ? &g->val : &g->train;
    size_t jl = it->json_len;
    if (fwrite(g->out[it->json_buf].buf + it->json_off, 1, jl, af->f) != jl || fputc('\n', af->f) == EOF)
        return tg_error_set(TG_ERR_RUNTIME, "%s: write failed: %s", af->path, strerror(errno));
    if (af == &g->val) st->val++;
    else st->train++;
    st->kept++;
    st->bytes_kept += (int64_t)it->text_len;
    st->chars_kept += it->chars;
    return TG_OK;
}

/* Stage 2 over a processed batch, in order; frees its per-document results. */
static int commit_batch(tg_ingest *g, item *items, const uint64_t *keys, int n) {
    int bands = g->o.near_dup > 0 ? tg_lsh_stride(&g->lsh) : 0;
    int rc = TG_OK;
    /* The duplicate sets outgrow the caches: ask for the slots a few
     * documents ahead so that their loads overlap. */
    enum { AHEAD = 8 };
    for (int i = 0; i < n; i++) {
        item *it = &items[i];
        if (rc == TG_OK && i + AHEAD < n && items[i + AHEAD].drop < 0) {
            tg_u64set_prefetch(&g->exact, items[i + AHEAD].h_exact);
            if (bands && items[i + AHEAD].has_sig) tg_lsh_prefetch(&g->lsh, keys + (size_t)(i + AHEAD) * bands);
        }
        if (rc == TG_OK) rc = commit_item(g, it, bands ? keys + (size_t)i * bands : NULL);
        free(it->err);
        it->err = NULL;
    }
    return rc;
}

/* Processes the current batch (stage 1, all threads) while one thread
 * commits the previous one (stage 2); the current one becomes the previous.
 * drain: commit it too, so that everything read so far is accounted for. */
static int flush_batch_mode(tg_ingest *g, int drain) {
    int n = g->n_items, np = g->n_prev, cur = g->cur, bands = g->o.near_dup > 0 ? tg_lsh_stride(&g->lsh) : 0;
    item *items = g->items[cur], *prev = g->items[cur ^ 1];
    uint64_t *keys = g->band_keys[cur], *pkeys = g->band_keys[cur ^ 1];
    int rc_prev = TG_OK;
    /* This batch's previous documents were committed already. */
    for (int t = 0; t < g->n_threads; t++) g->out[cur * g->n_threads + t].len = 0;
    if (n || np) {
#pragma omp parallel
        {
#pragma omp single nowait
            {
                if (np) rc_prev = commit_batch(g, prev, pkeys, np);
            }
#pragma omp for schedule(dynamic, 32)
            for (int i = 0; i < n; i++) process_item(g, cur, &items[i], bands ? keys + (size_t)i * bands : NULL);
        }
    }
    g->n_prev = n;
    g->cur ^= 1;
    g->n_items = 0;
    g->arena_len = 0; /* stage 2 needs only the results, not the raw bytes */
    int rc = rc_prev;
    if (drain && g->n_prev) {
        int r2 = rc == TG_OK ? commit_batch(g, g->items[cur], g->band_keys[cur], g->n_prev) : TG_OK;
        if (rc == TG_OK) rc = r2;
        g->n_prev = 0;
    }
    if (rc != TG_OK) g->failed = 1;
    progress_draw(g);
    return rc;
}

static int flush_batch(tg_ingest *g) { return flush_batch_mode(g, 1); }

int tg_ingest_add(tg_ingest *g, tg_item_kind kind, int source, int64_t line, const char *data, size_t len,
                  const char *id, const char *created_at) {
    tg_ingest_meta m = {id, created_at, NULL, NULL};
    return tg_ingest_add_post(g, kind, source, line, data, len, &m);
}

/* Copies s (may be NULL) into the arena; *off = -1 for none. */
static int arena_put_str(tg_ingest *g, const char *s, int64_t *off, size_t *len) {
    *off = -1;
    *len = 0;
    if (!s) return TG_OK;
    size_t o = 0;
    *len = strlen(s);
    TG_TRY(arena_put(g, s, *len, &o));
    *off = (int64_t)o;
    return TG_OK;
}

int tg_ingest_add_post(tg_ingest *g, tg_item_kind kind, int source, int64_t line, const char *data, size_t len,
                       const tg_ingest_meta *m) {
    const char *id = m ? m->id : NULL, *created_at = m ? m->created_at : NULL;
    const char *author = m ? m->author : NULL, *url = m ? m->url : NULL;
    size_t need = len + (id ? strlen(id) : 0) + (created_at ? strlen(created_at) : 0) + (author ? strlen(author) : 0) +
                  (url ? strlen(url) : 0);
    if (g->n_items == BATCH_ITEMS || (g->arena_len && g->arena_len + need > BATCH_BYTES))
        TG_TRY(flush_batch_mode(g, 0));
    item *it = &g->items[g->cur][g->n_items];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    it->source = source;
    it->line = line;
    it->len = len;
    TG_TRY(arena_put(g, data, len, &it->off));
    TG_TRY(arena_put_str(g, id, &it->id_off, &it->id_len));
    TG_TRY(arena_put_str(g, created_at, &it->ca_off, &it->ca_len));
    TG_TRY(arena_put_str(g, author, &it->au_off, &it->au_len));
    TG_TRY(arena_put_str(g, url, &it->url_off, &it->url_len));
    g->n_items++;
    return TG_OK;
}

int tg_ingest_reject(tg_ingest *g, tg_drop_reason why, int source, int64_t line, const char *fmt, ...) {
    TG_TRY(flush_batch(g));
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (why == TG_DROP_COUNT) g->st.malformed_files++;
    else {
        g->st.read++;
        g->st.dropped[why]++;
    }
    if (g->o.strict) return fatal_here(g, source, line, msg);
    report(g, source, line, msg);
    return TG_OK;
}

/* ------------------------------------------------------ inputs & formats */

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

int tg_ingest_is_x_file(const char *path) {
    const char *b = base_name(path);
    if (!strcmp(b, "tweets.js") || !strcmp(b, "tweet.js")) return 1;
    /* split archives: tweets-part1.js, tweet-part2.js */
    const char *p = NULL;
    if (!strncmp(b, "tweets-part", 11)) p = b + 11;
    else if (!strncmp(b, "tweet-part", 10)) p = b + 10;
    if (!p || !(*p >= '0' && *p <= '9')) return 0;
    while (*p >= '0' && *p <= '9') p++;
    return !strcmp(p, ".js");
}

int tg_ingest_is_mastodon_file(const char *path) { return !strcmp(base_name(path), "outbox.json"); }

int tg_ingest_is_x_account_file(const char *path) { return !strcmp(base_name(path), "account.js"); }

void tg_ingest_set_x_user(tg_ingest *g, const char *username) {
    free(g->x_user);
    g->x_user = username && username[0] ? strdup(username) : NULL;
}

const char *tg_ingest_x_user(const tg_ingest *g) { return g->x_user; }

static int is_archive_name(const char *path) {
    return ends_with(path, ".zip") || ends_with(path, ".tar") || ends_with(path, ".tar.gz") ||
           ends_with(path, ".tgz") || ends_with(path, ".tar.bz2") || ends_with(path, ".tar.xz");
}

/* Archives also by content, whatever their name: zip and gzip magic. */
static int has_archive_magic(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char m[4] = {0};
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    return (n >= 4 && m[0] == 'P' && m[1] == 'K' && m[2] == 3 && m[3] == 4) || (n >= 2 && m[0] == 0x1f && m[1] == 0x8b);
}

static long file_read(void *ctx, char *buf, size_t n) {
    FILE *f = ctx;
    size_t k = fread(buf, 1, n, f);
    if (k == 0 && ferror(f)) return -1;
    return (long)k;
}

/* Whole-file formats: X's tweets.js and Mastodon's outbox.json. */
static int read_whole(tg_ingest *g, const char *path, const char *format, int source) {
    char *data;
    size_t len;
    TG_TRY(tg_read_file(path, &data, &len));
    tg_ingest_count_file(g);
    int rc = !strcmp(format, "x") ? tg_ingest_read_x(g, source, data, len)
                                  : tg_ingest_read_mastodon(g, source, data, len);
    free(data);
    g->bytes_cur = (int64_t)len;
    return rc;
}

static int read_stream(tg_ingest *g, const char *path, const char *format, int source) {
    FILE *f = fopen(path, "rb");
    if (!f) return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    tg_ingest_count_file(g);
    int rc = !strcmp(format, "jsonl") ? tg_ingest_read_jsonl(g, source, file_read, f)
                                      : tg_ingest_read_text(g, source, file_read, f);
    fclose(f);
    return rc;
}

typedef struct {
    tg_ingest *g;
    const char *archive;
    const char *format; /* "x", "mastodon" or NULL: both */
    int found;
} member_ctx;

static int member_cb(void *ctx, const char *member, char *data, size_t len) {
    member_ctx *mc = ctx;
    char name[4096];
    snprintf(name, sizeof name, "%s/%s", mc->archive, member);
    /* account.js names the handle of the tweets after it (X archives list
     * data/ in name order, so it comes before tweets.js). */
    if (tg_ingest_is_x_account_file(member)) return tg_ingest_read_x_account(mc->g, data, len);
    int source = tg_ingest_source(mc->g, name);
    tg_ingest_count_file(mc->g);
    mc->found++;
    if (tg_ingest_is_x_file(member)) return tg_ingest_read_x(mc->g, source, data, len);
    return tg_ingest_read_mastodon(mc->g, source, data, len);
}

static int want_member(void *ctx, const char *member) {
    const char *fmt = ((member_ctx *)ctx)->format;
    if (!fmt || !strcmp(fmt, "x"))
        if (tg_ingest_is_x_file(member) || tg_ingest_is_x_account_file(member)) return 1;
    if (!fmt || !strcmp(fmt, "mastodon"))
        if (tg_ingest_is_mastodon_file(member)) return 1;
    return 0;
}

static int read_archive(tg_ingest *g, const char *path) {
    const char *fmt = g->o.format;
    if (fmt && strcmp(fmt, "x") && strcmp(fmt, "mastodon"))
        return tg_error_set(TG_ERR_INPUT, "%s: an archive holds an X or Mastodon export; --format %s reads plain files",
                            path, fmt);
    member_ctx mc = {g, path, fmt, 0};
    /* Members up to 4 GB: tweets.js of the most prolific accounts is a few hundred MB. */
    TG_TRY(tg_archive_each(path, want_member, member_cb, &mc, (size_t)4 << 30, g));
    if (!mc.found)
        return tg_error_set(TG_ERR_INPUT,
                            "%s: no data/tweets.js (X archive) or outbox.json (Mastodon archive) in this archive", path);
    return TG_OK;
}

/* Natural order of X part files: tweets.js, tweets-part1.js, tweets-part2.js, ..., tweets-part10.js. */
static long part_number(const char *name) {
    const char *p = strstr(name, "-part");
    return p ? strtol(p + 5, NULL, 10) : 0;
}
static int cmp_parts(const void *a, const void *b) {
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    long px = part_number(x), py = part_number(y);
    if (px != py) return px < py ? -1 : 1;
    return strcmp(x, y);
}

static int read_dir(tg_ingest *g, const char *path) {
    const char *fmt = g->o.format;
    char *files[1024];
    int nf = 0;
    const char *subdirs[] = {"data", "", NULL};
    int is_x = 0;
    for (int d = 0; subdirs[d]; d++) {
        char *dir = subdirs[d][0] ? tg_path_join(path, subdirs[d]) : strdup(path);
        DIR *dp = dir ? opendir(dir) : NULL;
        if (dp) {
            struct dirent *e;
            while ((e = readdir(dp)) && nf < 1024) {
                int x = (!fmt || !strcmp(fmt, "x")) && tg_ingest_is_x_file(e->d_name);
                int m = (!fmt || !strcmp(fmt, "mastodon")) && tg_ingest_is_mastodon_file(e->d_name);
                if (x || m) {
                    files[nf++] = tg_path_join(dir, e->d_name);
                    is_x |= x;
                }
            }
            closedir(dp);
        }
        free(dir);
        if (nf) break; /* data/ first: the X layout; the root is for Mastodon and bare copies */
    }
    if (!nf)
        return tg_error_set(TG_ERR_INPUT,
                            "%s: no data/tweets.js (X archive) or outbox.json (Mastodon archive) in this folder%s", path,
                            fmt && (!strcmp(fmt, "text") || !strcmp(fmt, "jsonl"))
                                ? " (text and JSONL inputs are files: pass them by name)"
                                : "");
    qsort(files, (size_t)nf, sizeof files[0], cmp_parts);
    int rc = TG_OK;
    if (is_x) { /* the handle, for the tweets' author and URL */
        int fx = 0;
        while (fx < nf && !tg_ingest_is_x_file(files[fx])) fx++;
        char *dir = fx < nf ? strdup(files[fx]) : NULL, *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash) *slash = 0;
        char *acct = slash ? tg_path_join(dir, "account.js") : NULL;
        char *data = NULL;
        size_t len = 0;
        if (acct && tg_path_exists(acct) && tg_read_file(acct, &data, &len) == TG_OK)
            rc = tg_ingest_read_x_account(g, data, len);
        free(data);
        free(acct);
        free(dir);
    }
    for (int i = 0; i < nf; i++) {
        if (rc == TG_OK) {
            int source = tg_ingest_source(g, files[i]);
            rc = read_whole(g, files[i], tg_ingest_is_x_file(files[i]) ? "x" : "mastodon", source);
        }
        free(files[i]);
    }
    return rc;
}

static int64_t input_size(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return (int64_t)st.st_size;
    /* A folder: what its export files weigh (data/ or root). */
    int64_t t = 0;
    const char *subdirs[] = {"data", "", NULL};
    for (int d = 0; subdirs[d]; d++) {
        char *dir = subdirs[d][0] ? tg_path_join(path, subdirs[d]) : strdup(path);
        DIR *dp = dir ? opendir(dir) : NULL;
        if (dp) {
            struct dirent *e;
            while ((e = readdir(dp))) {
                if (!tg_ingest_is_x_file(e->d_name) && !tg_ingest_is_mastodon_file(e->d_name)) continue;
                char *f = tg_path_join(dir, e->d_name);
                struct stat fs;
                if (f && stat(f, &fs) == 0) t += (int64_t)fs.st_size;
                free(f);
            }
            closedir(dp);
        }
        free(dir);
    }
    return t;
}

static int read_input(tg_ingest *g, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return read_dir(g, path);
    if (!S_ISREG(st.st_mode)) return tg_error_set(TG_ERR_INPUT, "%s: not a regular file", path);
    const char *fmt = g->o.format;
    if (is_archive_name(path) || (!fmt && has_archive_magic(path)) ||
        (fmt && (!strcmp(fmt, "x") || !strcmp(fmt, "mastodon")) && has_archive_magic(path)))
        return read_archive(g, path);
    if (!fmt) {
        if (tg_ingest_is_x_file(path)) fmt = "x";
        else if (tg_ingest_is_mastodon_file(path)) fmt = "mastodon";
        else if (ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json")) fmt = "jsonl";
        else fmt = "text";
    }
    int source = tg_ingest_source(g, path);
    if (!strcmp(fmt, "x") || !strcmp(fmt, "mastodon")) return read_whole(g, path, fmt, source);
    return read_stream(g, path, fmt, source);
}

/* ----------------------------------------------------------------- stats */

static int write_stats(tg_ingest *g, const char *out_dir) {
    tg_ingest_stats *st = &g->st;
    json_t *drop = json_object();
#define TG_X(name, help) json_object_set_new(drop, #name, json_integer(st->dropped[TG_DROP_##name]));
    TG_INGEST_DROPS(TG_X)
#undef TG_X
    json_t *src = json_array();
    for (int i = 0; i < g->n_sources; i++) json_array_append_new(src, json_string(g->sources[i]));
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                          "inputs", (json_int_t)st->inputs, "files", (json_int_t)st->files, "malformed_files",
                          (json_int_t)st->malformed_files, "documents_read", (json_int_t)st->read, "documents_kept",
                          (json_int_t)st->kept, "train", (json_int_t)st->train, "val", (json_int_t)st->val, "dropped",
                          drop, "duplicates", (json_int_t)st->dropped[TG_DROP_duplicate], "near_duplicates",
                          (json_int_t)st->dropped[TG_DROP_near_duplicate], "invalid_bytes_replaced",
                          (json_int_t)st->invalid_bytes, "escape_sequences_removed", (json_int_t)st->escapes,
                          "control_chars_removed", (json_int_t)st->controls, "bytes_read", (json_int_t)st->bytes_in,
                          "bytes_kept", (json_int_t)st->bytes_kept, "chars_kept", (json_int_t)st->chars_kept,
                          "dedup_index_bytes", (json_int_t)(st->dedup_bytes + st->near_dup_bytes));
    if (!o) {
        json_decref(src);
        return tg_error_set(TG_ERR_RUNTIME, "cannot build stats.json");
    }
    json_t *opts = json_pack("{s:s?, s:s, s:s, s:i, s:f, s:f, s:i, s:i, s:b, s:b, s:i, s:i}", "format", g->o.format,
                             "split", g->o.split, "field", g->o.field, "min_chars", g->o.min_chars, "near_dup",
                             g->o.near_dup, "val_frac", g->o.val_frac, "lsh_bands", st->lsh_bands, "lsh_rows",
                             st->lsh_rows, "drop_links", g->o.drop_links, "keep_retweets", g->o.keep_retweets,
                             "max_bytes", (int)(g->o.max_bytes > 0x7fffffff ? 0x7fffffff : g->o.max_bytes), "threads",
                             tg_num_threads());
    json_object_set_new(o, "options", opts ? opts : json_null());
    json_object_set_new(o, "sources", src);
    json_object_set_new(o, "seconds", json_real(st->seconds));
    char *s = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    if (!s) return tg_error_set(TG_ERR_RUNTIME, "cannot encode stats.json");
    char *path = tg_path_join(out_dir, "stats.json");
    size_t sl = strlen(s);
    s = realloc(s, sl + 2);
    s[sl] = '\n';
    int rc = tg_write_file_atomic(path, s, sl + 1);
    free(path);
    free(s);
    return rc;
}

void tg_ingest_print_summary(const tg_ingest_stats *st, const char *out_dir, FILE *f) {
    fprintf(f, "\n  %-42s %12s\n", "ingest summary", "documents");
    fprintf(f, "  %-42s %12lld\n", "read", (long long)st->read);
#define TG_X(name, help)                                                                               \
    if (st->dropped[TG_DROP_##name])                                                                   \
        fprintf(f, "  %-42s %12lld\n", "  dropped: " help, (long long)st->dropped[TG_DROP_##name]);
    TG_INGEST_DROPS(TG_X)
#undef TG_X
    fprintf(f, "  %-42s %12lld\n", "kept", (long long)st->kept);
    fprintf(f, "  %-42s %12lld\n", "  train.jsonl", (long long)st->train);
    fprintf(f, "  %-42s %12lld\n", "  val.jsonl", (long long)st->val);
    if (st->malformed_files) fprintf(f, "  %-42s %12lld\n", "files skipped as malformed", (long long)st->malformed_files);
    fprintf(f, "  %-42s %12lld\n", "invalid UTF-8 bytes replaced (U+FFFD)", (long long)st->invalid_bytes);
    fprintf(f, "  %-42s %12lld\n", "terminal escape sequences removed", (long long)st->escapes);
    fprintf(f, "  %-42s %12lld\n", "control characters removed", (long long)st->controls);
    fprintf(f, "  %-42s %9.1f MB\n", "input read", st->bytes_in / 1e6);
    fprintf(f, "  %-42s %9.1f MB\n", "text kept", st->bytes_kept / 1e6);
    fprintf(f, "  %-42s %9.1f MB\n", "duplicate index memory", (st->dedup_bytes + st->near_dup_bytes) / 1e6);
    fprintf(f, "  %-42s %9.1f s  (%.1f MB/s)\n", "time", st->seconds,
            st->seconds > 0 ? st->bytes_in / 1e6 / st->seconds : 0.0);
    fprintf(f, "  wrote %s/train.jsonl, val.jsonl, stats.json\n", out_dir);
}

/* ------------------------------------------------------------------- run */

static int check_opts(const tg_ingest_opts *o) {
    if (o->format && strcmp(o->format, "text") && strcmp(o->format, "jsonl") && strcmp(o->format, "x") &&
        strcmp(o->format, "mastodon"))
        return tg_error_set(TG_ERR_INPUT, "--format: unknown format '%s' (text, jsonl, x or mastodon)", o->format);
    if (!o->split || !o->split[0]) return tg_error_set(TG_ERR_INPUT, "--split: empty separator");
    if (!o->field || !o->field[0]) return tg_error_set(TG_ERR_INPUT, "--field: empty path");
    if (o->near_dup < 0 || o->near_dup > 1) return tg_error_set(TG_ERR_INPUT, "--near-dup: %g is not in [0, 1]", o->near_dup);
    if (o->val_frac < 0 || o->val_frac >= 1) return tg_error_set(TG_ERR_INPUT, "--val-frac: %g is not in [0, 1)", o->val_frac);
    if (o->min_chars < 0) return tg_error_set(TG_ERR_INPUT, "--min-chars: %d is negative", o->min_chars);
    if (o->max_bytes < 1024) return tg_error_set(TG_ERR_INPUT, "--max-bytes: %lld is below 1024", (long long)o->max_bytes);
    if (o->threads < 0) return tg_error_set(TG_ERR_INPUT, "--threads: %d is negative", o->threads);
    return TG_OK;
}

int tg_ingest_run(const tg_ingest_opts *o, char *const *inputs, int n_inputs, const char *out_dir,
                  tg_ingest_stats *out_st) {
    TG_TRY(check_opts(o));
    if (n_inputs <= 0) return tg_error_set(TG_ERR_INPUT, "ingest: no INPUT given");
    /* Missing inputs fail before anything is created. */
    for (int i = 0; i < n_inputs; i++)
        if (!tg_path_exists(inputs[i]))
            return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", inputs[i], strerror(ENOENT));
    TG_TRY(tg_mkdirs(out_dir));
    if (o->threads > 0) tg_set_threads(o->threads);

    tg_ingest *g = calloc(1, sizeof *g);
    if (!g) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    g->o = *o;
    int rc = TG_OK;
    double t0 = tg_now();
    g->arena_cap = BATCH_BYTES;
    g->arena = malloc(g->arena_cap);
    g->items[0] = calloc(BATCH_ITEMS, sizeof(item));
    g->items[1] = calloc(BATCH_ITEMS, sizeof(item));
    g->n_threads = tg_num_threads();
#ifdef _OPENMP
    if (omp_get_max_threads() > g->n_threads) g->n_threads = omp_get_max_threads();
#endif
    g->jp = calloc((size_t)g->n_threads, sizeof *g->jp);
    g->out = calloc((size_t)2 * g->n_threads, sizeof *g->out);
    g->scratch = calloc((size_t)g->n_threads, sizeof *g->scratch);
    if (!g->arena || !g->items[0] || !g->items[1] || !g->jp || !g->out || !g->scratch)
        rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    if (rc == TG_OK) rc = tg_u64set_init(&g->exact, 1 << 16);
    if (rc == TG_OK && o->near_dup > 0) {
        rc = tg_lsh_init(&g->lsh, o->near_dup);
        if (rc == TG_OK) {
            for (int b = 0; b < 2; b++) {
                g->band_keys[b] = malloc((size_t)BATCH_ITEMS * (size_t)tg_lsh_stride(&g->lsh) * sizeof(uint64_t));
                if (!g->band_keys[b]) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
            }
            g->st.lsh_bands = g->lsh.bands;
            g->st.lsh_rows = g->lsh.rows;
        }
    }
    char *train_path = tg_path_join(out_dir, "train.jsonl"), *val_path = tg_path_join(out_dir, "val.jsonl");
    int train_open = 0, val_open = 0;
    if (rc == TG_OK) rc = tg_atomic_open(&g->train, train_path);
    if (rc == TG_OK) train_open = 1;
    if (rc == TG_OK) rc = tg_atomic_open(&g->val, val_path);
    if (rc == TG_OK) val_open = 1;
    /* Large stdio buffers: one write call a megabyte, not every 4 KB. */
    if (rc == TG_OK) {
        setvbuf(g->train.f, NULL, _IOFBF, (size_t)1 << 20);
        setvbuf(g->val.f, NULL, _IOFBF, (size_t)1 << 18);
    }

    if (rc == TG_OK) {
        for (int i = 0; i < n_inputs; i++) g->bytes_total += input_size(inputs[i]);
        tg_progress_start(&g->prog, "ingest", (double)g->bytes_total);
        g->st.inputs = n_inputs;
    }
    for (int i = 0; i < n_inputs && rc == TG_OK; i++) {
        g->bytes_cur = 0;
        tg_ingest_set_x_user(g, NULL); /* each X archive names its own account */
        rc = read_input(g, inputs[i]);
        if (rc == TG_OK) rc = flush_batch(g);
        int64_t sz = input_size(inputs[i]);
        g->bytes_base += sz;
        g->st.bytes_in += sz;
        g->bytes_cur = 0;
    }
    if (rc == TG_OK) rc = flush_batch(g);
    g->st.seconds = tg_now() - t0;
    g->st.dedup_bytes = (int64_t)tg_u64set_bytes(&g->exact);
    if (o->near_dup > 0) g->st.near_dup_bytes = (int64_t)tg_lsh_bytes(&g->lsh);
    if (!o->quiet && rc == TG_OK) {
        char extra[96];
        snprintf(extra, sizeof extra, "%.1f MB/s, %lld docs kept",
                 g->st.seconds > 0 ? g->st.bytes_in / 1e6 / g->st.seconds : 0.0, (long long)g->st.kept);
        tg_progress_finish(&g->prog, (double)g->bytes_total, extra);
    }
    if (rc == TG_OK && g->st.kept == 0)
        rc = tg_error_set(TG_ERR_INPUT, "no documents kept from %s%s (read %lld; nothing written to %s)", inputs[0],
                          n_inputs > 1 ? " and the other inputs" : "", (long long)g->st.read, out_dir);
    /* Commit only a complete run; otherwise drop the temporaries. */
    if (rc == TG_OK) {
        train_open = 0;
        rc = tg_atomic_commit(&g->train);
    }
    if (rc == TG_OK) {
        val_open = 0;
        rc = tg_atomic_commit(&g->val);
    }
    if (rc == TG_OK) rc = write_stats(g, out_dir);
    if (train_open) tg_atomic_abort(&g->train);
    if (val_open) tg_atomic_abort(&g->val);
    if (out_st) *out_st = g->st;
    for (int b = 0; b < 2; b++)
        for (int i = 0; g->items[b] && i < BATCH_ITEMS; i++) {
            free(g->items[b][i].err);
        }
    for (int t = 0; t < g->n_threads && g->jp; t++) {
        tg_jsonl_parser_free(g->jp[t]);
    }
    free(g->jp);
    for (int k = 0; g->out && k < 2 * g->n_threads; k++) free(g->out[k].buf);
    free(g->out);
    for (int t = 0; g->scratch && t < g->n_threads; t++) free(g->scratch[t].buf);
    free(g->scratch);
    free(train_path);
    free(val_path);
    for (int i = 0; i < g->n_sources; i++) free(g->sources[i]);
    free(g->sources);
    free(g->x_user);
    free(g->arena);
    free(g->items[0]);
    free(g->items[1]);
    free(g->band_keys[0]);
    free(g->band_keys[1]);
    tg_u64set_free(&g->exact);
    if (o->near_dup > 0) tg_lsh_free(&g->lsh);
    free(g);
    return rc;
}
