/*
 * test_tokenizer_train.c — BPE training against the brute-force reference
 * trainer (tests/bpe_reference.mjs), merge for merge, on the committed
 * corpus tests/fixtures/tokenizer/train_corpus.jsonl: its merges are in
 * train_reference_merges.txt (regenerate: node tests/bpe_reference.mjs
 * tests/fixtures/tokenizer/train_corpus.jsonl 1000 > ..._merges.txt).
 * Also: feeding in two halves and merging the counts gives the same
 * tokenizer; special token ids; the trained tokenizer round-trips text and
 * survives a save/load; bad input (invalid UTF-8, too small a vocabulary).
 */
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "test_util.h"

#define CORPUS "tests/fixtures/tokenizer/train_corpus.jsonl"
#define REFERENCE "tests/fixtures/tokenizer/train_reference_merges.txt"
#define VOCAB 1000

static char **load_texts(size_t *n) {
    FILE *f = fopen(CORPUS, "r");
    if (!f) {
        fprintf(stderr, "FAIL: cannot open %s\n", CORPUS);
        exit(1);
    }
    char **texts = NULL, *line = NULL;
    size_t cap = 0, k = 0, lcap = 0;
    ssize_t ll;
    while ((ll = getline(&line, &lcap, f)) > 0) {
        json_error_t err;
        json_t *o = json_loadb(line, (size_t)ll, 0, &err);
        CHECK(o && json_is_string(json_object_get(o, "text")));
        if (!o) continue;
        if (k == cap) texts = realloc(texts, (cap = cap ? 2 * cap : 512) * sizeof *texts);
        texts[k++] = strdup(json_string_value(json_object_get(o, "text")));
        json_decref(o);
    }
    free(line);
    fclose(f);
    *n = k;
    return texts;
}

/* The merges of a saved tokenizer.json, as a JSON array (caller decrefs). */
static json_t *saved_merges(const tg_tokenizer *t, const char *path) {
    CHECK(tg_tokenizer_save(t, path) == TG_OK);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    CHECK(root != NULL);
    json_t *m = json_incref(json_object_get(json_object_get(root, "model"), "merges"));
    json_decref(root);
    return m;
}

