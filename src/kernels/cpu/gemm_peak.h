/*
 * gemm_peak.h — measures this machine's matrix-multiply peak (GFLOP/s) for a
 * dtype, the denominator of MFU in `truthgpt bench train`.
 * Declared publicly in truthgpt.h (tg_gemm_peak_gflops); this header exists so
 * kernels can include it without the whole API.
 */
#ifndef TG_GEMM_PEAK_H
#define TG_GEMM_PEAK_H

#include "truthgpt.h"

/* fp32: cblas_sgemm on large square matrices; bf16: tg_gemm_bf16 on the
 * same shapes. Takes about 1 second, uses the current OpenMP thread count.
 * Returns the best rate seen in GFLOP/s (2*M*N*K flops per call). */
double tg_gemm_peak_gflops(tg_dtype dtype);

#endif /* TG_GEMM_PEAK_H */
