/*
 * search_text.c — the text side of search: what is indexed for a post (CJK
 * runs as bigrams), how a user's query becomes an FTS5 expression that can
 * never be a syntax error, and the snippet shown for a hit.
 *
 * Word matching for snippets folds ASCII case only; FTS5's unicode61 folds
 * all of Unicode and removes diacritics, so a hit found through "café" by
 * "cafe" is returned but its snippet may show no highlight. That is the
 * price of not re-implementing unicode61 here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "search/search.h"

/* Decodes one code point at s (n bytes left); *len its bytes. An invalid
 * byte decodes as U+FFFD of length 1. */
/* The code point at s and its length; an invalid or cut-short sequence
 * reads as one byte of U+FFFD (the project's one decoder: core/utf8.c). */
static uint32_t utf8_next(const unsigned char *s, size_t n, size_t *len) {
    uint32_t cp;
    int k = tg_utf8_decode(s, n, &cp);
    if (k <= 0) {
        *len = 1;
        return 0xFFFD;
    }
    *len = (size_t)k;
    return cp;
}

int tg_search_is_cjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) ||   /* CJK unified ideographs */
           (cp >= 0x3400 && cp <= 0x4DBF) ||   /* extension A */
           (cp >= 0x20000 && cp <= 0x2FFFF) || /* extensions B.. and compatibility supplement */
           (cp >= 0xF900 && cp <= 0xFAFF) ||   /* compatibility ideographs */
           (cp >= 0x3040 && cp <= 0x30FF) ||   /* hiragana, katakana */
           (cp >= 0xAC00 && cp <= 0xD7AF);     /* Hangul syllables */
}

/* Appends the bigrams of the CJK run r[0..n) (code point byte offsets in
 * offs, n+1 of them) to out at *o: " a b c ". A single character stays
 * itself. last: the run's last character follows as a token of its own,
 * so that every character starts a token (a one-character query is a
 * prefix query, see tg_search_fts_query). */
static void put_bigrams(const char *r, const size_t *offs, size_t n, int last, char *out, size_t *o) {
    out[(*o)++] = ' ';
    if (n == 1) {
        memcpy(out + *o, r, offs[1]);
        *o += offs[1];
    }
    for (size_t i = 0; i + 1 < n; i++) {
        size_t a = offs[i], b = offs[i + 2];
        memcpy(out + *o, r + a, b - a);
        *o += b - a;
        out[(*o)++] = ' ';
    }
    if (last && n > 1) {
        memcpy(out + *o, r + offs[n - 1], offs[n] - offs[n - 1]);
        *o += offs[n] - offs[n - 1];
        out[(*o)++] = ' ';
    } else if (n == 1) out[(*o)++] = ' ';
}

static char *cjk_text(const char *text, size_t n, int last) {
    /* A run of k characters of up to 4 bytes becomes k-1 bigrams of up to 8
     * bytes, one character and k+1 spaces: at most 2.75x the run plus 3. */
    char *out = malloc(3 * n + 4);
    size_t *offs = malloc((n + 2) * sizeof *offs);
    if (!out || !offs) {
        free(out);
        free(offs);
        return NULL;
    }
    size_t i = 0, o = 0;
    const unsigned char *s = (const unsigned char *)text;
    while (i < n) {
        size_t len;
        uint32_t cp = utf8_next(s + i, n - i, &len);
        if (!tg_search_is_cjk(cp)) {
            memcpy(out + o, text + i, len);
            o += len;
            i += len;
            continue;
        }
        size_t start = i, k = 0;
        while (i < n) {
            cp = utf8_next(s + i, n - i, &len);
            if (!tg_search_is_cjk(cp)) break;
            offs[k++] = i - start;
            i += len;
        }
        offs[k] = i - start;
        put_bigrams(text + start, offs, k, last, out, &o);
    }
    out[o] = 0;
    free(offs);
    return out;
}

char *tg_search_index_text(const char *text, size_t n) { return cjk_text(text, n, 1); }

