/*
 * test_utf8.c — the one UTF-8 validator (src/core/utf8.c).
 *
 * The reference is built independently of the decoder: the set of valid
 * sequences is exactly the encodings of the code points U+0000..U+10FFFF
 * without the surrogates, so every 1-, 2- and 3-byte sequence and every
 * 4-byte sequence with a lead F0..F4 and a second byte of any value is
 * checked against a table made by encoding all those code points. Then the
 * boundaries of Unicode's table 3-7 by hand, the prefix, repair (with its
 * cap), the incomplete tail, and the users: the tokenizer refuses what the
 * validator refuses, and the streaming text of the sampler never emits an
 * invalid byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "infer/engine.h"
#include "test_util.h"

/* Bit i of a table: the sequence numbered i (big-endian bytes) is valid. */
static void set_bit(uint8_t *t, uint32_t i) { t[i >> 3] |= (uint8_t)(1u << (i & 7)); }
static int get_bit(const uint8_t *t, uint32_t i) { return t[i >> 3] >> (i & 7) & 1; }

static void exhaustive(void) {
    /* valid2: index b0<<8|b1; valid3: b0<<16|b1<<8|b2; valid4 (leads F0..F4,
     * second byte any, third and fourth fixed at 80..BF): (b0-F0)<<16|b1<<8|b2 */
    uint8_t *v2 = calloc(1u << 13, 1), *v3 = calloc(1u << 21, 1);
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        char b[4];
        size_t n = tg_utf8_encode(cp, b);
        const uint8_t *u = (const uint8_t *)b;
        if (n == 2) set_bit(v2, (uint32_t)u[0] << 8 | u[1]);
        if (n == 3) set_bit(v3, (uint32_t)u[0] << 16 | (uint32_t)u[1] << 8 | u[2]);
        /* every code point decodes back to itself, at its length */
        uint32_t got = 0xFFFFFFFF;
        int k = tg_utf8_decode(u, n, &got);
        if (k != (int)n || got != cp) {
            CHECK(k == (int)n && got == cp);
            fprintf(stderr, "  U+%04X: length %d, decoded U+%04X\n", cp, k, got);
            break;
        }
    }
    int bad = 0;
    for (uint32_t i = 0; i < 256; i++) {
        uint8_t s[1] = {(uint8_t)i};
        int k = tg_utf8_decode(s, 1, NULL);
        /* one byte: ASCII is valid; a lead C2..F4 is a valid start cut short; the rest invalid */
        int want = i < 0x80 ? 1 : (i >= 0xC2 && i <= 0xF4) ? 0 : -1;
        if (k != want && bad++ < 5) fprintf(stderr, "  %02X: %d, want %d\n", i, k, want);
    }
    for (uint32_t i = 0xC000; i < 0x10000; i++) { /* leads >= C0 with every second byte */
        uint8_t s[2] = {(uint8_t)(i >> 8), (uint8_t)i};
        int k = tg_utf8_decode(s, 2, NULL);
        int want = get_bit(v2, i) ? 2 : -1;
        if (s[0] >= 0xE0 && s[0] <= 0xF4) { /* a 3- or 4-byte lead: valid start or not */
            want = -1;
            for (uint32_t c = 0x80; c <= 0xBF && want < 0; c++)
                if (s[0] <= 0xEF ? get_bit(v3, i << 8 | c) : 0) want = 0;
            if (s[0] >= 0xF0) { /* 4 bytes: second byte range of table 3-7 */
                uint8_t lo = s[0] == 0xF0 ? 0x90 : 0x80, hi = s[0] == 0xF4 ? 0x8F : 0xBF;
                want = s[1] >= lo && s[1] <= hi ? 0 : -1;
            }
        }
        if (k != want && bad++ < 5) fprintf(stderr, "  %02X %02X: %d, want %d\n", s[0], s[1], k, want);
    }
    for (uint32_t i = 0xE00000; i < 0xF00000; i++) { /* every 3-byte sequence with a 3-byte lead */
        uint8_t s[3] = {(uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        int k = tg_utf8_decode(s, 3, NULL);
        int want = get_bit(v3, i) ? 3 : -1;
        if (k != want && bad++ < 5) fprintf(stderr, "  %02X %02X %02X: %d, want %d\n", s[0], s[1], s[2], k, want);
    }
    /* 4 bytes: lead F0..F7 x every second byte, then 80 80 and 80 7F */
    for (uint32_t l = 0xF0; l <= 0xF7; l++)
        for (uint32_t b1 = 0; b1 < 256; b1++) {
            uint32_t cp = (l & 7) << 18 | (b1 & 0x3F) << 12;
            int in_range = l <= 0xF4 && (b1 & 0xC0) == 0x80 && cp >= 0x10000 && cp <= 0x10FFFF;
            uint8_t s[4] = {(uint8_t)l, (uint8_t)b1, 0x80, 0x80};
            uint32_t got = 0;
            int k = tg_utf8_decode(s, 4, &got);
            if ((in_range ? k != 4 || got != cp : k != -1) && bad++ < 5)
                fprintf(stderr, "  %02X %02X 80 80: %d (U+%X), want %s\n", l, b1, k, got, in_range ? "4" : "-1");
            s[3] = 0x7F; /* a bad last byte is invalid, whatever came before */
            if (tg_utf8_decode(s, 4, NULL) != -1 && bad++ < 5) fprintf(stderr, "  %02X %02X 80 7F: not -1\n", l, b1);
        }
    tg_test_checks++;
    if (bad) {
        tg_test_failures++;
        fprintf(stderr, "FAIL exhaustive decode: %d sequences disagree with the encoded table\n", bad);
    }
    free(v2);
    free(v3);
}

/* Unicode's table 3-7 at its edges. */
static void boundaries(void) {
    struct {
        const char *s;
        int want; /* tg_utf8_decode over all bytes */
    } cases[] = {
        {"\x7F", 1},             {"\xC2\x80", 2},         {"\xDF\xBF", 2},         {"\xE0\xA0\x80", 3},
        {"\xED\x9F\xBF", 3},     {"\xEE\x80\x80", 3},     {"\xEF\xBF\xBF", 3},     {"\xF0\x90\x80\x80", 4},
        {"\xF4\x8F\xBF\xBF", 4}, {"\x80", -1},            {"\xBF", -1},            {"\xC0\x80", -1},
        {"\xC1\xBF", -1},        {"\xE0\x9F\xBF", -1},    {"\xED\xA0\x80", -1},    {"\xED\xBF\xBF", -1},
        {"\xF0\x8F\xBF\xBF", -1}, {"\xF4\x90\x80\x80", -1}, {"\xF5\x80\x80\x80", -1}, {"\xFF", -1},
        {"\xE2\x82", 0},         {"\xF0\x9F\x98", 0},     {"\xE2\x28\xA1", -1},    {"\xC3\x28", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int k = tg_utf8_decode((const uint8_t *)cases[i].s, strlen(cases[i].s), NULL);
        if (k != cases[i].want) {
            CHECK_EQ_INT(k, cases[i].want);
            fprintf(stderr, "  case %zu\n", i);
        }
    }
    uint32_t cp = 0;
    CHECK_EQ_INT(tg_utf8_decode((const uint8_t *)"\xF4\x8F\xBF\xBF", 4, &cp), 4);
    CHECK_EQ_INT(cp, 0x10FFFF);
    CHECK_EQ_INT(tg_utf8_decode((const uint8_t *)"", 0, &cp), 0);
}

static void prefix_repair_tail(void) {
    const char *ok = "h\xc3\xa9llo, \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 and a long ASCII run after it";
    CHECK_EQ_INT(tg_utf8_valid_prefix((const uint8_t *)ok, strlen(ok)), strlen(ok));
    /* the first bad byte, past the 8-byte ASCII fast path */
    const char *bad = "0123456789abcdef\xc3\xa9x\xed\xa0\x80tail";
    CHECK_EQ_INT(tg_utf8_valid_prefix((const uint8_t *)bad, strlen(bad)), 19);
    CHECK_EQ_INT(tg_utf8_valid_prefix((const uint8_t *)"ab\xe2\x82", 4), 2); /* cut short counts as invalid */

    /* repair: one U+FFFD a bad byte, valid text kept */
    const char *inv = "ab\xff" "cd\xc0\xaf" "e\xed\xa0\x80" "f\xe2\x82";
    char out[64];
    int64_t n_bad = 0;
    size_t n = tg_utf8_sanitize(inv, strlen(inv), out, sizeof out, &n_bad);
    const char *want = "ab\xef\xbf\xbd" "cd\xef\xbf\xbd\xef\xbf\xbd" "e\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                       "f\xef\xbf\xbd\xef\xbf\xbd";
    CHECK(n == strlen(want) && memcmp(out, want, n) == 0);
    CHECK_EQ_INT(n_bad, 8);
    CHECK_EQ_INT(tg_utf8_valid_prefix((const uint8_t *)out, n), n);
    /* the cap: never a partial sequence, never past cap */
    const char *mixed = "a\xc3\xa9\xff\xe4\xbd\xa0";
    for (size_t cap = 0; cap <= 12; cap++) {
        char o[16];
        memset(o, 'Z', sizeof o);
        size_t w = tg_utf8_sanitize(mixed, strlen(mixed), o, cap, NULL);
        /* full output: a é FFFD 你 = 1 + 2 + 3 + 3 = 9 bytes; with less room a prefix of it */
        static const size_t whole[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 9, 9, 9, 9};
        if (w != whole[cap] || o[cap < 16 ? cap : 15] != 'Z') {
            CHECK_EQ_INT(w, whole[cap]);
            fprintf(stderr, "  cap %zu\n", cap);
        }
        CHECK_EQ_INT(tg_utf8_valid_prefix((const uint8_t *)o, w), w);
    }

    /* incomplete tail: a valid start held back, an invalid one not */
    CHECK_EQ_INT(tg_utf8_incomplete_tail((const uint8_t *)"ab\xe2\x82", 4), 2);
    CHECK_EQ_INT(tg_utf8_incomplete_tail((const uint8_t *)"ab\xf0\x9f\x98", 5), 3);
    CHECK_EQ_INT(tg_utf8_incomplete_tail((const uint8_t *)"ab\xc3", 3), 1);
    CHECK_EQ_INT(tg_utf8_incomplete_tail((const uint8_t *)"ab\xc3\xa9", 4), 0);
    CHECK_EQ_INT(tg_utf8_incomplete_tail((const uint8_t *)"ab\xe0\x80", 4), 0); /* overlong start: never valid */
    CHECK_EQ_INT(tg_utf8_incomplete_tail((const uint8_t *)"ab\xed\xa0", 4), 0); /* surrogate start */
    CHECK_EQ_INT(tg_utf8_incomplete_tail((const uint8_t *)"", 0), 0);
    CHECK_EQ_INT(tg_utf8_incomplete_tail((const uint8_t *)"\x80\x80\x80", 3), 0);
}

/* The users agree: the tokenizer refuses invalid text, the stream never
 * emits an invalid byte and holds back exactly a valid incomplete tail. */
static void users(void) {
    tg_bpe_trainer *tr;
    CHECK(tg_bpe_trainer_new(&tr) == TG_OK);
    const char *txt = "some text to train on, some more text";
    CHECK(tg_bpe_trainer_feed(tr, txt, strlen(txt)) == TG_OK);
    CHECK(tg_bpe_trainer_feed(tr, "bad \xed\xa0\x80 text", 12) == TG_ERR_INPUT);
    tg_tokenizer *tok = NULL;
    CHECK(tg_bpe_trainer_finish(tr, 270, 0, &tok) == TG_OK);
    tg_bpe_trainer_free(tr);
    if (tok) {
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(tg_tokenizer_encode(tok, "ok \xc3\xa9", 5, 0, &ids, &n) == TG_OK);
        free(ids);
        ids = NULL;
        CHECK(tg_tokenizer_encode(tok, "no \xc0\xaf", 5, 0, &ids, &n) == TG_ERR_INPUT);
        free(ids);
        tg_tokenizer_free(tok);
    }

    tg_stream_text st;
    memset(&st, 0, sizeof st);
    char held[64], out[64];
    int emit = 0;
    st.buf = held;
    st.cap = sizeof held;
    /* "é" split over two pushes: nothing, then the whole character */
    CHECK_EQ_INT(tg_stream_text_push(&st, "a\xc3", 2, out, sizeof out, &emit), 0);
    CHECK(emit == 1 && out[0] == 'a');
    CHECK_EQ_INT(tg_stream_text_push(&st, "\xa9", 1, out, sizeof out, &emit), 0);
    CHECK(emit == 2 && memcmp(out, "\xc3\xa9", 2) == 0);
    /* an invalid byte becomes U+FFFD at once; an overlong start is not held */
    CHECK_EQ_INT(tg_stream_text_push(&st, "\xff\xe0\x80", 3, out, sizeof out, &emit), 0);
    CHECK(emit == 9 && memcmp(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9) == 0);
    /* a tail cut short at the end of generation is flushed as U+FFFD */
    CHECK_EQ_INT(tg_stream_text_push(&st, "\xe4\xbd", 2, out, sizeof out, &emit), 0);
    CHECK_EQ_INT(emit, 0);
    int f = tg_stream_text_flush(&st, out, sizeof out);
    CHECK(f == 6 && memcmp(out, "\xef\xbf\xbd\xef\xbf\xbd", 6) == 0);
}

int main(void) {
    exhaustive();
    boundaries();
    prefix_repair_tail();
    users();
    return test_summary("test_utf8");
}
