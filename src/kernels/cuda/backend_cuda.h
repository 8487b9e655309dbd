/*
 * backend_cuda.h — the CUDA backend's two entry points, callable from C
 * (src/kernels/backend.c). Only declared where the build has CUDA
 * (TG_HAVE_CUDA); see docs/cuda.md.
 */
#ifndef TG_KERNELS_CUDA_BACKEND_H
#define TG_KERNELS_CUDA_BACKEND_H

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TG_OK when CUDA device `device` is there; else TG_ERR_INPUT, "no CUDA
 * device: <the runtime's reason>" (no driver, no GPU, an index too large). */
int tg_cuda_device_check(int device);
/* The backend on device `device` (the op table of backend.h). */
int tg_backend_cuda_new(tg_backend **out, int device);

#ifdef __cplusplus
}
#endif

#endif /* TG_KERNELS_CUDA_BACKEND_H */
