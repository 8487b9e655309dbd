/*
 * test_chat_grounded.c — `chat-data --grounded` (src/data/chat_data_grounded.c):
 * every conversation's system message is the server's sources template with
 * the target at the cited number among distractors that do not answer the
 * question; the answer quotes the target from the question's word on and
 * ends with the right marker; held-out posts never reach the training file;
 * the cited numbers are spread over 1..K; the output is deterministic; bad
 * parameters are input errors.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "data/chat_data.h"
#include "search/search.h"
#include "test_util.h"

static char g_tmp[64];

static const char *const nouns[] = {"otter", "kettle", "lantern", "violin", "pebble", "walrus", "tulip", "anchor",
                                    "bagel", "compass", "dragon", "falcon", "glacier", "harbor", "igloo", "jasmine",
                                    "kayak", "lemur", "meteor", "nectar", "orchid", "parrot", "quartz", "raven"};
static const char *const places[] = {"market", "bridge", "garden", "station", "library", "bakery"};
#define N_POSTS 96

static char *post_text(int i, char *buf, size_t n) {
    snprintf(buf, n, "I saw a %s and a %s near the %s on day %d.", nouns[i % 24], nouns[(i * 7 + 3) % 24], places[i % 6], i);
    return buf;
}

typedef struct {
    char *data;
    size_t len;
} file_data;

static file_data slurp(const char *path) {
    file_data f = {0};
    if (tg_read_file(path, &f.data, &f.len) != TG_OK) f.data = NULL;
    return f;
}

static void check_file(const char *path, int held_out, int k, int *cite_counts, int *n_conv, char **train_texts,
                       int *n_train_texts) {
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) return;
    char line[1 << 14];
    while (fgets(line, sizeof line, f)) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        CHECK(o != NULL);
        if (!o) continue;
        json_t *msgs = json_object_get(o, "messages"), *g = json_object_get(o, "grounding");
        CHECK(json_array_size(msgs) == 3);
        const char *sys = json_string_value(json_object_get(json_array_get(msgs, 0), "content"));
        const char *q = json_string_value(json_object_get(json_array_get(msgs, 1), "content"));
        const char *ans = json_string_value(json_object_get(json_array_get(msgs, 2), "content"));
        int cite = (int)json_integer_value(json_object_get(g, "cite"));
        const char *target = json_string_value(json_object_get(g, "target"));
        CHECK(sys && q && ans && target);
        if (!sys || !q || !ans || !target) {
            json_decref(o);
            continue;
        }
        CHECK(!strcmp(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "system"));
        CHECK(!strcmp(json_string_value(json_object_get(json_array_get(msgs, 2), "role")), "assistant"));
        CHECK_EQ_INT(json_integer_value(json_object_get(g, "sources")), k);
        CHECK(cite >= 1 && cite <= k);
        if (cite >= 1 && cite <= k) cite_counts[cite - 1]++;
        (*n_conv)++;
        /* The template: header, K numbered lines ending in their number, the instruction. */
        CHECK(!strncmp(sys, "Sources:\n[1] ", 13));
        const char *tail = "Answer from the sources and cite them by number, like [1].";
        CHECK(strlen(sys) > strlen(tail) && !strcmp(sys + strlen(sys) - strlen(tail), tail));
        /* The answer: "… WORD rest. [cite]" (or the whole text); WORD is in the question. */
        char want_end[8];
        snprintf(want_end, sizeof want_end, " [%d]", cite);
        size_t al = strlen(ans);
        CHECK(al > 4 && !strcmp(ans + al - strlen(want_end), want_end));
        const char *quote = !strncmp(ans, "\xE2\x80\xA6 ", 4) ? ans + 4 : ans;
        char word[64] = "";
        sscanf(quote, "%63[A-Za-z]", word);
        CHECK(word[0] && strstr(q, word) != NULL);
        /* Source line `cite` holds the quote; no other line holds the word. */
        for (int s = 1; s <= k; s++) {
            char start[16], end[16];
            snprintf(start, sizeof start, "\n[%d] ", s);
            snprintf(end, sizeof end, " [%d]\n", s);
            const char *a = strstr(sys, start), *b = a ? strstr(a, end) : NULL;
            CHECK(a && b);
            if (!a || !b) continue;
            char src[1024];
            snprintf(src, sizeof src, "%.*s", (int)(b - a), a);
            char qtext[1024];
            snprintf(qtext, sizeof qtext, "%.*s", (int)(al - strlen(want_end) - (size_t)(quote - ans)), quote);
            if (s == cite) CHECK(strstr(src, qtext) != NULL);
            else CHECK(strstr(src, word) == NULL);
            if (!held_out && *n_train_texts < 4096) train_texts[(*n_train_texts)++] = strdup(src);
        }
        /* Held-out targets are q-ids whose text is never in a training prompt (checked by the caller). */
        if (held_out && *n_train_texts < 4096) train_texts[(*n_train_texts)++] = strdup(target);
        json_decref(o);
    }
    fclose(f);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tg_test_chatg_XXXXXX");
    TG_ASSERT(mkdtemp(g_tmp));
    tg_log_quiet = 1;
    char *dbp = tg_path_join(g_tmp, "posts.db"), *out = tg_path_join(g_tmp, "chat.jsonl"),
         *val = tg_path_join(g_tmp, "val.jsonl"), *out2 = tg_path_join(g_tmp, "chat2.jsonl"),
         *val2 = tg_path_join(g_tmp, "val2.jsonl");
    tg_search_db *db;
    TG_ASSERT(tg_search_open(dbp, 1, &db) == TG_OK);
    TG_ASSERT(tg_search_begin(db) == TG_OK);
    for (int i = 0; i < N_POSTS; i++) {
        char id[16], text[128], author[16];
        snprintf(id, sizeof id, "q%d", i);
        snprintf(author, sizeof author, "@u%d", i % 5);
        int added;
        TG_ASSERT(tg_search_add(db, id, post_text(i, text, sizeof text), author, "2024-01-01", NULL, NULL, &added) ==
                  TG_OK);
    }
    TG_ASSERT(tg_search_commit(db) == TG_OK);
    tg_search_close(db);

    tg_chat_grounded_params p = tg_chat_grounded_default_params();
    p.index = dbp;
    p.out = out;
    p.val_out = val;
    p.val_frac = 0.2;
    p.top_k = 3;
    tg_chat_data_stats st;
    CHECK(tg_chat_data_grounded(&p, &st) == TG_OK);
    CHECK_EQ_INT(st.posts, N_POSTS);
    CHECK_EQ_INT(st.train + st.val + st.no_terms, N_POSTS);
    CHECK(st.val >= 8 && st.val <= 32); /* 20% of 96, by hash */
    int counts[3] = {0, 0, 0}, n_conv = 0, n_texts = 0, n_val_texts = 0;
    char **texts = calloc(4096, sizeof *texts), **val_ids = calloc(4096, sizeof *val_ids);
    check_file(out, 0, 3, counts, &n_conv, texts, &n_texts);
    CHECK_EQ_INT(n_conv, st.train);
    for (int c = 0; c < 3; c++) CHECK(counts[c] >= n_conv / 5); /* each number cited at least 20% of the time */
    int vcounts[3] = {0, 0, 0}, n_val = 0;
    check_file(val, 1, 3, vcounts, &n_val, val_ids, &n_val_texts);
    CHECK_EQ_INT(n_val, st.val);
    /* No held-out post's text appears in any training prompt. */
    int leaks = 0;
    for (int v = 0; v < n_val_texts; v++) {
        char text[128];
        post_text(atoi(val_ids[v] + 1), text, sizeof text);
        for (int t = 0; t < n_texts; t++) leaks += strstr(texts[t], text) != NULL;
    }
    CHECK_EQ_INT(leaks, 0);
    for (int t = 0; t < n_texts; t++) free(texts[t]);
    for (int v = 0; v < n_val_texts; v++) free(val_ids[v]);
    free(texts);
    free(val_ids);

    /* Deterministic: the same parameters give the same bytes. */
    p.out = out2;
    p.val_out = val2;
    CHECK(tg_chat_data_grounded(&p, &st) == TG_OK);
    file_data a = slurp(out), b = slurp(out2);
    CHECK(a.data && b.data && a.len == b.len && !memcmp(a.data, b.data, a.len));
    free(a.data);
    free(b.data);

    /* Bad parameters and a missing index are input errors; nothing is written. */
    p.top_k = 1;
    CHECK(tg_chat_data_grounded(&p, &st) == TG_ERR_INPUT);
    p.top_k = 3;
    p.val_frac = 1;
    CHECK(tg_chat_data_grounded(&p, &st) == TG_ERR_INPUT);
    p.val_frac = 0.2;
    char *missing = tg_path_join(g_tmp, "missing.db"), *out3 = tg_path_join(g_tmp, "never.jsonl");
    p.index = missing;
    p.out = out3;
    CHECK(tg_chat_data_grounded(&p, &st) == TG_ERR_INPUT);
    CHECK(!tg_path_exists(out3));
    free(missing);
    free(out3);
    free(dbp);
    free(out);
    free(val);
    free(out2);
    free(val2);
    int rc = test_summary("test_chat_grounded");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    return rc;
}
