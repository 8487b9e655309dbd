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

/* GELU, tanh form (GPT-2's), and its derivative, through the identity
 * 0.5 (1 + tanh u) = sigmoid(2u) = 1 / (1 + e), e = exp(-2u): one exp and one
 * division, about half the vector instructions of tanh's two branches (the
 * GELU passes are compute-bound, see bench/README.md). 1 - s is
 * written as e*s, so nothing cancels; for u below -44 (x < -10) e saturates
 * and the result is a tiny negative, not 0 (PyTorch gives 0 there). */
#define TG_GELU_K 0.7978845608028654f /* sqrt(2/pi) */

static inline float tg_gelu(float x) {
    float e = tg_expf(-2.0f * TG_GELU_K * (x + 0.044715f * x * x * x));
    return x / (1.0f + e);
}

static inline float tg_gelu_grad(float x) {
    float e = tg_expf(-2.0f * TG_GELU_K * (x + 0.044715f * x * x * x));
    float s = 1.0f / (1.0f + e); /* sigmoid(2u) */
    float du = TG_GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
    return s + 2.0f * x * du * (e * s) * s; /* s + x s (1 - s) 2u'; e*s <= 1, so no overflow */
}

#endif /* TG_FASTMATH_H */
