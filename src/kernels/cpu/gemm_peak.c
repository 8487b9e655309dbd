/*
 * gemm_peak.c — the machine's GEMM peak, measured: the denominator of MFU.
 *
 * MFU is quoted against what this machine's best matrix multiply reaches, not
 * a datasheet figure: fp32 is the better of cblas_sgemm (OpenBLAS) and the
 * model's own fp32 GEMM (tg_gemm: oneDNN's sgemm where present), so MFU never
 * flatters the model by using a slower GEMM than its own (the bf16 peak is
 * derived from it: cpu_select.c). Shapes are large and square (1536^3, 7.2 GFLOP a
 * call) so the figure is the kernel's plateau, not its small-shape overhead.
 * The best of several calls is kept: on a shared machine a slow call is
 * someone else's load, not the machine's peak.
 *
 * Cost: about 1 second (fp32: 0.5 s each GEMM) and 28 MB (three 1536x1536 fp32 matrices, freed on return).
 */
#include "kernels/cpu/gemm_peak.h"

#include <cblas.h>

#include "core/core.h"
#include "kernels/cpu/kernels.h"

double tg_cpu_gemm_peak(void) {
    enum { N = 1536 };
    const double budget_s = 1.0;
    size_t n = (size_t)N * N;
    float *a = tg_alloc(n * sizeof(float), "GEMM peak A");
    float *b = tg_alloc(n * sizeof(float), "GEMM peak B");
    float *c = tg_alloc(n * sizeof(float), "GEMM peak C");
    if (!a || !b || !c) {
        tg_free(a), tg_free(b), tg_free(c);
        return 0;
    }
    tg_rng r;
    tg_rng_seed(&r, 42);
    for (size_t i = 0; i < n; i++) {
        a[i] = tg_rng_uniform(&r) - 0.5f;
        b[i] = tg_rng_uniform(&r) - 0.5f;
    }
    double best = 0;
    /* which: 1 cblas_sgemm, 2 the model's fp32 tg_gemm */
    const int first = 1, last = 2;
    for (int which = first; which <= last; which++) {
        double start = tg_now(), budget = budget_s / (last - first + 1);
        /* One untimed call warms caches, thread pools and page mappings. */
        for (int it = -1; it < 50; it++) {
            double t0 = tg_now();
            if (which == 1)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
            else
                tg_gemm(false, false, false, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
            double dt = tg_now() - t0;
            if (it >= 0 && dt > 0) {
                double g = 2.0 * N * N * (double)N / dt / 1e9;
                if (g > best) best = g;
            }
            if (it >= 2 && tg_now() - start > budget) break;
        }
    }
    tg_free(a), tg_free(b), tg_free(c);
    return best;
}
