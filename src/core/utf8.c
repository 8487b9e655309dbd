/*
 * utf8.c — the one UTF-8 validator of the project, and the helpers built on
 * it: decoding one sequence, the longest valid prefix, repair (U+FFFD for
 * every byte that is not part of a valid sequence), the incomplete tail a
 * stream must hold back, and encoding a code point.
 *
 * Valid means the Unicode standard's table 3-7 (well-formed byte sequences):
 * no overlong forms (C0, C1, E0 80..9F, F0 80..8F), no surrogates
 * (ED A0..BF), nothing above U+10FFFF (F4 90.., F5..FF). Ingest repairs its
 * input with it, the tokenizer refuses text that fails it, the sampler and
 * the server keep every byte they emit valid with it (JSON needs valid
 * UTF-8), so all of them agree on what a valid byte is.
 *
 * Deliberately not here: normalisation, character classes (utf8proc does
 * those where they are needed).
 */
#include <string.h>

#include "core/core.h"

int tg_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        if (cp) *cp = c;
        return 1;
    }
    int len;
    uint8_t lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong below U+0800 */
        else if (c == 0xED) hi = 0x9F; /* surrogates U+D800..DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong below U+10000 */
        else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else
        return -1;
    uint32_t v = c & (0x7Fu >> len);
    for (int k = 1; k < len; k++) {
        if ((size_t)k >= n) return 0; /* a valid start, cut short */
        uint8_t b = s[k];
        if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) return -1;
        v = v << 6 | (b & 0x3F);
    }
    if (cp) *cp = v;
    return len;
}

size_t tg_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time: most text is mostly ASCII. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int k = tg_utf8_decode(s + i, n - i, NULL);
        if (k <= 0) return i;
        i += (size_t)k;
    }
    return n;
}

size_t tg_utf8_sanitize(const char *in, size_t n, char *out, size_t cap, int64_t *n_invalid) {
    const uint8_t *s = (const uint8_t *)in;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t v = tg_utf8_valid_prefix(s + i, n - i);
        if (v > cap - o) { /* copy only whole sequences that fit */
            size_t fit = 0;
            while (fit < cap - o) {
                int k = tg_utf8_decode(s + i + fit, n - i - fit, NULL);
                if ((size_t)k > cap - o - fit) break;
                fit += (size_t)k;
            }
            memcpy(out + o, s + i, fit);
            return o + fit;
        }
        memcpy(out + o, s + i, v);
        o += v;
        i += v;
        if (i >= n) break;
        /* One U+FFFD per invalid byte: simple, and what the counts promise. */
        if (cap - o < 3) return o;
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i++;
        if (n_invalid) (*n_invalid)++;
    }
    return o;
}

size_t tg_utf8_incomplete_tail(const uint8_t *s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        uint8_t c = s[n - back];
        if ((c & 0xC0) == 0x80) continue; /* a continuation byte: look further back for the lead */
        return tg_utf8_decode(s + n - back, back, NULL) == 0 ? back : 0;
    }
    return 0;
}

size_t tg_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
