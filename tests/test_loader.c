/*
 * test_loader.c — the pretraining data order of DESIGN §5: micro-batch k
 * reads tokens [k*B*T, k*B*T + B*T + 1) of the concatenated shards (checked
 * token by token against an independent reading of the stream, across the
 * shard boundary and the wrap at the end); accumulation slices A=2 hold two
 * batches at once and equal the one-at-a-time batches of the same k; the
 * shuffle is a bijection of the windows in every epoch, reproducible from
 * the seed and different across seeds and epochs.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "test_util.h"
#include "train/loader.h"

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

    /* Without a prefix a directory's every *.tok is read (val included). */
    CHECK(tg_loader_open(&l, dir, NULL, 2, 8, 1, 0, 1) == TG_OK);
    CHECK_EQ_INT(l.ts.n_tokens, N1 + N2 + 10);
    tg_loader_close(&l);

    /* Bad input: zero batch, a missing path. */
    CHECK(tg_loader_open(&l, dir, "train", 0, 16, 1, 0, 1) == TG_ERR_INPUT);
    CHECK(tg_loader_open(&l, "/nonexistent/shards", "train", 2, 16, 1, 0, 1) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "/nonexistent/shards") != NULL);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary("test_loader");
}
