/*
 * gemm_peak.h — measures this kernel family's fp32 matrix-multiply plateau (GFLOP/s),
 * dtype, the denominator of MFU in `truthgpt bench train`.
 * Declared publicly in truthgpt.h (tg_gemm_peak_gflops); this header exists so
 * kernels can include it without the whole API.
 */
#ifndef TG_GEMM_PEAK_H
#define TG_GEMM_PEAK_H

#include "kernels/cpu/variant.h"

#include "truthgpt.h"

/* This kernel family's fp32 GEMM plateau: the better of cblas_sgemm and
 * tg_gemm on large square matrices. Takes about 1 second, uses the current
 * OpenMP thread count. Returns the best rate seen in GFLOP/s (2*M*N*K flops
 * per call). The public tg_gemm_peak_gflops (cpu_select.c) derives the
 * hardware's fp32 and bf16 peaks from it. */
double tg_cpu_gemm_peak(void);

#endif /* TG_GEMM_PEAK_H */
