/*
 * backend.c — choosing a backend by name. Each backend has its own folder
 * (src/kernels/cpu, and src/kernels/cuda where the build has CUDA) and a
 * tg_backend_<name>_new that fills the op table of backend.h. Also the
 * process's default device (--device), which tg_model_init uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef TG_HAVE_CUDA
#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>
#endif

#include "core/core.h"
#include "kernels/backend.h"

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

#ifdef TG_HAVE_CUDA
/* The CUDA backend is a module (libtruthgpt_cuda.so beside the program, or
 * TG_CUDA_BACKEND's path) loaded at the first use of a CUDA device, so a
 * CPU-only run never maps cudart and cuBLASLt. */
static int (*cuda_device_check)(int device);
static int (*cuda_backend_new)(tg_backend **out, int device);
static char cuda_load_error[4096 + 512];
static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;

static void cuda_load(void) {
    char path[4096];
    const char *env = getenv("TG_CUDA_BACKEND");
    if (env && *env) {
        snprintf(path, sizeof path, "%s", env);
    } else {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
        n = n < 0 ? 0 : n;
        while (n > 0 && path[n - 1] != '/') n--;
        snprintf(path + n, sizeof path - (size_t)n, "libtruthgpt_cuda.so");
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h) {
        *(void **)&cuda_device_check = dlsym(h, "tg_cuda_device_check");
        *(void **)&cuda_backend_new = dlsym(h, "tg_backend_cuda_new");
    }
    if (!cuda_device_check || !cuda_backend_new)
        snprintf(cuda_load_error, sizeof cuda_load_error, "cannot load the CUDA backend %s (%s)", path,
                 h ? "its entry points are missing" : dlerror());
}

static int cuda_loaded(void) {
    pthread_once(&cuda_once, cuda_load);
    return cuda_backend_new ? TG_OK : tg_error_set(TG_ERR_INPUT, "no CUDA device: %s", cuda_load_error);
}
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
    TG_TRY(cuda_loaded());
    return cuda_backend_new(out, cuda);
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
    if (cuda >= 0) {
        TG_TRY(cuda_loaded());
        TG_TRY(cuda_device_check(cuda));
    }
#endif
    snprintf(default_device, sizeof default_device, "%s", device);
    return TG_OK;
}

const char *tg_default_device(void) { return default_device; }
