/*
 * fastmath.h — exp and tanh written as straight-line float code that the
 * compiler vectorises (AVX-512: 16 lanes), for the softmax, cross-entropy and
 * GELU loops. libm's expf/tanhf are scalar calls here and cost more than the
 * surrounding matrix multiplies on the hot elementwise passes.
 *
 * Accuracy: tg_expf within ~2 ulp of expf over [-87, 88] (Cody-Waite range
 * reduction, degree-7 Taylor polynomial on [-ln2/2, ln2/2]); below -87 it
 * returns 0 as expf underflows; above 88 it is clamped (every caller passes
 * x <= 0 but the GELU's, which only needs the saturation). tg_tanhf derives from it with
 * a relative error of a few ulp (series near 0 to avoid cancellation).
 */
#ifndef TG_FASTMATH_H
#define TG_FASTMATH_H

#include <stdint.h>
#include <string.h>

#include "kernels/gelu_math.h"

static inline float tg_expf(float x) {
    /* exp(x) = 2^n * exp(r), n = round(x / ln2), r = x - n ln2 */
    const float hi = 88.0f, lo = -87.3365447504f; /* above 88 the 2^n scale would overflow */
    int under = x < lo;
    x = x > hi ? hi : x;
    x = x < lo ? lo : x;
    /* round to nearest by the 1.5*2^23 trick (vectorises, unlike roundevenf) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f; /* ln2 split in two for an exact product */
    r = r + n * 2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = p * scale;
    return under ? 0.0f : y;
}

static inline float tg_tanhf(float x) {
    float ax = x < 0 ? -x : x;
    /* tanh|x| = (1 - e) / (1 + e), e = exp(-2|x|); near 0 use the series,
     * where 1 - e cancels. */
    float e = tg_expf(-2.0f * ax);
    float t = (1.0f - e) / (1.0f + e);
    float x2 = x * x;
    float s = ax * (1.0f + x2 * (-1.0f / 3.0f + x2 * (2.0f / 15.0f + x2 * (-17.0f / 315.0f))));
    t = ax < 0.0625f ? s : t;
    return x < 0 ? -t : t;
}

/* GELU, tanh form (GPT-2's), and its derivative: the formulas of
 * kernels/gelu_math.h (shared with the CUDA backend) over tg_expf. One exp
 * and one division, about half the vector instructions of tanh's two
 * branches (bench/README.md has the figure). */
static inline float tg_gelu(float x) { return tg_gelu_from_e(x, tg_expf(tg_gelu_exponent(x))); }

static inline float tg_gelu_grad(float x) { return tg_gelu_grad_from_e(x, tg_expf(tg_gelu_exponent(x))); }

#endif /* TG_FASTMATH_H */
