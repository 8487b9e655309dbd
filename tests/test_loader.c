/*
 * test_loader.c — the pretraining data order of
 * docs/architecture.md "Training contract": micro-batch k reads tokens
 * [k*B*T, k*B*T + B*T + 1) of the concatenated shards (checked token by token
 * against an independent reading of the stream, across the shard boundary and
 * the wrap at the end); accumulation slices A=2 hold two batches at once and
 * equal the one-at-a-time batches of the same k; the shuffle is a bijection
 * of the windows in every epoch, reproducible from the seed and different
 * across seeds and epochs.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "test_util.h"
#include "train/loader.h"
#include "train/trainer.h"

#define N1 1000
#define N2 537
#define VOCAB 50000

static int32_t g_stream[N1 + N2];

static void write_shard(const char *path, const int32_t *ids, size_t n) {
    tg_shard_writer *w;
    CHECK(tg_shard_writer_open(&w, path, VOCAB, 49999, NULL) == TG_OK);
    CHECK(tg_shard_writer_append(w, ids, n) == TG_OK);
    CHECK(tg_shard_writer_close(w) == TG_OK);
}

/* Checks batch k of l against the formula, reading g_stream directly. */
static int batch_matches(const tg_batch *b, int64_t k, int B, int T) {
    int64_t n = N1 + N2, base = k * B * T;
    for (int r = 0; r < B; r++)
        for (int t = 0; t < T; t++) {
            int64_t off = base + (int64_t)r * T + t;
            int32_t want_in = g_stream[off % n], want_tg = g_stream[(off + 1) % n];
            if (b->inputs[r * T + t] != want_in || b->targets[r * T + t] != want_tg) {
                fprintf(stderr, "k=%lld row %d t %d: got (%d, %d) expected (%d, %d)\n", (long long)k, r, t,
                        b->inputs[r * T + t], b->targets[r * T + t], want_in, want_tg);
                return 0;
            }
        }
    return 1;
}

/* True if tg_permute_index is a bijection of [0, n) for key. */
static int is_permutation(int64_t n, uint64_t key) {
    char *seen = calloc((size_t)n, 1);
    int ok = 1;
    for (int64_t i = 0; i < n && ok; i++) {
        int64_t j = tg_permute_index(i, n, key);
        if (j < 0 || j >= n || seen[j]) ok = 0;
        else seen[j] = 1;
    }
    free(seen);
    return ok;
}

/* A batch source adding per-token weights to the loader's batches: row r of
 * the global batch (slice a, local row b: r = a*B + b) counts its first
 * counts[r] targets. */
typedef struct {
    tg_loader *l;
    int A;
    float w[2][4 * 8];
} weighted_src;
static const int g_counts[4] = {8, 2, 0, 8};

static int weighted_next(void *ctx, int64_t k, tg_batch *out) {
    weighted_src *s = ctx;
    TG_TRY(tg_loader_next(s->l, k, out));
    int a = (int)(k % s->A), slot = (int)(k % 2);
    for (int b = 0; b < out->B; b++)
        for (int t = 0; t < out->T; t++) s->w[slot][b * out->T + t] = t < g_counts[a * out->B + b] ? 1.0f : 0.0f;
    out->weights = s->w[slot];
    return TG_OK;
}

/* Trains 3 steps of (B, A) from the same seed; returns the final params
 * (malloc'd) and the first step's loss and counted targets from metrics.jsonl. */
