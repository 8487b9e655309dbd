/*
 * gemm_peak.h — measures this machine's matrix-multiply peak (GFLOP/s) for a
 * dtype, the denominator of MFU in `truthgpt bench train`.
 * Declared publicly in truthgpt.h (tg_gemm_peak_gflops); this header exists so
 * kernels can include it without the whole API.
 */
#ifndef TG_GEMM_PEAK_H
#define TG_GEMM_PEAK_H

#include "kernels/cpu/variant.h"

#include "truthgpt.h"

/* This kernel family's GEMM rate: fp32 the better of cblas_sgemm and
 * tg_gemm on large square matrices; bf16 tg_gemm_bf16 on the same shapes.
 * Takes about 1 second, uses the current OpenMP thread count. Returns the
 * best rate seen in GFLOP/s (2*M*N*K flops per call). The public
 * tg_gemm_peak_gflops (cpu_select.c) decides what the peak of the hardware
 * is from it. */
double tg_cpu_gemm_peak(tg_dtype dtype);

#endif /* TG_GEMM_PEAK_H */
