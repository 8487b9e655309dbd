/*
 * clean.c — text clean-up for ingest: UTF-8 repair, removal of terminal
 * escape sequences and control characters, line-ending normalisation,
 * trimming, HTML entity decoding and HTML-to-text.
 *
 * Every function here writes into a caller-provided buffer whose needed size
 * is stated, never allocates, and is safe on any bytes (fuzzed by the tests):
 * ingest runs them on untrusted posts in parallel threads.
 *
 * Deliberately not done: Unicode normalisation (NFC) and case folding — the
 * corpus keeps the author's text; only the near-duplicate shingles fold case.
 */
#include <string.h>

#include "core/core.h"
#include "data/ingest.h"

/* Skips a terminal escape sequence starting at s[0] == ESC; returns its
 * length. CSI (ESC [ params final), OSC (ESC ] ... BEL or ESC \), and the
 * two-byte forms (ESC + one character) are recognised; that covers the SGR
 * colour codes of the bundled fortunes and what terminals record. */
static size_t escape_len(const unsigned char *s, size_t n) {
    if (n < 2) return 1;
    size_t i;
    if (s[1] == '[') {
        for (i = 2; i < n; i++)
            if (s[i] >= 0x40 && s[i] <= 0x7E) return i + 1;
            else if (s[i] < 0x20 || s[i] > 0x7E) return i; /* broken sequence: stop before it */
        return n;
    }
    if (s[1] == ']' || s[1] == 'P' || s[1] == '_' || s[1] == '^') {
        for (i = 2; i < n; i++) {
            if (s[i] == 0x07) return i + 1;
            if (s[i] == 0x1B && i + 1 < n && s[i + 1] == '\\') return i + 2;
            if (s[i] == '\n') return i; /* never swallow past a line */
        }
        return n;
    }
    if (s[1] >= 0x20 && s[1] <= 0x7E) return 2;
    return 1;
}

size_t tg_clean_text(const char *in, size_t n, char *out, tg_clean_counts *c) {
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;
    int64_t chars = 0;
    /* A byte-order mark at the start is an encoding artefact, not text. */
    if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) i = 3;
    while (i < n) {
        unsigned char ch = s[i];
        if (ch >= 0x20 && ch < 0x7F) {
            out[o++] = (char)ch;
            chars++;
            i++;
            continue;
        }
        if (ch == '\n' || ch == '\t') {
            out[o++] = (char)ch;
            chars++;
            i++;
            continue;
        }
        if (ch == '\r') { /* CRLF and lone CR both become LF */
            out[o++] = '\n';
            chars++;
            i += (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        if (ch == 0x1B) {
            i += escape_len(s + i, n - i);
            c->escapes++;
            continue;
        }
        if (ch == 0x08) {
            /* Backspace: old text files overstrike with it ("_\bn" for an
             * underlined n, "H\bH" for bold): keep what was struck last. */
            if (o > 0 && out[o - 1] != '\n') {
                do o--;
                while (o > 0 && ((unsigned char)out[o] & 0xC0) == 0x80);
                chars--;
            }
            i++;
            c->controls++;
            continue;
        }
        if (ch < 0x20 || ch == 0x7F) {
            i++;
            c->controls++;
            continue;
        }
        uint32_t cp;
        int dk = tg_utf8_decode(s + i, n - i, &cp);
        size_t k = dk > 0 ? (size_t)dk : 0;
        if (!k) { /* callers pass repaired UTF-8; be safe anyway */
            i++;
            c->controls++;
            continue;
        }
        if (cp >= 0x80 && cp <= 0x9F) { /* C1 controls */
            i += k;
            c->controls++;
            continue;
        }
        if (cp == 0x2028 || cp == 0x2029) { /* line/paragraph separators: plain newlines */
            out[o++] = '\n';
            chars++;
            i += k;
            continue;
        }
        memcpy(out + o, s + i, k);
        o += k;
        chars++;
        i += k;
    }
    /* Trim: trailing spaces on each line and blank edges carry no meaning. */
    size_t w = 0, line_start = 0;
    for (size_t r = 0; r < o; r++) {
        char ch = out[r];
        if (ch == '\n') {
            while (w > line_start && (out[w - 1] == ' ' || out[w - 1] == '\t')) {
                w--;
                chars--;
            }
            out[w++] = '\n';
            line_start = w;
        } else {
            out[w++] = ch;
        }
    }
    while (w > line_start && (out[w - 1] == ' ' || out[w - 1] == '\t')) {
        w--;
        chars--;
    }
    size_t start = 0;
    while (start < w && (out[start] == ' ' || out[start] == '\t' || out[start] == '\n')) start++;
    while (w > start && out[w - 1] == '\n') {
        w--;
        chars--;
    }
    chars -= (int64_t)start;
    if (start) memmove(out, out + start, w - start);
    c->chars = chars;
    return w - start;
}

/* ----------------------------------------------------------- HTML entities */

typedef struct {
    const char *name;
    uint32_t cp;
} entity;

/* The entities that occur in posts (X escapes only &amp; &lt; &gt;;
 * Mastodon's HTML adds quotes, apostrophes and the odd typographic one). */
static const entity ENTITIES[] = {
    {"amp", '&'},       {"lt", '<'},         {"gt", '>'},         {"quot", '"'},       {"apos", '\''},
    {"nbsp", 0xA0},     {"hellip", 0x2026},  {"mdash", 0x2014},   {"ndash", 0x2013},   {"lsquo", 0x2018},
    {"rsquo", 0x2019},  {"ldquo", 0x201C},   {"rdquo", 0x201D},   {"laquo", 0xAB},     {"raquo", 0xBB},
    {"copy", 0xA9},     {"reg", 0xAE},       {"trade", 0x2122},   {"euro", 0x20AC},    {"pound", 0xA3},
    {"yen", 0xA5},      {"cent", 0xA2},      {"deg", 0xB0},       {"middot", 0xB7},    {"bull", 0x2022},
    {"times", 0xD7},    {"divide", 0xF7},    {"para", 0xB6},      {"sect", 0xA7},      {"shy", 0xAD},
    {"iexcl", 0xA1},    {"iquest", 0xBF},    {"eacute", 0xE9},    {"egrave", 0xE8},    {"aacute", 0xE1},
    {"agrave", 0xE0},   {"ouml", 0xF6},      {"uuml", 0xFC},      {"auml", 0xE4},      {"szlig", 0xDF},
    {"ccedil", 0xE7},   {"ntilde", 0xF1},    {"zwj", 0x200D},     {"zwnj", 0x200C},    {NULL, 0},
};

/* Decodes the entity at s[0] == '&' into out; returns the bytes consumed
 * (0: not an entity, copy the '&' as is) and sets *wrote. */
static size_t decode_entity(const char *s, size_t n, char *out, size_t *wrote) {
    size_t i = 1;
    if (i < n && s[i] == '#') {
        uint32_t cp = 0;
        int hex = 0, digits = 0;
        i++;
        if (i < n && (s[i] == 'x' || s[i] == 'X')) {
            hex = 1;
            i++;
        }
        for (; i < n && digits < 8; i++, digits++) {
            char c = s[i];
            int d;
            if (c >= '0' && c <= '9') d = c - '0';
            else if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
            else break;
            cp = cp * (hex ? 16u : 10u) + (uint32_t)d;
        }
        if (!digits || i >= n || s[i] != ';') return 0;
        if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
        *wrote = tg_utf8_encode(cp, out);
        return i + 1;
    }
    size_t j = i;
    while (j < n && j - i < 10 && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))) j++;
    if (j == i || j >= n || s[j] != ';') return 0;
    for (const entity *e = ENTITIES; e->name; e++) {
        if (strlen(e->name) == j - i && memcmp(e->name, s + i, j - i) == 0) {
            /* &nbsp; becomes a plain space: it is layout, not content. */
            *wrote = e->cp == 0xA0 ? (out[0] = ' ', 1) : tg_utf8_encode(e->cp, out);
            return j + 1;
        }
    }
    return 0;
}