static float *train_case(const char *dir, const char *out, int B, int A, double *loss1, double *counted1, size_t *n) {
    tg_loader l;
    CHECK(tg_loader_open(&l, dir, "train", B, 8, A, 0, 3) == TG_OK);
    weighted_src src = {&l, A, {{0}}};
    tg_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 16, .n_ctx = 8, .vocab_size = VOCAB, .ln_eps = 1e-5f, .eos_id = 49999};
    CHECK(tg_config_validate(&cfg) == TG_OK);
    tg_model *m;
    CHECK(tg_model_init(&m, &cfg) == TG_OK);
    tg_model_init_weights(m, 11);
    tg_trainer_opts o = tg_trainer_default_opts();
    o.B = B, o.T = 8, o.accum = A, o.steps = 3, o.opt.lr = 1e-3f, o.opt.warmup = 0, o.opt.weight_decay = 0, o.opt.grad_clip = 0;
    o.eval_every = 0, o.save_every = 0, o.out_dir = out, o.label = "test";
    o.next_batch = weighted_next, o.batch_ctx = &src;
    CHECK(tg_mkdirs(out) == TG_OK);
    int stopped = 0, old_quiet = tg_log_quiet;
    tg_log_quiet = 1;
    CHECK(tg_trainer_run(m, &o, NULL, &stopped) == TG_OK && stopped == 0);
    tg_log_quiet = old_quiet;
    *n = tg_model_num_params(m);
    float *copy = malloc(*n * sizeof(float));
    CHECK(copy && tg_model_params_to_host(m, copy) == TG_OK);
    char path[300], *text = NULL;
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    CHECK(tg_read_file(path, &text, NULL) == TG_OK);
    *loss1 = *counted1 = -1;
    if (text) {
        const char *lp = strstr(text, "\"loss\":"), *cp = strstr(text, "\"counted\":");
        if (lp) *loss1 = atof(lp + 7);
        if (cp) *counted1 = atof(cp + 10);
    }
    free(text);
    tg_model_free(m);
    tg_loader_close(&l);
    return copy;
}

