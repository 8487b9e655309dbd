/*
 * test_util.h — tiny assertion helpers for the C tests: each failed check
 * prints file:line and the values, the test goes on, and test_summary
 * returns non-zero if anything failed.
 */
#ifndef TG_TEST_UTIL_H
#define TG_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "truthgpt.h"

static int tg_test_failures = 0;
static int tg_test_checks = 0;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        tg_test_checks++;                                                                 \
        if (!(cond)) {                                                                    \
            tg_test_failures++;                                                           \
            fprintf(stderr, "%s:%d: check failed: %s [%s]\n", __FILE__, __LINE__, #cond, \
                    tg_error_message());                                                  \
        }                                                                                 \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                       \
    do {                                                                                         \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                    \
        tg_test_checks++;                                                                        \
        if (va_ != vb_) {                                                                        \
            tg_test_failures++;                                                                  \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, va_, #b, vb_); \
        }                                                                                        \
    } while (0)

/* Compares n floats: |a-b| <= atol + rtol*|b|. Prints the first mismatches
 * and the max differences; returns 1 if all within tolerance. */
static inline int tg_check_close(const char *what, const float *a, const float *b, size_t n, double rtol,
                                 double atol) {
    double max_abs = 0, max_rel = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double rel = d / (fabs((double)b[i]) + 1e-30);
        if (d > max_abs) max_abs = d;
        if (d > atol && rel > max_rel) max_rel = rel;
        if (!(d <= atol + rtol * fabs((double)b[i]))) {
            if (bad < 5) fprintf(stderr, "  %s[%zu]: got %.9g expected %.9g\n", what, i, a[i], b[i]);
            bad++;
        }
    }
    tg_test_checks++;
    if (bad) {
        tg_test_failures++;
        fprintf(stderr, "FAIL %s: %zu of %zu differ (rtol %g atol %g), max abs diff %.3g, max rel diff %.3g\n", what,
                bad, n, rtol, atol, max_abs, max_rel);
        return 0;
    }
    return 1;
}

/* Host copies of a model's memory (the model's own may be on a device):
 * parameter-shaped memory viewed as tg_params; free with tg_test_host_free. */
typedef struct {
    float *mem;
    tg_params p;
} tg_test_host;

static inline tg_test_host tg_test_host_copy(const tg_model *m, int grads) {
    tg_test_host h;
    h.mem = malloc(tg_model_num_params(m) * sizeof(float));
    CHECK(h.mem && (grads ? tg_model_grads_to_host(m, h.mem) : tg_model_params_to_host(m, h.mem)) == TG_OK);
    tg_params_point(&h.p, tg_model_config(m), h.mem);
    return h;
}
static inline tg_test_host tg_test_params(const tg_model *m) { return tg_test_host_copy(m, 0); }
static inline tg_test_host tg_test_grads(const tg_model *m) { return tg_test_host_copy(m, 1); }

static inline void tg_test_host_free(tg_test_host *h) {
    free(h->mem);
    h->mem = NULL;
}

/* The first rows (B*T) of the last forward's logits, malloc'd. */
static inline float *tg_test_logits(const tg_model *m, size_t rows) {
    float *l = malloc(rows * (size_t)tg_model_config(m)->padded_vocab * sizeof(float));
    CHECK(l && tg_model_logits_to_host(m, 0, rows, l) == TG_OK);
    return l;
}

static inline int test_summary(const char *name) {
    printf("%s: %d checks, %d failed\n", name, tg_test_checks, tg_test_failures);
    return tg_test_failures ? 1 : 0;
}

#endif
