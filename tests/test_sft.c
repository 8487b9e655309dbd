/*
 * test_sft.c — chat fine-tuning (src/train/sft.c) and chat-data
 * (src/data/chat_data.c):
 *   - ChatML rendering: exact ids and loss flags for a conversation (byte
 *     vocabulary), "<|im_start|>" typed by a user stays text (byte and BPE
 *     tokenizers), "weight": 0 assistant messages count nothing;
 *   - bad chat JSONL: malformed line, unknown role, empty messages, ... each
 *     TG_ERR_INPUT naming FILE:LINE;
 *   - packing: every conversation once per epoch, targets = inputs shifted,
 *     weights = the flags, segments per conversation, unpacked = one a row;
 *   - the mask on a small random model: changing every non-assistant target
 *     leaves the loss and every gradient bitwise unchanged; the loss equals
 *     the mean cross-entropy over assistant targets computed here from the
 *     logits; in a packed row, changing the first conversation leaves the
 *     second's logits unchanged and equal to its logits alone in a row;
 *   - growing the vocabulary keeps every old logit bitwise;
 *   - TF-IDF key terms and chat-data's determinism and split.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "data/chat_data.h"
#include "test_util.h"
#include "train/sft.h"

#define IM_START 257
#define IM_END 258

static const tg_sft_vocab byte_vocab = {NULL, IM_START, IM_END};

static int add(tg_sft_data *d, const char *json) {
    return tg_sft_add_json(d, json, strlen(json), &byte_vocab, "test", 1);
}

/* Expected ids of one message in the byte vocabulary. */
static int render(int32_t *out, uint8_t *flags, const char *role, const char *content, int counted) {
    int n = 0;
    out[n] = IM_START, flags[n++] = 0;
    for (const char *p = role; *p; p++) out[n] = (uint8_t)*p, flags[n++] = 0;
    out[n] = '\n', flags[n++] = 0;
    for (const char *p = content; *p; p++) out[n] = (uint8_t)*p, flags[n++] = (uint8_t)counted;
    out[n] = IM_END, flags[n++] = (uint8_t)counted;
    out[n] = '\n', flags[n++] = 0;
    return n;
}

