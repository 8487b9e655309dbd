/*
 * optim_kernels.c — the CPU backend's optimizer loops: AdamW over one
 * tensor, the squared L2 norm of the gradients, and scaling (clipping).
 * The schedule, bias corrections and the per-tensor weight-decay choice are
 * the caller's (src/train/optim.c); these only run the elementwise math.
 */
#include <math.h>

#include "kernels/cpu/kernels.h"

/* Built with -fno-math-errno (CMakeLists.txt): sqrtf of a second moment is
 * never negative, and errno handling would keep the AdamW loop scalar. */
void tg_adamw_kernel(float *w, const float *g, float *m1, float *v2, size_t n, float decay, float step_size,
                     float beta1, float beta2, float bc2_sqrt, float eps) {
    float one_b1 = 1.0f - beta1, one_b2 = 1.0f - beta2;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = m1[i] * beta1 + one_b1 * gi;
        float vi = v2[i] * beta2 + one_b2 * gi * gi;
        m1[i] = mi;
        v2[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        w[i] = w[i] * decay - step_size * (mi / denom);
    }
}

double tg_sum_squares(const float *x, size_t n) {
    double ss = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : ss)
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    return ss;
}

void tg_scale(float *x, float s, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}