size_t tg_html_unescape(const char *in, size_t n, char *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        const char *amp = memchr(in + i, '&', n - i);
        size_t run = amp ? (size_t)(amp - (in + i)) : n - i;
        memmove(out + o, in + i, run);
        o += run;
        i += run;
        if (i >= n) break;
        size_t wrote = 0, used = decode_entity(in + i, n - i, out + o, &wrote);
        if (used) {
            o += wrote;
            i += used;
        } else {
            out[o++] = '&';
            i++;
        }
    }
    return o;
}

/* Case-insensitive match of a tag name at s (after '<' or '</'). */
static int tag_is(const char *s, size_t n, const char *name) {
    size_t k = strlen(name);
    if (n < k) return 0;
    for (size_t i = 0; i < k; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != name[i]) return 0;
    }
    return n == k || !((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') || (s[k] >= '0' && s[k] <= '9'));
}

size_t tg_html_to_text(const char *in, size_t n, char *out) {
    size_t i = 0, o = 0;
    int in_paragraph = 0; /* a block has been opened: the next one starts after a blank line */
    while (i < n) {
        char c = in[i];
        if (c == '<') {
            const char *gt = memchr(in + i, '>', n - i);
            if (!gt) { /* a lone '<' is text */
                out[o++] = '<';
                i++;
                continue;
            }
            size_t end = (size_t)(gt - in) + 1;
            const char *t = in + i + 1;
            size_t tn = end - i - 2;
            int closing = tn > 0 && t[0] == '/';
            if (closing) {
                t++;
                tn--;
            }
            if (tag_is(t, tn, "br")) {
                out[o++] = '\n';
            } else if (tag_is(t, tn, "p") || tag_is(t, tn, "div") || tag_is(t, tn, "blockquote") ||
                       tag_is(t, tn, "li") || tag_is(t, tn, "pre") || tag_is(t, tn, "h1") || tag_is(t, tn, "h2") ||
                       tag_is(t, tn, "h3")) {
                if (!closing) {
                    if (in_paragraph && o > 0) {
                        /* Paragraphs are separated by one blank line. */
                        while (o > 0 && out[o - 1] == '\n') o--;
                        out[o++] = '\n';
                        out[o++] = '\n';
                    }
                    in_paragraph = 1;
                }
            } else if (!closing && (tag_is(t, tn, "script") || tag_is(t, tn, "style"))) {
                /* Skip the element's content entirely: it is code, not text. */
                const char *name = tag_is(t, tn, "script") ? "</script" : "</style";
                size_t k = end, nl = strlen(name);
                while (k + nl <= n) {
                    size_t m = 0;
                    while (m < nl && (in[k + m] | 0x20) == (name[m] | 0x20)) m++;
                    if (m == nl) break;
                    k++;
                }
                const char *g2 = k < n ? memchr(in + k, '>', n - k) : NULL;
                end = g2 ? (size_t)(g2 - in) + 1 : n;
            }
            i = end;
            continue;
        }
        if (c == '&') {
            size_t wrote = 0, used = decode_entity(in + i, n - i, out + o, &wrote);
            if (used) {
                o += wrote;
                i += used;
                continue;
            }
        }
        /* Newlines in HTML source are only layout. */
        out[o++] = (c == '\n' || c == '\r') ? ' ' : c;
        i++;
    }
    return o;
}
