/*
 * test_dist.c — the pieces of data-parallel training that need no MPI job:
 *  - tg_adamw_update_range over the shards of any split of [0, n) makes
 *    bitwise the update tg_adamw_update makes over the whole model (the
 *    ZeRO-1 update is per element, so the split must not change a bit), with
 *    compact per-shard gradient and moment buffers, over several steps;
 *  - a bad range is an error;
 *  - one process (NULL job): rank 0 of 1, batch index j unchanged;
 *  - the launcher detection reads OMPI_COMM_WORLD_SIZE / PMI_SIZE, and
 *    srun's PMIX_RANK with SLURM_NTASKS.
 * The multi-rank behaviour is tested end to end by tests/e2e_dist.sh.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"
#include "train/dist.h"

static int failures = 0;
#define CHECK(c, ...)                                        \
    do {                                                     \
        if (!(c)) {                                          \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);  \
            fprintf(stderr, __VA_ARGS__);                    \
            fprintf(stderr, "\n");                           \
            failures++;                                      \
        }                                                    \
    } while (0)

static void fill(float *x, size_t n, uint64_t seed, float s) {
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = s * tg_rng_normal(&r);
}

static void test_range_update(void) {
    tg_config cfg;
    TG_ASSERT(tg_config_preset("tiny", &cfg) == TG_OK);
    cfg.n_layer = 2;
    cfg.n_head = 2;
    cfg.n_embd = 32;
    cfg.n_ctx = 16;
    cfg.vocab_size = 97;
    cfg.eos_id = 96;
    TG_ASSERT(tg_config_validate(&cfg) == TG_OK);
    tg_model *full, *sharded;
    TG_ASSERT(tg_model_init(&full, &cfg) == TG_OK && tg_model_init(&sharded, &cfg) == TG_OK);
    TG_ASSERT(tg_model_init_weights(full, 3) == TG_OK && tg_model_init_weights(sharded, 3) == TG_OK);
    TG_ASSERT(tg_model_alloc_train(full, 1, 8, TG_DTYPE_FP32) == TG_OK);
    size_t n = tg_model_num_params(full);
    float *g = malloc(n * sizeof *g), *m1 = calloc(n, sizeof *m1), *v2 = calloc(n, sizeof *v2);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    TG_ASSERT(g && m1 && v2 && a && b);
    tg_optim_params p = tg_optim_default_params();
    p.weight_decay = 0.1f;
    /* Shard boundaries that cut tensors anywhere, including empty shards. */
    const size_t R = 3;
    size_t cut[4] = {0, n / 3 + 7, n / 3 + 7, n};
    for (int t = 1; t <= 3; t++) {
        fill(g, n, 100 + (uint64_t)t, 0.01f);
        /* The whole update: the gradients go into the model's memory. */
        memcpy(tg_model_grad_device(full), g, n * sizeof *g);
        CHECK(tg_adamw_update(full, t, 1e-3f, &p) == TG_OK, "tg_adamw_update");
        for (size_t q = 0; q < R; q++) {
            size_t lo = cut[q], hi = cut[q + 1];
            CHECK(tg_adamw_update_range(sharded, t, 1e-3f, &p, lo, hi, g + lo, m1 + lo, v2 + lo) == TG_OK,
                  "tg_adamw_update_range [%zu, %zu)", lo, hi);
        }
    }
    tg_model_params_to_host(full, a);
    tg_model_params_to_host(sharded, b);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0 && bad++ == 0) first = i;
    CHECK(bad == 0, "sharded AdamW differs from the whole update at %zu of %zu elements (first: %zu, %.9g vs %.9g)",
          bad, n, first, (double)a[first], (double)b[first]);
    float *fm1 = malloc(n * sizeof *fm1), *fv2 = malloc(n * sizeof *fv2);
    TG_ASSERT(fm1 && fv2);
    tg_model_optim_to_host(full, fm1, fv2);
    CHECK(memcmp(fm1, m1, n * sizeof *m1) == 0 && memcmp(fv2, v2, n * sizeof *v2) == 0,
          "sharded moments differ from the whole update's");
    CHECK(tg_adamw_update_range(sharded, 1, 1e-3f, &p, 5, 4, g, m1, v2) != TG_OK, "lo > hi accepted");
    CHECK(tg_adamw_update_range(sharded, 1, 1e-3f, &p, 0, n + 1, g, m1, v2) != TG_OK, "hi > n accepted");
    tg_error_clear();
    free(fm1);
    free(fv2);
    free(g);
    free(m1);
    free(v2);
    free(a);
    free(b);
    tg_model_free(full);
    tg_model_free(sharded);
}

static void test_one_process(void) {
    CHECK(tg_dist_rank(NULL) == 0 && tg_dist_size(NULL) == 1, "NULL job is not rank 0 of 1");
    CHECK(tg_dist_batch_index(NULL, 41) == 41, "NULL job changes the batch index");
    double v[2] = {1.5, 2.5};
    CHECK(tg_dist_sum(NULL, v, 2, "x") == TG_OK && v[0] == 1.5 && v[1] == 2.5, "NULL job sum changed values");
    CHECK(tg_dist_agree(NULL, TG_ERR_INPUT, false) == TG_ERR_INPUT, "NULL job agree lost the status");
}

static void test_launcher(void) {
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    unsetenv("PMIX_RANK");
    unsetenv("PMI_RANK");
    CHECK(tg_dist_launcher_size() == 0, "no launcher seen as one");
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    CHECK(tg_dist_launcher_size() == 4, "OMPI_COMM_WORLD_SIZE=4 read as %d", tg_dist_launcher_size());
    unsetenv("OMPI_COMM_WORLD_SIZE");
    setenv("PMI_SIZE", "3", 1);
    CHECK(tg_dist_launcher_size() == 3, "PMI_SIZE=3 read as %d", tg_dist_launcher_size());
    unsetenv("PMI_SIZE");
    unsetenv("SLURM_STEP_NUM_TASKS");
    unsetenv("SLURM_NTASKS");
    setenv("PMIX_RANK", "0", 1);
    CHECK(tg_dist_launcher_size() == -1, "PMIX_RANK alone not seen as a launcher of unknown size");
    setenv("SLURM_NTASKS", "5", 1);
    CHECK(tg_dist_launcher_size() == 5, "srun (PMIX_RANK, SLURM_NTASKS=5) read as %d", tg_dist_launcher_size());
    unsetenv("SLURM_NTASKS");
    unsetenv("PMIX_RANK");
}

int main(void) {
    test_range_update();
    test_one_process();
    test_launcher();
    if (failures) {
        fprintf(stderr, "test_dist: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_dist: ok\n");
    return 0;
}