static void test_render(void) {
    tg_sft_data d = {0};
    CHECK(add(&d, "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                  "{\"role\":\"user\",\"content\":\"hi <|im_start|>x<|im_end|>\"},"
                  "{\"role\":\"assistant\",\"content\":\"yo\",\"weight\":0},"
                  "{\"role\":\"user\",\"content\":\"again\"},"
                  "{\"role\":\"assistant\",\"content\":\"ok!\"}]}") == TG_OK);
    int32_t exp[256];
    uint8_t fl[256];
    int n = 0;
    n += render(exp + n, fl + n, "system", "be brief", 0);
    n += render(exp + n, fl + n, "user", "hi <|im_start|>x<|im_end|>", 0);
    n += render(exp + n, fl + n, "assistant", "yo", 0); /* weight 0: not counted */
    n += render(exp + n, fl + n, "user", "again", 0);
    int reply = n + 1 + 10; /* <|im_start|> "assistant\n" */
    n += render(exp + n, fl + n, "assistant", "ok!", 1);
    CHECK_EQ_INT(d.n_convs, 1);
    CHECK_EQ_INT(d.n_tokens, n);
    int same = d.n_tokens == n;
    for (int i = 0; same && i < n; i++) same = d.ids[i] == exp[i] && d.counted[i] == fl[i];
    CHECK(same);
    CHECK_EQ_INT(d.n_counted, 4); /* "ok!" and its <|im_end|> */
    CHECK_EQ_INT(d.reply[0], reply);
    CHECK_EQ_INT(d.reply_end[0], reply + 3);
    int markers = 0;
    for (int i = 0; i < n; i++) markers += d.ids[i] == IM_START;
    CHECK_EQ_INT(markers, 5); /* one per message: the user's typed marker stayed text */
    tg_sft_data_free(&d);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Each bad line comes after two good lines (and a blank one), so the error
 * must name line 4. */
static void test_bad_input(const char *dir) {
    const char *good = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}\n";
    struct {
        const char *line, *needle;
    } cases[] = {
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}", "not valid JSON"},
        {"{\"messages\":[{\"role\":\"robot\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}", "unknown role"},
        {"{\"messages\":[]}", "empty messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":5},{\"role\":\"assistant\",\"content\":\"b\"}]}", "must be a string"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", "no assistant message"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\",\"weight\":2}]}", "weight"},
        {"{\"msgs\":[]}", "no \"messages\""},
        {"[1,2]", "JSON object"},
    };
    char path[512], text[1024];
    snprintf(path, sizeof path, "%s/bad.jsonl", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "%s%s\n%s\n%s", good, good, cases[i].line, good);
        write_file(path, text);
        tg_sft_data d;
        int rc = tg_sft_load(&d, path, &byte_vocab);
        char where[600];
        snprintf(where, sizeof where, "%s:4:", path);
        CHECK_EQ_INT(rc, TG_ERR_INPUT);
        if (!strstr(tg_error_message(), where) || !strstr(tg_error_message(), cases[i].needle)) {
            fprintf(stderr, "case %zu: message '%s' lacks '%s' or '%s'\n", i, tg_error_message(), where,
                    cases[i].needle);
            CHECK(0);
        }
        CHECK(d.ids == NULL && d.n_convs == 0);
    }
    snprintf(text, sizeof text, "%s\n%s", good, good);
    write_file(path, text);
    tg_sft_data d;
    CHECK(tg_sft_load(&d, path, &byte_vocab) == TG_OK);
    CHECK_EQ_INT(d.n_convs, 2);
    tg_sft_data_free(&d);
    CHECK(tg_sft_load(&d, "/nonexistent/chat.jsonl", &byte_vocab) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "/nonexistent/chat.jsonl") != NULL);
}

/* n conversations of varied lengths. */
static void make_convs(tg_sft_data *d, int n, uint64_t seed) {
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        char q[64], a[64], json[256];
        int lq = 1 + (int)(tg_rng_next(&r) % 20), la = 1 + (int)(tg_rng_next(&r) % 12);
        for (int k = 0; k < lq; k++) q[k] = (char)('a' + tg_rng_next(&r) % 26);
        for (int k = 0; k < la; k++) a[k] = (char)('A' + tg_rng_next(&r) % 26);
        q[lq] = a[la] = 0;
        snprintf(json, sizeof json,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"},{\"role\":\"assistant\",\"content\":\"%s\"}]}", q,
                 a);
        CHECK(add(d, json) == TG_OK);
    }
}

