/*
 * gelu_math.h — the tanh-form GELU (GPT-2's) as formulas only, shared by the
 * CPU and CUDA backends so both compute the same expression. Each backend
 * brings its own exp: the CPU its vectorised tg_expf (cpu/fastmath.h), the
 * GPU the device expf. Usage: e = EXP(tg_gelu_exponent(x)), then
 * tg_gelu_from_e(x, e) and tg_gelu_grad_from_e(x, e).
 *
 *   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
 *           = x sigmoid(2u) = x / (1 + e),  e = exp(-2u)
 * PyTorch: F.gelu(x, approximate="tanh"). 1 - sigmoid(2u) is written e*s so
 * nothing cancels; for x < -10, e saturates and the result is a tiny
 * negative, not 0 (PyTorch gives 0 there).
 */
#ifndef TG_KERNELS_GELU_MATH_H
#define TG_KERNELS_GELU_MATH_H

#ifdef __CUDACC__
#define TG_HOST_DEVICE __host__ __device__
#else
#define TG_HOST_DEVICE
#endif

#define TG_GELU_SQRT_2_OVER_PI 0.7978845608028654f
#define TG_GELU_CUBIC 0.044715f

/* -2u, the argument of the one exp both formulas need */
static inline TG_HOST_DEVICE float tg_gelu_exponent(float x) {
    return -2.0f * TG_GELU_SQRT_2_OVER_PI * (x + TG_GELU_CUBIC * x * x * x);
}

static inline TG_HOST_DEVICE float tg_gelu_from_e(float x, float e) { return x / (1.0f + e); }

/* d gelu / dx = s + x s (1 - s) 2u',  s = sigmoid(2u) = 1 / (1 + e) */
static inline TG_HOST_DEVICE float tg_gelu_grad_from_e(float x, float e) {
    float s = 1.0f / (1.0f + e);
    float du = TG_GELU_SQRT_2_OVER_PI * (1.0f + 3.0f * TG_GELU_CUBIC * x * x);
    return s + 2.0f * x * du * (e * s) * s; /* e*s <= 1: no overflow */
}

#endif /* TG_KERNELS_GELU_MATH_H */