/* ------------------------------------------------------------------ query */

static int is_word_byte(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int add_term(tg_search_term *terms, int n, int max, const char *s, size_t len, int cjk) {
    if (n >= max || len == 0) return n;
    tg_search_term t;
    memset(&t, 0, sizeof t);
    /* Cut long words at a code point boundary. */
    size_t cap = cjk ? sizeof t.s - 1 : TG_SEARCH_MAX_TERM_BYTES;
    if (len > cap) {
        len = cap;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--;
    }
    for (size_t i = 0; i < len; i++) t.s[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    t.len = len;
    t.cjk = cjk;
    for (int k = 0; k < n; k++)
        if (terms[k].len == len && terms[k].cjk == cjk && !memcmp(terms[k].s, t.s, len)) return n;
    terms[n] = t;
    return n + 1;
}

int tg_search_terms(const char *query, tg_search_term *terms, int max) {
    const unsigned char *s = (const unsigned char *)query;
    size_t n = strlen(query), i = 0;
    int nt = 0;
    while (i < n && nt < max) {
        size_t len;
        uint32_t cp = utf8_next(s + i, n - i, &len);
        if (tg_search_is_cjk(cp)) {
            size_t start = i;
            while (i < n && tg_search_is_cjk(utf8_next(s + i, n - i, &len))) i += len;
            nt = add_term(terms, nt, max, query + start, i - start, 1);
        } else if (is_word_byte(s[i]) && cp != 0xFFFD) {
            size_t start = i;
            while (i < n) {
                cp = utf8_next(s + i, n - i, &len);
                if (!is_word_byte(s[i]) || cp == 0xFFFD || tg_search_is_cjk(cp)) break;
                i += len;
            }
            nt = add_term(terms, nt, max, query + start, i - start, 0);
        } else i += len;
    }
    return nt;
}

static size_t cjk_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

char *tg_search_fts_query(const tg_search_term *terms, int n) {
    size_t cap = 16;
    for (int k = 0; k < n; k++) cap += 3 * terms[k].len + 12;
    char *q = malloc(cap), *o = q;
    if (!q) return NULL;
    for (int k = 0; k < n; k++) {
        if (k) o = memcpy(o, " OR ", 4), o += 4;
        *o++ = '"';
        if (terms[k].cjk) {
            /* Without the trailing character: in a post the bigram after
             * the query's last one starts with that character, it is not it. */
            char *b = cjk_text(terms[k].s, terms[k].len, 0);
            if (!b) {
                free(q);
                return NULL;
            }
            /* A bigram phrase: FTS5 tokenizes the quoted string into the
             * bigram tokens, which must be consecutive in the body. */
            size_t bl = strlen(b);
            memcpy(o, b, bl);
            o += bl;
            free(b);
            if (cjk_chars(terms[k].s, terms[k].len) == 1) { /* any token that starts with it */
                *o++ = '"';
                *o++ = ' ';
                *o++ = '*';
                continue;
            }
        } else {
            for (size_t i = 0; i < terms[k].len; i++) {
                if (terms[k].s[i] == '"') *o++ = '"';
                *o++ = terms[k].s[i];
            }
        }
        *o++ = '"';
    }
    *o = 0;
    return q;
}

/* ---------------------------------------------------------------- snippet */

typedef struct {
    size_t start, end; /* bytes of the match in text */
    int term;
} match;

static int ascii_ieq(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = (char)(x + 32);
        if (x != y) return 0;
    }
    return 1;
}

#define MAX_MATCHES 256

/* Every match of a term in text, in text order. Latin terms match whole
 * words (or word prefixes ending at a non-word byte); CJK terms anywhere. */
static int find_matches(const char *text, size_t n, const tg_search_term *terms, int nt, match *m) {
    int nm = 0;
    size_t i = 0;
    while (i < n && nm < MAX_MATCHES) {
        int hit = -1;
        size_t hl = 0;
        int at_word = i == 0 || !is_word_byte((unsigned char)text[i - 1]);
        for (int k = 0; k < nt; k++) {
            const tg_search_term *t = &terms[k];
            if (t->len > n - i || t->len <= hl) continue;
            if (t->cjk) {
                if (memcmp(text + i, t->s, t->len) == 0) hit = k, hl = t->len;
            } else if (at_word && ascii_ieq(text + i, t->s, t->len) &&
                       (i + t->len == n || !is_word_byte((unsigned char)text[i + t->len]))) {
                hit = k, hl = t->len;
            }
        }
        if (hit >= 0) {
            m[nm].start = i;
            m[nm].end = i + hl;
            m[nm].term = hit;
            nm++;
            i += hl;
        } else i++;
    }
    return nm;
}

/* Byte offset of the code point `back` characters before off (not before 0). */
static size_t back_chars(const char *text, size_t off, int back) {
    while (off > 0 && back > 0) {
        off--;
        while (off > 0 && ((unsigned char)text[off] & 0xC0) == 0x80) off--;
        back--;
    }
    return off;
}

static size_t fwd_chars(const char *text, size_t n, size_t off, int fwd) {
    while (off < n && fwd > 0) {
        off++;
        while (off < n && ((unsigned char)text[off] & 0xC0) == 0x80) off++;
        fwd--;
    }
    return off;
}

static size_t count_chars(const char *text, size_t a, size_t b) {
    size_t c = 0;
    for (size_t i = a; i < b; i++) c += ((unsigned char)text[i] & 0xC0) != 0x80;
    return c;
}

/* Appends text[a, b) with whitespace runs folded to one space. */
static char *put_flat(char *o, const char *text, size_t a, size_t b) {
    for (size_t i = a; i < b; i++) {
        char c = text[i];
        if (c == '\n' || c == '\t' || c == '\r') c = ' ';
        if (c == ' ' && o[-1] == ' ') continue;
        *o++ = c;
    }
    return o;
}

int tg_search_snippet(const char *text, const tg_search_term *terms, int nt, int chars, const char *open,
                      const char *close, char **snippet, char **highlight) {
    size_t n = strlen(text);
    if (chars < 16) chars = 16;
    match *m = malloc(MAX_MATCHES * sizeof *m);
    if (!m) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    int nm = find_matches(text, n, terms, nt, m);
    /* The window: the match whose next `chars` characters hold the most
     * distinct terms, started a sixth of the window before it. O(matches²),
     * matches are capped. */
    size_t ws = 0;
    if (nm > 0) {
        int best = -1, best_at = 0;
        for (int a = 0; a < nm; a++) {
            size_t limit = fwd_chars(text, n, m[a].start, chars * 5 / 6);
            uint64_t seen = 0;
            int distinct = 0;
            for (int b = a; b < nm && m[b].end <= limit; b++)
                if (!(seen & (1ULL << (m[b].term & 63)))) {
                    seen |= 1ULL << (m[b].term & 63);
                    distinct++;
                }
            if (distinct > best) best = distinct, best_at = a;
        }
        ws = back_chars(text, m[best_at].start, chars / 6);
        /* Start at a word boundary when one is near. */
        size_t w = ws;
        while (w < m[best_at].start && w - ws < 12 && text[w] != ' ' && text[w] != '\n') w++;
        if (ws > 0 && w < m[best_at].start && (text[w] == ' ' || text[w] == '\n')) ws = w + 1;
    }
    size_t we = fwd_chars(text, n, ws, chars);
    /* Shift the window back when it ends early, so short tails are shown whole. */
    size_t shown = count_chars(text, ws, we);
    if ((int)shown < chars && ws > 0) ws = back_chars(text, ws, chars - (int)shown);
    while (ws < we && (text[ws] == ' ' || text[ws] == '\n' || text[ws] == '\t')) ws++;
    size_t ol = strlen(open), cl = strlen(close), cap = (we - ws) + 16;
    char *sn = malloc(cap + 1), *hl = malloc(cap + (size_t)nm * (ol + cl) + 1);
    if (!sn || !hl) {
        free(sn);
        free(hl);
        free(m);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    /* Both strings start with a sentinel byte so put_flat can look back. */
    char *s = sn, *h = hl;
    *s++ = ' ';
    *h++ = ' ';
    if (ws > 0) {
        s = memcpy(s, "\xE2\x80\xA6", 3), s += 3; /* … */
        h = memcpy(h, "\xE2\x80\xA6", 3), h += 3;
    }
    s = put_flat(s, text, ws, we);
    size_t at = ws;
    for (int k = 0; k < nm; k++) {
        if (m[k].start < ws || m[k].end > we) continue;
        h = put_flat(h, text, at, m[k].start);
        memcpy(h, open, ol), h += ol;
        h = put_flat(h, text, m[k].start, m[k].end);
        memcpy(h, close, cl), h += cl;
        at = m[k].end;
    }
    h = put_flat(h, text, at, we);
    while (s > sn + 1 && s[-1] == ' ') s--;
    while (h > hl + 1 && h[-1] == ' ') h--;
    if (we < n) {
        s = memcpy(s, "\xE2\x80\xA6", 3), s += 3;
        h = memcpy(h, "\xE2\x80\xA6", 3), h += 3;
    }
    *s = 0;
    *h = 0;
    memmove(sn, sn + 1, (size_t)(s - sn));
    memmove(hl, hl + 1, (size_t)(h - hl));
    free(m);
    *snippet = sn;
    *highlight = hl;
    return TG_OK;
}

/* -------------------------------------------------------------- grounding */

char *tg_search_sources_prompt(const tg_search_hit *hits, int n, int max_chars) {
    size_t cap = 128;
    for (int i = 0; i < n; i++)
        cap += strlen(hits[i].text) + (hits[i].author ? strlen(hits[i].author) : 9) + 48;
    char *out = malloc(cap), *o = out;
    if (!out) return NULL;
    o += sprintf(o, "Sources:\n");
    for (int i = 0; i < n; i++) {
        const tg_search_hit *h = &hits[i];
        char date[11] = "";
        if (h->created_at) snprintf(date, sizeof date, "%s", h->created_at);
        o += sprintf(o, "[%d] %s %s: ", i + 1, h->author ? h->author : "(unknown)", date[0] ? date : "(undated)");
        const char *t = h->text;
        size_t tl = strlen(t), end = max_chars > 0 ? fwd_chars(t, tl, 0, max_chars) : tl;
        char *start = o;
        *o++ = ' '; /* a sentinel for put_flat's look-back, removed below */
        o = put_flat(o, t, 0, end);
        memmove(start, start + 1, (size_t)(o - start - 1));
        o--;
        while (o > start && o[-1] == ' ') o--;
        if (end < tl) o = memcpy(o, "\xE2\x80\xA6", 3), o += 3;
        o += sprintf(o, " [%d]\n", i + 1);
    }
    o += sprintf(o, "Answer from the sources and cite them by number, like [1].");
    return out;
}

int tg_search_citations(const char *text, size_t n, int n_sources, tg_search_citation *out, int max) {
    int k = 0;
    int64_t cp = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        if (text[i] == '[') {
            size_t j = i + 1;
            int v = 0;
            while (j < n && j < i + 4 && text[j] >= '0' && text[j] <= '9') v = v * 10 + (text[j++] - '0');
            if (j > i + 1 && j < n && text[j] == ']' && text[i + 1] != '0' && v >= 1 && v <= n_sources) {
                out[k].byte_start = i;
                out[k].byte_end = j + 1;
                out[k].start = cp;
                out[k].end = cp + (int64_t)(j + 1 - i); /* the marker is ASCII */
                out[k].source = v;
                k++;
                cp += (int64_t)(j + 1 - i);
                i = j;
                continue;
            }
        }
        cp += ((unsigned char)text[i] & 0xC0) != 0x80;
    }
    return k;
}