static void test_packing(void) {
    tg_sft_data d = {0};
    make_convs(&d, 50, 7);
    for (int pack = 0; pack <= 1; pack++) {
        int B = 3, T = 128;
        tg_sft_batcher b;
        CHECK(tg_sft_batcher_init(&b, &d, B, T, 2, pack, true, 42) == TG_OK);
        if (!pack) CHECK_EQ_INT(b.n_windows, d.n_convs);
        else CHECK(b.n_windows < d.n_convs / 2);
        CHECK_EQ_INT(b.n_truncated, 0);
        /* one epoch of rows: every counted token appears exactly once as a weighted target */
        int64_t rows = b.n_windows, weighted = 0, convs_seen = 0;
        int64_t nb = (rows + B - 1) / B;
        int ok_shift = 1, ok_seg = 1;
        for (int64_t k = 0; k < nb; k++) {
            tg_batch bt;
            CHECK(tg_sft_next_batch(&b, k, &bt) == TG_OK);
            for (int r = 0; r < B; r++) {
                if (k * B + r >= rows) break; /* the next epoch's rows */
                const int32_t *in = bt.inputs + r * T, *tg = bt.targets + r * T, *sg = bt.segments + r * T;
                const float *w = bt.weights + r * T;
                for (int t = 0; t < T; t++) {
                    weighted += w[t] != 0;
                    if (t + 1 < T && tg[t] != in[t + 1]) ok_shift = 0;
                    if (t > 0 && sg[t] != sg[t - 1] && sg[t] != sg[t - 1] + 1) ok_seg = 0;
                    if (t > 0 && sg[t] != sg[t - 1] && in[t] == IM_START) convs_seen++;
                    if (w[t] != 0 && sg[t] != (t + 1 < T ? sg[t + 1] : sg[t])) ok_seg = 0; /* target in its own segment */
                }
                if (in[0] == IM_START) convs_seen++;
            }
        }
        CHECK(ok_shift);
        CHECK(ok_seg);
        CHECK_EQ_INT(weighted, d.n_counted);
        CHECK_EQ_INT(convs_seen, d.n_convs);
        /* same k, same batch (what resume relies on), from another batcher */
        tg_sft_batcher b2;
        CHECK(tg_sft_batcher_init(&b2, &d, B, T, 2, pack, true, 42) == TG_OK);
        tg_batch x, y;
        CHECK(tg_sft_next_batch(&b, 37, &x) == TG_OK);
        CHECK(tg_sft_next_batch(&b2, 5, &y) == TG_OK);
        CHECK(tg_sft_next_batch(&b2, 37, &y) == TG_OK);
        CHECK(memcmp(x.inputs, y.inputs, sizeof(int32_t) * B * T) == 0);
        CHECK(memcmp(x.weights, y.weights, sizeof(float) * B * T) == 0);
        tg_sft_batcher_free(&b2);
        tg_sft_batcher_free(&b);
    }
    /* a conversation longer than T+1 is truncated, and counted as such */
    tg_sft_batcher b;
    CHECK(tg_sft_batcher_init(&b, &d, 2, 8, 1, true, false, 1) == TG_OK);
    CHECK(b.n_truncated > 0);
    CHECK_EQ_INT(b.n_windows, d.n_convs);
    /* evaluation order: rows past the end are padding with weight 0 */
    tg_batch bt;
    CHECK(tg_sft_next_batch(&b, tg_sft_batches_per_epoch(&b) + 3, &bt) == TG_OK);
    double wsum = 0;
    for (int i = 0; i < 2 * 8; i++) wsum += bt.weights[i];
    CHECK(wsum == 0);
    tg_sft_batcher_free(&b);
    tg_sft_data_free(&d);
}

/* ------------------------------------------------------------ the model */

static tg_model *small_model(int V) {
    tg_config cfg = {.n_layer = 2, .n_head = 2, .n_embd = 32, .n_ctx = 64, .vocab_size = V, .ln_eps = 1e-5f,
                     .eos_id = 256};
    tg_model *m = NULL;
    CHECK(tg_config_validate(&cfg) == TG_OK);
    CHECK(tg_model_init(&m, &cfg) == TG_OK);
    if (m) tg_model_init_weights(m, 1234);
    return m;
}

static double run_fb(tg_model *m, const tg_batch *bt, double *count, float *grads_out, size_t ng) {
    double loss = 0;
    tg_model_zero_grad(m);
    CHECK(tg_model_forward(m, bt, &loss, count) == TG_OK);
    CHECK(tg_model_backward(m, 1.0f / (float)*count) == TG_OK);
    CHECK(tg_model_num_params(m) == ng);
    CHECK(tg_model_grads_to_host(m, grads_out) == TG_OK);
    return loss;
}

/* The last forward's logits (rows of Vp), in a host buffer reused by the next call. */
static float *g_logits;
static const float *logits_now(const tg_model *m, size_t rows) {
    free(g_logits);
    g_logits = tg_test_logits(m, rows);
    return g_logits;
}

