/*
 * backend.c — choosing a backend by name. Each backend has its own folder
 * (src/kernels/cpu, and src/kernels/cuda where the build has CUDA) and a
 * tg_backend_<name>_new that fills the op table of backend.h. Also the
 * process's default device (--device), which tg_model_init uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kernels/backend.h"
#ifdef TG_HAVE_CUDA
#include "kernels/cuda/backend_cuda.h"
#endif

static char default_device[32] = "cpu";

/* "cuda" -> 0, "cuda:N" -> N; -1 for anything else */
static int cuda_index(const char *name) {
    if (!strcmp(name, "cuda")) return 0;
    if (strncmp(name, "cuda:", 5) || !name[5] || strlen(name) > 9) return -1;
    for (const char *p = name + 5; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    return atoi(name + 5);
}

#ifdef TG_HAVE_CUDA
#define TG_BACKENDS "cpu, cuda, cuda:N"
#else
#define TG_BACKENDS "cpu"
#endif

/* TG_OK and the CUDA index (or -1 for the CPU) of a valid name */
static int parse(const char *name, int *cuda) {
    *cuda = -1;
    if (!strcmp(name, "cpu")) return TG_OK;
    int idx = cuda_index(name);
    if (idx < 0) return tg_error_set(TG_ERR_INPUT, "unknown device '%s' (this build has: " TG_BACKENDS ")", name);
#ifndef TG_HAVE_CUDA
    return tg_error_set(TG_ERR_INPUT, "device '%s': this build has no CUDA (nvcc was not found when it was built; "
                        "see docs/cuda.md)", name);
#else
    *cuda = idx;
    return TG_OK;
#endif
}

int tg_backend_new(tg_backend **out, const char *name) {
    *out = NULL;
    if (!name) name = default_device;
    if (!strncmp(name, "cpu:", 4)) return tg_backend_cpu_family_new(out, name + 4); /* a CPU kernel family */
    int cuda;
    TG_TRY(parse(name, &cuda));
    if (cuda < 0) return tg_backend_cpu_new(out);
#ifdef TG_HAVE_CUDA
    return tg_backend_cuda_new(out, cuda);
#else
    return TG_ERR_INPUT; /* parse() refused it */
#endif
}

void tg_backend_free(tg_backend *be) {
    if (be) be->destroy(be);
}

int tg_backend_status(tg_backend *be) { return be->status ? be->status(be) : TG_OK; }

int tg_set_default_device(const char *device) {
    int cuda;
    TG_TRY(parse(device, &cuda));
#ifdef TG_HAVE_CUDA
    if (cuda >= 0) TG_TRY(tg_cuda_device_check(cuda));
#endif
    snprintf(default_device, sizeof default_device, "%s", device);
    return TG_OK;
}

const char *tg_default_device(void) { return default_device; }