int main(void) {
    char dir[] = "/tmp/tg_test_loader_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    /* Distinct, scrambled ids so an off-by-one anywhere shows. */
    for (int i = 0; i < N1 + N2; i++) g_stream[i] = (int32_t)((i * 7919u + 13u) % VOCAB);
    char path[256];
    snprintf(path, sizeof path, "%s/train-000000.tok", dir);
    write_shard(path, g_stream, N1);
    snprintf(path, sizeof path, "%s/train-000001.tok", dir);
    write_shard(path, g_stream + N1, N2);
    snprintf(path, sizeof path, "%s/val-000000.tok", dir); /* must not be read as train data */
    write_shard(path, g_stream, 10);

    /* Sequential order, B=3 T=16: 48 tokens a batch; k = 20 crosses the
     * shard boundary at 1000, k = 31 and 32 wrap around the 1537 tokens. */
    tg_loader l;
    CHECK(tg_loader_open(&l, dir, "train", 3, 16, 1, 0, 1234) == TG_OK);
    CHECK_EQ_INT(l.ts.n_tokens, N1 + N2);
    CHECK_EQ_INT(l.n_windows, (N1 + N2) / 48);
    int64_t ks[] = {0, 1, 2, 20, 21, 31, 32, 33, 64, 1000003};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        tg_batch b;
        CHECK(tg_loader_next(&l, ks[i], &b) == TG_OK);
        CHECK(b.B == 3 && b.T == 16 && b.weights == NULL && b.segments == NULL);
        CHECK(batch_matches(&b, ks[i], 3, 16));
        CHECK_EQ_INT(tg_loader_window_start(&l, ks[i]), (ks[i] * 48) % (N1 + N2));
    }
    tg_loader_close(&l);

    /* Accumulation A=2 (two slots): batches k = s*A + a of step s stay valid
     * together and equal one-slot batches of the same k (so A=2 on one rank
     * reads what A=1 on two ranks reads, k = (s*A + a)*R + r). */
    tg_loader la, l1;
    CHECK(tg_loader_open(&la, dir, "train", 2, 8, 2, 0, 1) == TG_OK);
    CHECK(tg_loader_open(&l1, dir, "train", 2, 8, 1, 0, 1) == TG_OK);
    for (int64_t s = 0; s < 200; s += 37) {
        tg_batch b0, b1, r0, r1;
        CHECK(tg_loader_next(&la, s * 2 + 0, &b0) == TG_OK);
        CHECK(tg_loader_next(&la, s * 2 + 1, &b1) == TG_OK);
        CHECK(b0.inputs != b1.inputs);
        CHECK(batch_matches(&b0, s * 2, 2, 8) && batch_matches(&b1, s * 2 + 1, 2, 8));
        /* Two ranks, A=1: rank r of step s reads k = s*2 + r. */
        CHECK(tg_loader_next(&l1, (s * 1 + 0) * 2 + 0, &r0) == TG_OK);
        CHECK(memcmp(r0.inputs, b0.inputs, 16 * sizeof(int32_t)) == 0);
        CHECK(tg_loader_next(&l1, (s * 1 + 0) * 2 + 1, &r1) == TG_OK);
        CHECK(memcmp(r1.inputs, b1.inputs, 16 * sizeof(int32_t)) == 0 &&
              memcmp(r1.targets, b1.targets, 16 * sizeof(int32_t)) == 0);
    }
    tg_loader_close(&la);
    tg_loader_close(&l1);

    /* The permutation: a bijection for awkward sizes and keys. */
    int64_t sizes[] = {1, 2, 3, 5, 7, 8, 64, 1000, 1001, 4097};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (uint64_t key = 0; key < 3; key++) CHECK(is_permutation(sizes[i], key * 0x9e3779b97f4a7c15ull + 1));
    /* ...that actually moves things (identity for 1000 elements is not a shuffle). */
    int fixed = 0;
    for (int64_t i = 0; i < 1000; i++) fixed += tg_permute_index(i, 1000, 42) == i;
    CHECK(fixed < 20);

    /* Shuffled loader: each epoch visits every window once; same seed same
     * order; another seed or the next epoch a different order; rows of a
     * window are consecutive tokens with targets shifted by one. */
    tg_loader s1, s2, s3;
    CHECK(tg_loader_open(&s1, dir, "train", 2, 8, 1, 1, 77) == TG_OK);
    CHECK(tg_loader_open(&s2, dir, "train", 2, 8, 1, 1, 77) == TG_OK);
    CHECK(tg_loader_open(&s3, dir, "train", 2, 8, 1, 1, 78) == TG_OK);
    int64_t W = s1.n_windows;
    CHECK_EQ_INT(W, (N1 + N2) / 16);
    char *seen = calloc((size_t)W, 1);
    int same_seed_diff = 0, other_seed_diff = 0, next_epoch_diff = 0, epoch_ok = 1;
    for (int64_t k = 0; k < W; k++) {
        int64_t a = tg_loader_window_start(&s1, k);
        if (a % 16 != 0 || a / 16 >= W || seen[a / 16]) epoch_ok = 0;
        else seen[a / 16] = 1;
        same_seed_diff += a != tg_loader_window_start(&s2, k);
        other_seed_diff += a != tg_loader_window_start(&s3, k);
        next_epoch_diff += a != tg_loader_window_start(&s1, k + W);
    }
    CHECK(epoch_ok);
    CHECK_EQ_INT(same_seed_diff, 0);
    CHECK(other_seed_diff > W / 2);
    CHECK(next_epoch_diff > W / 2);
    for (int64_t k = 0; k < 2 * W + 3; k += 11) {
        tg_batch b;
        CHECK(tg_loader_next(&s1, k, &b) == TG_OK);
        int64_t start = tg_loader_window_start(&s1, k);
        int ok = 1;
        for (int i = 0; i < 16; i++)
            ok &= b.inputs[i] == g_stream[(start + i) % (N1 + N2)] && b.targets[i] == g_stream[(start + i + 1) % (N1 + N2)];
        CHECK(ok);
    }
    free(seen);
    tg_loader_close(&s1);
    tg_loader_close(&s2);
    tg_loader_close(&s3);

    /* Document attention: every <|endoftext|> after a row's first token
     * starts a new segment; each row starts at 0; batches carry them. */
    {
        enum { E = 5 };
        int32_t in[2 * 6] = {E, 1, 2, E, 3, E, /* row 2: */ 7, E, E, 8, 9, 4};
        int32_t want[2 * 6] = {0, 0, 0, 1, 1, 2, 0, 1, 2, 2, 2, 2}, seg[2 * 6];
        tg_doc_segments(seg, in, 2, 6, E);
        CHECK(memcmp(seg, want, sizeof want) == 0);
        /* A stream of 5-token documents (the eot 49999 at every multiple
         * of 5): in a row starting at stream offset o, token t's segment is
         * the count of multiples of 5 in (o, o + t]. */
        char docs[300], shard[340];
        snprintf(docs, sizeof docs, "%s/docs", dir);
        CHECK(mkdir(docs, 0755) == 0);
        snprintf(shard, sizeof shard, "%s/train-000000.tok", docs);
        int32_t ids[203];
        for (int i = 0; i < 203; i++) ids[i] = i % 5 == 0 ? 49999 : i;
        write_shard(shard, ids, 203);
        CHECK(tg_loader_open(&l, docs, "train", 2, 8, 2, 0, 1) == TG_OK);
        CHECK(tg_loader_doc_attention(&l) == TG_OK);
        int ok = 1;
        for (int64_t k = 0; k < 12; k++) {
            tg_batch b;
            CHECK(tg_loader_next(&l, k, &b) == TG_OK);
            CHECK(b.segments != NULL);
            for (int r = 0; r < 2; r++)
                for (int t = 0; t < 8; t++) {
                    int64_t o = k * 16 + r * 8, n = 0;
                    for (int64_t q = o + 1; q <= o + t; q++) n += q % 5 == 0;
                    ok &= b.segments[r * 8 + t] == n;
                }
        }
        CHECK(ok);
        tg_loader_close(&l);
    }

    /* Without a prefix a directory's every *.tok is read (val included). */
    CHECK(tg_loader_open(&l, dir, NULL, 2, 8, 1, 0, 1) == TG_OK);
    CHECK_EQ_INT(l.ts.n_tokens, N1 + N2 + 10);
    tg_loader_close(&l);

    /* Bad input: zero batch, a missing path. */
    CHECK(tg_loader_open(&l, dir, "train", 0, 16, 1, 0, 1) == TG_ERR_INPUT);
    CHECK(tg_loader_open(&l, "/nonexistent/shards", "train", 2, 16, 1, 0, 1) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "/nonexistent/shards") != NULL);

    /* Accumulation with loss weights: (B=4, A=1) against (B=2, A=2). */
    char out1[300], out2[300];
    snprintf(out1, sizeof out1, "%s/run1", dir);
    snprintf(out2, sizeof out2, "%s/run2", dir);
    double loss1, loss2, cnt1, cnt2;
    size_t n1, n2;
    float *p1 = train_case(dir, out1, 4, 1, &loss1, &cnt1, &n1);
    float *p2 = train_case(dir, out2, 2, 2, &loss2, &cnt2, &n2);
    CHECK_EQ_INT(cnt1, 18);
    CHECK_EQ_INT(cnt2, 18);
    /* Same targets, same weights: the same mean up to summation order. */
    if (!(fabs(loss1 - loss2) <= 1e-6 * fabs(loss1)))
        fprintf(stderr, "first-step loss: A=1 %.9g, A=2 %.9g\n", loss1, loss2);
    CHECK(fabs(loss1 - loss2) <= 1e-6 * fabs(loss1));
    CHECK(loss1 > 5 && loss1 < 20); /* about ln(50000) = 10.8 at initialisation */
    /* After 3 AdamW steps (no clip, no decay): equal to float rounding of
     * the gradient sums (atol 1e-6 against lr 1e-3 steps). A mean of slice
     * means would weigh slice 1's 8 targets like slice 0's 10 and differ by
     * far more. */
    CHECK(n1 == n2);
    tg_check_close("params after 3 steps, A=2 vs A=1", p2, p1, n1, 1e-4, 1e-6);
    free(p1);
    free(p2);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary("test_loader");
}
