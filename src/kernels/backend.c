/*
 * backend.c — choosing a backend by name. Each backend has its own folder
 * (src/kernels/cpu, and src/kernels/cuda where the build has CUDA) and a
 * tg_backend_<name>_new that fills the op table of backend.h.
 */
#include <string.h>

#include "core/core.h"
#include "kernels/backend.h"

int tg_backend_new(tg_backend **out, const char *name) {
    *out = NULL;
    if (!name || !strcmp(name, "cpu")) return tg_backend_cpu_new(out);
    if (!strncmp(name, "cpu:", 4)) return tg_backend_cpu_family_new(out, name + 4);
    return tg_error_set(TG_ERR_INPUT, "unknown backend '%s' (this build has: cpu)", name);
}

void tg_backend_free(tg_backend *be) {
    if (be) be->destroy(be);
}