int main(void) {
    size_t n;
    char **texts = load_texts(&n);
    CHECK(n > 300);
    char dir[] = "/tmp/tg_test_tok_train_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *p1 = tg_path_join(dir, "a.json"), *p2 = tg_path_join(dir, "b.json");

    /* one trainer */
    tg_bpe_trainer *tr;
    CHECK(tg_bpe_trainer_new(&tr) == TG_OK);
    for (size_t i = 0; i < n; i++) CHECK(tg_bpe_trainer_feed(tr, texts[i], strlen(texts[i])) == TG_OK);
    tg_tokenizer *t = NULL;
    CHECK(tg_bpe_trainer_finish(tr, VOCAB, 0, &t) == TG_OK);
    tg_bpe_trainer_free(tr);
    CHECK_EQ_INT(tg_tokenizer_vocab_size(t), VOCAB);
    CHECK_EQ_INT(tg_tokenizer_token_id(t, "<|endoftext|>"), 256);
    CHECK_EQ_INT(tg_tokenizer_token_id(t, "<|im_start|>"), 257);
    CHECK_EQ_INT(tg_tokenizer_token_id(t, "<|im_end|>"), 258);
    json_t *ours = saved_merges(t, p1);

    /* against the reference, merge for merge */
    FILE *f = fopen(REFERENCE, "r");
    CHECK(f != NULL);
    size_t same = 0, nref = 0, first_diff = (size_t)-1;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ll;
    while (f && (ll = getline(&line, &lcap, f)) > 0) {
        if (line[ll - 1] == '\n') line[--ll] = 0;
        const char *m = json_string_value(json_array_get(ours, nref));
        if (m && strcmp(m, line) == 0) same++;
        else if (first_diff == (size_t)-1) first_diff = nref;
        nref++;
    }
    if (f) fclose(f);
    free(line);
    printf("BPE training: %zu of %zu reference merges identical (ours: %zu)\n", same, nref, json_array_size(ours));
    if (first_diff != (size_t)-1) fprintf(stderr, "first difference at merge %zu\n", first_diff);
    CHECK(nref > 500);
    CHECK_EQ_INT(same, nref);
    CHECK_EQ_INT(json_array_size(ours), nref);

    /* two trainers fed halves, counts merged: the same tokenizer */
    tg_bpe_trainer *h1, *h2;
    CHECK(tg_bpe_trainer_new(&h1) == TG_OK && tg_bpe_trainer_new(&h2) == TG_OK);
    for (size_t i = 0; i < n; i++) CHECK(tg_bpe_trainer_feed(i % 2 ? h2 : h1, texts[i], strlen(texts[i])) == TG_OK);
    CHECK(tg_bpe_trainer_merge_counts(h2, h1) == TG_OK);
    tg_tokenizer *t2 = NULL;
    CHECK(tg_bpe_trainer_finish(h2, VOCAB, 0, &t2) == TG_OK);
    json_t *halves = t2 ? saved_merges(t2, p2) : NULL;
    CHECK(halves && json_equal(ours, halves));
    json_decref(halves);
    tg_tokenizer_free(t2);
    tg_bpe_trainer_free(h1);
    tg_bpe_trainer_free(h2);

    /* the trained tokenizer: round trip, and the same ids after save/load */
    tg_tokenizer *back = NULL;
    CHECK(tg_tokenizer_load(&back, p1) == TG_OK);
    size_t total_ids = 0, total_bytes = 0;
    for (size_t i = 0; back && i < n; i++) {
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0, tl = 0;
        char *txt = NULL;
        size_t len = strlen(texts[i]);
        CHECK(tg_tokenizer_encode(t, texts[i], len, 0, &a, &na) == TG_OK);
        CHECK(tg_tokenizer_encode(back, texts[i], len, 0, &b, &nb) == TG_OK);
        CHECK(na == nb && memcmp(a, b, na * sizeof *a) == 0);
        CHECK(tg_tokenizer_decode(back, b, nb, &txt, &tl) == TG_OK && tl == len && memcmp(txt, texts[i], len) == 0);
        for (size_t k = 0; k < na; k++) CHECK(a[k] < 256 || a[k] > 258); /* no special from plain text */
        total_ids += na;
        total_bytes += len;
        free(a);
        free(b);
        free(txt);
    }
    /* BPE compresses its own training text well below a byte a token */
    CHECK(total_ids * 2 < total_bytes);
    printf("trained tokenizer: %.2f bytes/token on its corpus\n", (double)total_bytes / (double)total_ids);
    tg_tokenizer_free(back);

    /* bad input */
    CHECK(tg_bpe_trainer_new(&tr) == TG_OK);
    CHECK(tg_bpe_trainer_feed(tr, "ok \xff\xfe", 5) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "invalid UTF-8") != NULL);
    CHECK(tg_bpe_trainer_feed(tr, "hello hello", 11) == TG_OK);
    tg_tokenizer *t3 = NULL;
    CHECK(tg_bpe_trainer_finish(tr, 100, 0, &t3) == TG_ERR_INPUT);
    CHECK(t3 == NULL);
    /* more vocabulary than pairs: stops when no pair is left */
    CHECK(tg_bpe_trainer_finish(tr, 100000, 0, &t3) == TG_OK);
    CHECK(t3 && tg_tokenizer_vocab_size(t3) < 300);
    int32_t *ids = NULL;
    size_t m = 0;
    CHECK(t3 && tg_tokenizer_encode(t3, "hello", 5, 0, &ids, &m) == TG_OK && m == 1);
    free(ids);
    tg_tokenizer_free(t3);
    tg_bpe_trainer_free(tr);

    json_decref(ours);
    tg_tokenizer_free(t);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
    free(p1);
    free(p2);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    return test_summary("test_tokenizer_train");
}