static void test_mask(void) {
    tg_sft_data d = {0};
    make_convs(&d, 12, 3);
    int B = 2, T = 48;
    tg_sft_batcher b;
    CHECK(tg_sft_batcher_init(&b, &d, B, T, 1, true, true, 9) == TG_OK);
    tg_batch bt;
    CHECK(tg_sft_next_batch(&b, 0, &bt) == TG_OK);
    tg_model *m = small_model(259);
    if (!m) return;
    CHECK(tg_model_alloc_train(m, B, T, TG_DTYPE_FP32) == TG_OK);
    size_t ng = tg_model_num_params(m);
    float *g1 = malloc(ng * sizeof(float)), *g2 = malloc(ng * sizeof(float));
    double c1, c2;
    double l1 = run_fb(m, &bt, &c1, g1, ng);

    /* the loss is the mean cross-entropy over assistant targets only (logits
     * read after a forward alone: backward overwrites them) */
    const tg_config *cfg = tg_model_config(m);
    double l0 = 0, c0 = 0;
    CHECK(tg_model_forward(m, &bt, &l0, &c0) == TG_OK);
    CHECK(l0 == l1 && c0 == c1);
    const float *lg = logits_now(m, (size_t)B * T);
    double ref = 0;
    int counted = 0;
    for (int i = 0; i < B * T; i++) {
        if (bt.weights[i] == 0) continue;
        const float *x = lg + (size_t)i * cfg->padded_vocab;
        double mx = x[0], s = 0;
        for (int v = 1; v < cfg->vocab_size; v++) mx = x[v] > mx ? x[v] : mx;
        for (int v = 0; v < cfg->vocab_size; v++) s += exp(x[v] - mx);
        ref += -(x[bt.targets[i]] - mx - log(s));
        counted++;
    }
    CHECK(counted > 0);
    CHECK_EQ_INT((long long)c1, counted);
    float mean = (float)(l1 / c1), refm = (float)(ref / counted);
    tg_check_close("mean loss over assistant targets", &mean, &refm, 1, 1e-5, 0); /* double vs float sums */

    /* every non-assistant target changed: loss and gradients bitwise the same */
    int32_t *tg2 = malloc(sizeof(int32_t) * B * T);
    memcpy(tg2, bt.targets, sizeof(int32_t) * B * T);
    int changed = 0;
    for (int i = 0; i < B * T; i++)
        if (bt.weights[i] == 0) tg2[i] = (tg2[i] + 1 + i * 7) % 259, changed++;
    CHECK(changed > B * T / 4);
    tg_batch bt2 = bt;
    bt2.targets = tg2;
    double l2 = run_fb(m, &bt2, &c2, g2, ng);
    CHECK(memcmp(&l1, &l2, sizeof l1) == 0);
    CHECK(c1 == c2);
    if (memcmp(g1, g2, ng * sizeof(float)) != 0) {
        tg_check_close("grads after changing non-assistant targets", g2, g1, ng, 0, 0);
        CHECK(0);
    }
    /* and changing one assistant target does change the loss (the test can fail) */
    for (int i = 0; i < B * T; i++)
        if (bt.weights[i] != 0) {
            tg2[i] = (tg2[i] + 1) % 259;
            break;
        }
    double l3 = run_fb(m, &bt2, &c2, g2, ng);
    CHECK(l3 != l1);
    free(tg2);

    /* packing: two conversations in row 0; conversation 1 altered */
    int32_t in[2 * 48], tgt[2 * 48], seg[2 * 48];
    float w[2 * 48];
    int la = 20, lb = 28; /* conversation a: positions 0-19, b: 20-47 */
    tg_rng r;
    tg_rng_seed(&r, 5);
    for (int t = 0; t < T; t++) in[t] = (int32_t)(tg_rng_next(&r) % 259);
    for (int t = 0; t < T; t++) {
        seg[t] = t < la ? 0 : 1;
        in[T + t] = t < lb ? in[la + t] : 0; /* row 1: conversation b alone, then padding */
        seg[T + t] = t < lb ? 0 : 1;
        tgt[t] = tgt[T + t] = 0;
        w[t] = w[T + t] = 0;
    }
    (void)w;
    tg_batch pb = {.inputs = in, .targets = NULL, .segments = seg, .B = 2, .T = T};
    size_t V = (size_t)cfg->padded_vocab;
    float *lb1 = malloc(sizeof(float) * lb * V), *alone = malloc(sizeof(float) * lb * V);
    CHECK(tg_model_forward(m, &pb, NULL, NULL) == TG_OK);
    memcpy(lb1, logits_now(m, (size_t)B * T) + la * V, sizeof(float) * lb * V);
    memcpy(alone, logits_now(m, (size_t)B * T) + T * V, sizeof(float) * lb * V);
    for (int t = 0; t < la; t++) in[t] = (in[t] + 11) % 259;
    CHECK(tg_model_forward(m, &pb, NULL, NULL) == TG_OK);
    if (memcmp(lb1, logits_now(m, (size_t)B * T) + la * V, sizeof(float) * lb * V) != 0) {
        tg_check_close("packed b's logits after changing a", logits_now(m, (size_t)B * T) + la * V, lb1, lb * V, 0, 0);
        CHECK(0);
    }
    /* positions restart: b packed after a = b alone at the start of a row
     * (same math, but another row of the GEMMs: 1e-5) */
    for (int t = 0; t < lb; t++) /* columns past the true vocabulary are -inf padding */
        tg_check_close("packed b vs b alone", lb1 + t * V, alone + t * V, (size_t)cfg->vocab_size, 1e-5, 1e-5);
    /* without segments a's change does reach b (the check above can fail) */
    pb.segments = NULL;
    CHECK(tg_model_forward(m, &pb, NULL, NULL) == TG_OK);
    CHECK(memcmp(lb1, logits_now(m, (size_t)B * T) + la * V, sizeof(float) * lb * V) != 0);

    /* growing the vocabulary keeps every old logit bitwise */
    pb.segments = seg;
    CHECK(tg_model_forward(m, &pb, NULL, NULL) == TG_OK);
    float *before = malloc(sizeof(float) * 2 * T * V);
    memcpy(before, logits_now(m, (size_t)B * T), sizeof(float) * 2 * T * V);
    CHECK(tg_sft_grow_vocab(&m, 300, false, 1) == TG_OK);
    CHECK_EQ_INT(tg_model_config(m)->vocab_size, 300);
    CHECK(tg_model_alloc_train(m, B, T, TG_DTYPE_FP32) == TG_OK);
    CHECK(tg_model_forward(m, &pb, NULL, NULL) == TG_OK);
    size_t V2 = (size_t)tg_model_config(m)->padded_vocab;
    int same = 1;
    for (int i = 0; i < 2 * T && same; i++)
        same = memcmp(before + i * V, logits_now(m, (size_t)B * T) + i * V2, 259 * sizeof(float)) == 0;
    CHECK(same);
    tg_test_host ph = tg_test_params(m);
    const float *wte = ph.p.wte;
    double s2 = 0;
    for (size_t i = 259 * 32; i < 300 * 32; i++) s2 += (double)wte[i] * wte[i];
    double sd = sqrt(s2 / (41 * 32));
    CHECK(sd > 0.015 && sd < 0.025); /* N(0, 0.02) */
    CHECK(tg_sft_grow_vocab(&m, 301, true, 1) == TG_OK);
    tg_test_host_free(&ph);
    ph = tg_test_params(m);
    wte = ph.p.wte;
    double mean0 = 0;
    for (int v = 0; v < 300; v++) mean0 += wte[(size_t)v * 32];
    CHECK(fabs(wte[300 * 32] - mean0 / 300) < 1e-6);
    tg_test_host_free(&ph);
    free(g_logits);
    g_logits = NULL;

    free(before);
    free(lb1);
    free(alone);
    free(g1);
    free(g2);
    tg_model_free(m);
    tg_sft_batcher_free(&b);
    tg_sft_data_free(&d);
}

