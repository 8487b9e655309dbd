/*
 * pretok.c — GPT-2's pre-tokenisation, a hand-written scanner with the
 * semantics of the regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (alternatives tried in order at each position, each greedy), with Unicode
 * letter/number categories from utf8proc. \s is the JavaScript/ECMAScript
 * white-space set, which is what the reference encoders we test against
 * (js-tiktoken, transformers.js) use. Also: UTF-8 validation.
 */
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

enum { C_WS = 0, C_L = 1, C_N = 2, C_O = 3 };

/* ASCII classes, filled on first use (a constant table would be 128 lines). */
static uint8_t ascii_class[128];
static int ascii_ready;

static void init_ascii(void) {
    for (int c = 0; c < 128; c++) {
        uint8_t k = C_O;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) k = C_L;
        else if (c >= '0' && c <= '9') k = C_N;
        else if (c == ' ' || (c >= 9 && c <= 13)) k = C_WS;
        ascii_class[c] = k;
    }
    __atomic_store_n(&ascii_ready, 1, __ATOMIC_RELEASE);
}

static int cp_class(uint32_t cp) {
    switch (cp) {
    case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: case 0xFEFF:
        return C_WS;
    default:
        break;
    }
    if (cp >= 0x2000 && cp <= 0x200A) return C_WS;
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
    if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) return C_L;
    if (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO) return C_N;
    return C_O;
}

/* Class of the (valid) character at s[i]; *len gets its byte length. */
static inline int char_class(const uint8_t *s, size_t i, size_t *len) {
    uint8_t b = s[i];
    if (b < 0x80) {
        *len = 1;
        return ascii_class[b];
    }
    uint32_t cp;
    if (b < 0xE0) {
        cp = (uint32_t)(b & 0x1F) << 6 | (s[i + 1] & 0x3F);
        *len = 2;
    } else if (b < 0xF0) {
        cp = (uint32_t)(b & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
        *len = 3;
    } else {
        cp = (uint32_t)(b & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3F) << 12 | (uint32_t)(s[i + 2] & 0x3F) << 6 |
             (s[i + 3] & 0x3F);
        *len = 4;
    }
    return cp_class(cp);
}

/* End of the run of characters of class k starting at i. */
static inline size_t run_end(const uint8_t *s, size_t n, size_t i, int k) {
    while (i < n) {
        uint8_t b = s[i];
        if (b < 0x80) {
            if (ascii_class[b] != k) break;
            i++;
        } else {
            size_t l;
            if (char_class(s, i, &l) != k) break;
            i += l;
        }
    }
    return i;
}

size_t tg_pretok_next(const uint8_t *s, size_t n, size_t i) {
    if (!__atomic_load_n(&ascii_ready, __ATOMIC_ACQUIRE)) init_ascii();
    uint8_t b = s[i];
    /* 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, as GPT-2's) */
    if (b == '\'' && i + 1 < n) {
        uint8_t c = s[i + 1];
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
        if (i + 2 < n) {
            uint8_t d = s[i + 2];
            if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return i + 3;
        }
    }
    size_t l;
    /* " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": a leading space joins
     * the run after it unless that is white space too. */
    if (b == ' ' && i + 1 < n) {
        int k = char_class(s, i + 1, &l);
        if (k != C_WS) return run_end(s, n, i + 1 + l, k);
    }
    int k = char_class(s, i, &l);
    if (k != C_WS) return run_end(s, n, i + l, k);
    /* \s+(?!\S) then \s+: the whole white-space run if it ends the text;
     * otherwise all but its last character (which then leads the next
     * piece), or the single character when the run is one long. */
    size_t last = i, j = i;
    while (j < n) {
        size_t m;
        if (char_class(s, j, &m) != C_WS) break;
        last = j;
        j += m;
    }
    if (j == n || last == i) return j;
    return last;
}

size_t tg_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* fast path: 8 ASCII bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            __builtin_memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (b >= 0xC2 && b <= 0xDF) need = 1, cp = b & 0x1F, min = 0x80;
        else if (b >= 0xE0 && b <= 0xEF) need = 2, cp = b & 0x0F, min = 0x800;
        else if (b >= 0xF0 && b <= 0xF4) need = 3, cp = b & 0x07, min = 0x10000;
        else return i;
        for (size_t k = 1; k <= need; k++) {
            if (i + k >= n || (s[i + k] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += need + 1;
    }
    return n;
}
