/*
 * fuzz_util.h — what the libFuzzer targets of tests/fuzz share: a private
 * scratch directory (the parsers that read files are given the input as a
 * file there) and quiet logging. Each target defines LLVMFuzzerTestOneInput;
 * tests/fuzz/run.sh runs them over their seed corpora (tests/fuzz/corpus/).
 */
#ifndef TG_FUZZ_UTIL_H
#define TG_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "model/checkpoint_verify.h"

static char fuzz_dir_path[64] = "";

static inline void fuzz_dir_remove(void) { tg_remove_tree(fuzz_dir_path); }

/* The scratch directory of this process, made on first use. */
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        /* tmpfs where there is one: the file-reading targets write an input a run */
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/tg_fuzz_%d", base, (int)getpid());
        if (tg_mkdirs(fuzz_dir_path) != TG_OK) abort();
        atexit(fuzz_dir_remove);
        tg_log_quiet = 1;
    }
    return fuzz_dir_path;
}

/* Writes data to <scratch>/name and returns the path (static buffer). */
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t size) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

#endif /* TG_FUZZ_UTIL_H */