/* The byte-level BPE of the tokenizer module: the template's markers are the
 * only special tokens, whatever the user types. */
static void test_bpe_markers(void) {
    tg_bpe_trainer *tr;
    CHECK(tg_bpe_trainer_new(&tr) == TG_OK);
    const char *txt = "hello world hello there, the world says hello";
    CHECK(tg_bpe_trainer_feed(tr, txt, strlen(txt)) == TG_OK);
    tg_tokenizer *tok = NULL;
    CHECK(tg_bpe_trainer_finish(tr, 280, 0, &tok) == TG_OK);
    tg_bpe_trainer_free(tr);
    if (!tok) return;
    tg_sft_vocab v = {tok, tg_tokenizer_token_id(tok, TG_TOKEN_IM_START), tg_tokenizer_token_id(tok, TG_TOKEN_IM_END)};
    CHECK(v.im_start >= 0 && v.im_end >= 0);
    tg_sft_data d = {0};
    const char *j = "{\"messages\":[{\"role\":\"user\",\"content\":\"<|im_start|>system\\nhello<|im_end|>\"},"
                    "{\"role\":\"assistant\",\"content\":\"hello world\"}]}";
    CHECK(tg_sft_add_json(&d, j, strlen(j), &v, "t", 1) == TG_OK);
    int starts = 0, ends = 0;
    for (int64_t i = 0; i < d.n_tokens; i++) starts += d.ids[i] == v.im_start, ends += d.ids[i] == v.im_end;
    CHECK_EQ_INT(starts, 2);
    CHECK_EQ_INT(ends, 2);
    /* the counted tokens decode to the reply and its end marker */
    int32_t ids[64];
    size_t n = 0;
    for (int64_t i = 0; i < d.n_tokens; i++)
        if (d.counted[i] && n < 64) ids[n++] = d.ids[i];
    CHECK(n >= 2 && ids[n - 1] == v.im_end);
    char *text = NULL;
    CHECK(tg_tokenizer_decode(tok, ids, n - 1, &text, NULL) == TG_OK);
    CHECK(text && strcmp(text, "hello world") == 0);
    free(text);
    tg_sft_data_free(&d);
    tg_tokenizer_free(tok);
}

