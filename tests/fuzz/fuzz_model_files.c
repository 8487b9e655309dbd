/*
 * fuzz_model_files.c — libFuzzer target for what `--model DIR` reads before
 * anything else: config.json (GPT2Config fields and the Hugging Face checks,
 * tg_checkpoint_read_config) and model.safetensors (header, offsets, dtypes,
 * shapes against config.json, the tensor-name and tied-head checks,
 * tg_model_load). The first input byte picks the file; the rest is its
 * content. Every input must give TG_OK or an error message, never a crash,
 * a sanitizer report or a leak.
 *
 * Build (clang): cmake -S . -B build-fuzz -DTG_FUZZ=ON -DTG_SANITIZE=ON
 *   -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
 *   && cmake --build build-fuzz --target fuzz_model_files
 * Run from the repo root (the safetensors case pairs the input with
 * tests/fixtures/hf/gpt2_f32/config.json):
 *   build-fuzz/fuzz_model_files -max_total_time=60 tests/fuzz/corpus/fuzz_model_files
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "truthgpt.h"

static char g_dir[] = "/tmp/tg_fuzz_model_XXXXXX";
static char *g_config; /* the fixture's config.json, for the safetensors case */
static size_t g_config_len;

static void write_file(const char *name, const uint8_t *data, size_t n) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_config) {
        if (!mkdtemp(g_dir)) abort();
        if (tg_read_file("tests/fixtures/hf/gpt2_f32/config.json", &g_config, &g_config_len) != TG_OK) {
            fprintf(stderr, "run from the repository root: %s\n", tg_error_message());
            abort();
        }
    }
    if (size < 1) return 0;
    tg_error_clear();
    if (data[0] & 1) {
        write_file("config.json", (const uint8_t *)g_config, g_config_len);
        write_file("model.safetensors", data + 1, size - 1);
        tg_model *m = NULL;
        int rc = tg_model_load(&m, g_dir);
        if (rc != TG_OK && !*tg_error_message()) abort(); /* an error always says why */
        tg_model_free(m);
    } else {
        write_file("config.json", data + 1, size - 1);
        tg_config cfg;
        int rc = tg_checkpoint_read_config(g_dir, &cfg);
        if (rc != TG_OK && !*tg_error_message()) abort();
        if (rc == TG_OK && (cfg.n_embd <= 0 || cfg.n_layer <= 0 || cfg.n_embd % cfg.n_head != 0)) abort();
    }
    return 0;
}