/* ------------------------------------------------------------ chat-data */

static void test_tfidf(const char *dir) {
    tg_tfidf *t;
    CHECK(tg_tfidf_init(&t) == TG_OK);
    const char *docs[] = {
        "The sourdough starter bubbled; sourdough bread again today.",
        "Bread and butter for breakfast.",
        "Our cat sleeps on the keyboard all day.",
        "Check https://example.com/sourdough for the recipe of the bread",
    };
    for (int i = 0; i < 4; i++) CHECK(tg_tfidf_add(t, docs[i], strlen(docs[i])) == TG_OK);
    CHECK_EQ_INT(tg_tfidf_docs(t), 4);
    const char *terms[4];
    int n = tg_tfidf_terms(t, docs[0], strlen(docs[0]), 3, terms);
    CHECK_EQ_INT(n, 3);
    /* sourdough: tf 2, df 2 -> 2*(ln(5/3)+1) = 3.02; starter, bubbled: tf 1, df 1 -> 1.92 (first
     * occurrence breaks the tie); bread: df 3 -> 1.51; today 1.92 comes after bubbled */
    if (n == 3) {
        CHECK(strcmp(terms[0], "sourdough") == 0);
        CHECK(strcmp(terms[1], "starter") == 0);
        CHECK(strcmp(terms[2], "bubbled") == 0);
    }
    n = tg_tfidf_terms(t, docs[3], strlen(docs[3]), 4, terms);
    int has_url = 0;
    for (int i = 0; i < n; i++) has_url |= strstr(terms[i], "example") != NULL || strstr(terms[i], "https") != NULL;
    CHECK(!has_url); /* links are not topics */
    const char *zh = "今天天气很好";
    n = tg_tfidf_terms(t, zh, strlen(zh), 2, terms);
    CHECK_EQ_INT(n, 2); /* CJK bigrams */
    if (n == 2) CHECK(strcmp(terms[0], "今天") == 0);
    tg_tfidf_free(t);

    const char *two[] = {"sourdough", "bread"};
    char *p = tg_chat_data_prompt(two, 2, 0);
    CHECK(p && strcmp(p, "Write a post about sourdough and bread.") == 0);
    free(p);

    /* chat-data: deterministic, split by hash, every post once */
    char corpus[512], out1[512], val1[512], out2[512], val2[512];
    snprintf(corpus, sizeof corpus, "%s/posts.jsonl", dir);
    FILE *f = fopen(corpus, "w");
    for (int i = 0; i < 200; i++) fprintf(f, "{\"text\": \"post %d about topic%d and thing%d\"}\n", i, i % 17, i % 5);
    fprintf(f, "{\"text\": \"\"}\n");
    fclose(f);
    snprintf(out1, sizeof out1, "%s/c1.jsonl", dir);
    snprintf(val1, sizeof val1, "%s/v1.jsonl", dir);
    snprintf(out2, sizeof out2, "%s/c2.jsonl", dir);
    snprintf(val2, sizeof val2, "%s/v2.jsonl", dir);
    tg_chat_data_params cp = tg_chat_data_default_params();
    cp.corpus = corpus, cp.out = out1, cp.val_out = val1, cp.val_frac = 0.2;
    tg_chat_data_stats st;
    CHECK(tg_chat_data_make(&cp, &st) == TG_OK);
    CHECK_EQ_INT(st.posts, 201);
    CHECK_EQ_INT(st.empty, 1);
    CHECK_EQ_INT(st.train + st.val, 200);
    CHECK(st.val > 20 && st.val < 60);
    cp.out = out2, cp.val_out = val2;
    CHECK(tg_chat_data_make(&cp, &st) == TG_OK);
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 1;
    CHECK(tg_read_file(out1, &a, &na) == TG_OK && tg_read_file(out2, &b, &nb) == TG_OK);
    CHECK(na == nb && memcmp(a, b, na) == 0);
    /* the output is valid chat data for finetune */
    tg_sft_data d;
    CHECK(tg_sft_load(&d, out1, &byte_vocab) == TG_OK);
    CHECK_EQ_INT(d.n_convs, st.train);
    tg_sft_data_free(&d);
    free(a);
    free(b);
    cp.corpus = "/nonexistent/posts";
    CHECK(tg_chat_data_make(&cp, &st) == TG_ERR_INPUT);

    /* an ingest directory keeps its own split: val.jsonl posts are the held-out ones */
    char cdir[512], p1[600];
    snprintf(cdir, sizeof cdir, "%s/corpus", dir);
    CHECK(tg_mkdirs(cdir) == TG_OK);
    snprintf(p1, sizeof p1, "%s/train.jsonl", cdir);
    f = fopen(p1, "w");
    for (int i = 0; i < 30; i++) fprintf(f, "{\"text\": \"train post %d about apples\"}\n", i);
    fclose(f);
    snprintf(p1, sizeof p1, "%s/val.jsonl", cdir);
    f = fopen(p1, "w");
    for (int i = 0; i < 7; i++) fprintf(f, "{\"text\": \"held-out post %d about pears\"}\n", i);
    fclose(f);
    cp = tg_chat_data_default_params();
    cp.corpus = cdir, cp.out = out1, cp.val_out = val1;
    CHECK(tg_chat_data_make(&cp, &st) == TG_OK);
    CHECK_EQ_INT(st.train, 30);
    CHECK_EQ_INT(st.val, 7);
    CHECK(tg_read_file(val1, &a, &na) == TG_OK);
    CHECK(a && strstr(a, "held-out post 3") != NULL && strstr(a, "train post") == NULL);
    free(a);
    /* a broken line is an error naming the file and line */
    f = fopen(p1, "a");
    fprintf(f, "{\"text\": oops}\n");
    fclose(f);
    CHECK(tg_chat_data_make(&cp, &st) == TG_ERR_INPUT);
    char where[700];
    snprintf(where, sizeof where, "%s:8:", p1);
    CHECK(strstr(tg_error_message(), where) != NULL);
}

int main(void) {
    char dir[] = "/tmp/tg_test_sft_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    test_render();
    test_bad_input(dir);
    test_packing();
    test_tfidf(dir);
    test_mask();
    test_bpe_markers();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_sft");
}
