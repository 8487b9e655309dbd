/*
 * test_hostile_files.c — files made by a hostile user must be refused with
 * TG_ERR_INPUT and a message naming the file, before anything is allocated
 * from them: a safetensors shape whose byte count wraps, config values that
 * overflow int arithmetic, a config its weights file does not back, NaN/Inf
 * weights, shard headers with a vocabulary >= 2^31 or inconsistent fields,
 * and a shard id outside the vocabulary (found at open, with its offset).
 * Also the checkpoint checks: SHA-256 sums, the resolver skipping a bad
 * newest checkpoint, and the removal of stale temporaries.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "model/checkpoint_verify.h"
#include "model/safetensors.h"
#include "test_util.h"

static char g_dir[] = "/tmp/tg_test_hostile_XXXXXX";

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static void write_text_file(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ----------------------------------------------------------- safetensors */

static void test_safetensors_wrap(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/wrap.safetensors", g_dir);
    /* [2^62] F32 elements: 2^64 bytes, which wraps to 0 in u64 arithmetic. */
    const char *hdr[] = {
        "{\"t\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}",
        "{\"t\":{\"dtype\":\"I64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}",
        "{\"t\":{\"dtype\":\"F16\",\"shape\":[2,4611686018427387904],\"data_offsets\":[0,0]}}",
    };
    for (int i = 0; i < 3; i++) {
        size_t hl = strlen(hdr[i]);
        uint8_t buf[256] = {0};
        for (int b = 0; b < 8; b++) buf[b] = (uint8_t)((uint64_t)hl >> (8 * b));
        memcpy(buf + 8, hdr[i], hl);
        write_bytes(path, buf, 8 + hl);
        tg_safetensors st;
        tg_error_clear();
        int rc = tg_safetensors_open(&st, path);
        CHECK_EQ_INT(rc, TG_ERR_INPUT);
        CHECK(strstr(tg_error_message(), path) && strstr(tg_error_message(), "'t'") &&
              strstr(tg_error_message(), "too large"));
        if (rc == TG_OK) tg_safetensors_close(&st);
    }
}

/* ---------------------------------------------------------------- config */

static void test_config_ceilings(void) {
    tg_config c;
    CHECK(tg_config_preset("tiny", &c) == TG_OK);
    c.vocab_size = INT32_MAX; /* (V + 63) overflowed int before */
    c.eos_id = 0;
    CHECK(tg_config_validate(&c) == TG_ERR_INPUT && strstr(tg_error_message(), "vocab_size"));
    CHECK(tg_config_preset("tiny", &c) == TG_OK);
    c.n_layer = 3000;
    CHECK(tg_config_validate(&c) == TG_ERR_INPUT && strstr(tg_error_message(), "n_layer"));
    CHECK(tg_config_preset("tiny", &c) == TG_OK);
    c.n_embd = 1 << 30;
    c.n_head = 1;
    CHECK(tg_config_validate(&c) == TG_ERR_INPUT && strstr(tg_error_message(), "n_embd"));
    /* Within every ceiling but too big for any machine: refused by size. */
    CHECK(tg_config_preset("tiny", &c) == TG_OK);
    c.n_layer = 1024, c.n_embd = 65536, c.n_head = 1024;
    CHECK(tg_config_validate(&c) == TG_ERR_INPUT && strstr(tg_error_message(), "GB"));
    /* gpt2 itself still passes. */
    CHECK(tg_config_preset("gpt2", &c) == TG_OK);
    CHECK(tg_config_validate(&c) == TG_OK);

    /* Through config.json: exit-2 errors naming the file. */
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/cfg", g_dir);
    CHECK(tg_mkdirs(dir) == TG_OK);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text_file(path, "{\"model_type\":\"gpt2\",\"n_layer\":2,\"n_head\":2,\"n_embd\":16,\"n_positions\":16,"
                          "\"vocab_size\":2147483647}");
    CHECK(tg_checkpoint_read_config(dir, &c) == TG_ERR_INPUT && strstr(tg_error_message(), path));
}

/* ------------------------------------------------- config against weights */

static tg_model *tiny_model(tg_config *c) {
    memset(c, 0, sizeof *c);
    c->n_layer = 2, c->n_head = 2, c->n_embd = 16, c->n_ctx = 8, c->vocab_size = 70, c->eos_id = 69;
    c->ln_eps = 1e-5f;
    CHECK(tg_config_validate(c) == TG_OK);
    tg_model *m = NULL;
    CHECK(tg_model_init(&m, c) == TG_OK);
    if (m) tg_model_init_weights(m, 7);
    return m;
}

/* Offset in model.safetensors of the first data byte of tensor name. */
static long data_offset(const char *path, const char *name) {
    tg_safetensors st;
    if (tg_safetensors_open(&st, path) != TG_OK) return -1;
    const tg_st_tensor *t = tg_safetensors_find(&st, name);
    long off = t ? (long)((const uint8_t *)t->data - (const uint8_t *)st.map) : -1;
    tg_safetensors_close(&st);
    return off;
}

static void poke(const char *path, long off, const void *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fseek(f, off, SEEK_SET) == 0);
    CHECK(fwrite(bytes, 1, n, f) == n);
    fclose(f);
}

static void test_config_vs_weights(void) {
    tg_config c;
    tg_model *m = tiny_model(&c);
    char dir[256], cfgp[300], stp[300];
    snprintf(dir, sizeof dir, "%s/ck", g_dir);
    CHECK(tg_mkdirs(dir) == TG_OK);
    CHECK(tg_model_save(m, dir) == TG_OK);
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    snprintf(stp, sizeof stp, "%s/model.safetensors", dir);
    tg_model *m2 = NULL;
    CHECK(tg_model_load(&m2, dir) == TG_OK);
    tg_model_free(m2);
    CHECK(tg_checkpoint_check_weights(dir, &c) == TG_OK);

    /* A config.json asking for more layers than the file holds. */
    char *orig;
    size_t olen;
    CHECK(tg_read_file(cfgp, &orig, &olen) == TG_OK);
    tg_config big = c;
    big.n_layer = 1000;
    CHECK(tg_checkpoint_check_weights(dir, &big) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "h.999.mlp.c_proj.weight") && strstr(tg_error_message(), "missing") &&
          strstr(tg_error_message(), stp));
    tg_config wide = c;
    wide.n_ctx = 9;
    CHECK(tg_checkpoint_check_weights(dir, &wide) == TG_ERR_INPUT && strstr(tg_error_message(), "wpe") &&
          strstr(tg_error_message(), "[9, 16]"));

    /* NaN and Inf weights, named by tensor and element. */
    long off = data_offset(stp, "transformer.h.1.mlp.c_fc.bias");
    CHECK(off > 0);
    uint32_t nan_bits = 0x7fc00000u, inf_bits = 0xff800000u;
    poke(stp, off + 4 * 5, &nan_bits, 4);
    CHECK(tg_model_load(&m2, dir) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "transformer.h.1.mlp.c_fc.bias") && strstr(tg_error_message(), "NaN") &&
          strstr(tg_error_message(), "element 5"));
    CHECK(m2 == NULL);
    CHECK(tg_model_save(m, dir) == TG_OK);
    off = data_offset(stp, "transformer.wte.weight");
    poke(stp, off + 4 * 100, &inf_bits, 4);
    CHECK(tg_model_load(&m2, dir) == TG_ERR_INPUT && strstr(tg_error_message(), "element 100"));

    /* F16 and BF16 tensors: their own exponent masks. The model's tensors
     * plus one extra half-precision tensor holding a non-finite value. */
    uint16_t h16[4] = {0x3c00, 0x3c00, 0x7c00, 0}; /* 1, 1, +Inf (F16) */
    uint16_t b16[4] = {0x3f80, 0x7fc0, 0, 0};       /* 1, NaN (BF16) */
    for (int k = 0; k < 2; k++) {
        CHECK(tg_model_save(m, dir) == TG_OK);
        tg_safetensors st;
        CHECK(tg_safetensors_open(&st, stp) == TG_OK);
        tg_st_entry *e = calloc((size_t)st.n_tensors + 1, sizeof *e);
        for (int i = 0; i < st.n_tensors; i++) {
            e[i].name = st.tensors[i].name;
            e[i].dtype = st.tensors[i].dtype;
            e[i].ndim = st.tensors[i].ndim;
            memcpy(e[i].shape, st.tensors[i].shape, sizeof e[i].shape);
            e[i].data = st.tensors[i].data;
        }
        tg_st_entry *x = &e[st.n_tensors];
        x->name = "half";
        x->dtype = k == 0 ? TG_ST_F16 : TG_ST_BF16;
        x->ndim = 1;
        x->shape[0] = 4;
        x->data = k == 0 ? (const void *)h16 : (const void *)b16;
        char other[320];
        snprintf(other, sizeof other, "%s/other.safetensors", g_dir);
        CHECK(tg_safetensors_write(other, e, st.n_tensors + 1, NULL, NULL, 0) == TG_OK);
        free(e);
        tg_safetensors_close(&st);
        CHECK(rename(other, stp) == 0);
        CHECK(tg_checkpoint_check_weights(dir, &c) == TG_ERR_INPUT);
        CHECK(strstr(tg_error_message(), "'half'") && strstr(tg_error_message(), k == 0 ? "element 2" : "element 1"));
    }
    (void)olen;
    free(orig);
    tg_model_free(m);
}

/* ---------------------------------------------------------------- shards */

static void make_shard(const char *path, uint32_t bpt, uint32_t vocab, uint32_t eot, uint32_t reserved, uint64_t count,
                       const void *ids, size_t id_bytes) {
    uint8_t h[64] = {0};
    wr32(h, TG_SHARD_MAGIC);
    wr32(h + 4, TG_SHARD_VERSION);
    wr32(h + 8, bpt);
    wr32(h + 12, vocab);
    wr32(h + 16, eot);
    wr32(h + 20, reserved);
    wr32(h + 24, (uint32_t)count);
    wr32(h + 28, (uint32_t)(count >> 32));
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(h, 1, 64, f);
    if (id_bytes) fwrite(ids, 1, id_bytes, f);
    fclose(f);
}

static void expect_shard_bad(const char *path, const char *needle) {
    tg_shard s;
    tg_error_clear();
    int rc = tg_shard_open(&s, path);
    CHECK_EQ_INT(rc, TG_ERR_INPUT);
    if (rc == TG_OK) tg_shard_close(&s);
    CHECK(strstr(tg_error_message(), path) != NULL);
    if (!strstr(tg_error_message(), needle)) fprintf(stderr, "message '%s' lacks '%s'\n", tg_error_message(), needle);
    CHECK(strstr(tg_error_message(), needle) != NULL);
}

static void test_shards(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/s.tok", g_dir);
    uint32_t ids4[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint16_t ids2[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    make_shard(path, 4, 100, 0, 0, 8, ids4, sizeof ids4);
    tg_shard s;
    CHECK(tg_shard_open(&s, path) == TG_OK);
    CHECK_EQ_INT(s.vocab_size, 100);
    tg_shard_close(&s);
    /* Vocabulary >= 2^31 was read as a negative int. */
    make_shard(path, 4, 0x80000000u, 0, 0, 8, ids4, sizeof ids4);
    expect_shard_bad(path, "vocabulary");
    make_shard(path, 4, 0xffffffffu, 0, 0, 8, ids4, sizeof ids4);
    expect_shard_bad(path, "vocabulary");
    /* 2 bytes a token cannot hold a vocabulary over 65536. */
    make_shard(path, 2, 70000, 0, 0, 8, ids2, sizeof ids2);
    expect_shard_bad(path, "2 bytes");
    make_shard(path, 2, 100, 0, 7, 8, ids2, sizeof ids2);
    expect_shard_bad(path, "reserved");
    /* Token counts against the file size, including one that overflows
     * count * bytes per token. */
    make_shard(path, 4, 100, 0, 0, 9, ids4, sizeof ids4);
    expect_shard_bad(path, "truncated");
    make_shard(path, 4, 100, 0, 0, UINT64_C(1) << 62, ids4, sizeof ids4);
    expect_shard_bad(path, "truncated");
    /* An id outside the vocabulary: found at open, with token index and
     * byte offset, in both widths, wherever it sits. */
    ids4[6] = 100;
    make_shard(path, 4, 100, 0, 0, 8, ids4, sizeof ids4);
    expect_shard_bad(path, "token 6 (byte offset 88) is id 100");
    ids4[6] = 7;
    ids4[0] = 0xffffffffu; /* negative as int32 */
    make_shard(path, 4, 100, 0, 0, 8, ids4, sizeof ids4);
    expect_shard_bad(path, "token 0 (byte offset 64) is id 4294967295");
    ids2[7] = 9;
    make_shard(path, 2, 9, 0, 0, 8, ids2, sizeof ids2);
    expect_shard_bad(path, "token 7 (byte offset 78) is id 9");
    /* A long shard: the vectorised pass and the offset search agree. */
    size_t n = 100000;
    uint16_t *big = calloc(n, sizeof *big);
    for (size_t i = 0; i < n; i++) big[i] = (uint16_t)(i % 50000);
    make_shard(path, 2, 50000, 0, 0, n, big, n * 2);
    CHECK(tg_shard_open(&s, path) == TG_OK);
    tg_shard_close(&s);
    big[77777] = 50000;
    make_shard(path, 2, 50000, 0, 0, n, big, n * 2);
    expect_shard_bad(path, "token 77777 ");
    free(big);
}

/* ------------------------------------------------------------ checkpoints */

static void flip_byte(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, off, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(ch ^ 0x10, f);
    fclose(f);
}

static void test_checkpoint_trust(void) {
    tg_config c;
    tg_model *m = tiny_model(&c);
    size_t n = tg_model_num_params(m);
    float *m1 = calloc(n, sizeof *m1), *v2 = calloc(n, sizeof *v2);
    for (size_t i = 0; i < n; i++) m1[i] = 0.001f * (float)(i % 97), v2[i] = 1e-6f * (float)(i % 13);
    CHECK(tg_model_optim_from_host(m, m1, v2) == TG_OK);
    tg_checkpoint_extras x = {true, "{\"step\": 1}\n", "{}\n", NULL};
    char run[256], path[400], out[512];
    snprintf(run, sizeof run, "%s/run", g_dir);
    CHECK(tg_mkdirs(run) == TG_OK);
    for (int step = 1; step <= 3; step++) CHECK(tg_checkpoint_save(run, step, m, &x, NULL, 0) == TG_OK);
    snprintf(path, sizeof path, "%s/checkpoint-3/%s", run, TG_CHECKPOINT_SUMS);
    CHECK(tg_path_exists(path));
    char *sums;
    size_t len;
    CHECK(tg_read_file(path, &sums, &len) == TG_OK);
    /* sha256sum(1) format, every file of the checkpoint listed. */
    CHECK(len > 0 && strstr(sums, "  model.safetensors\n") && strstr(sums, "  optimizer.safetensors\n") &&
          strstr(sums, "  config.json\n") && strstr(sums, "  trainer_state.json\n") && sums[64] == ' ');
    free(sums);
    snprintf(path, sizeof path, "%s/checkpoint-3", run);
    int had = 0;
    CHECK(tg_checkpoint_verify_sums(path, &had) == TG_OK && had == 1);
    CHECK(tg_checkpoint_resolve(run, out, sizeof out) == TG_OK && strcmp(out, path) == 0);

    /* A bit flip in the newest's optimizer data: skipped for checkpoint-2. */
    snprintf(path, sizeof path, "%s/checkpoint-3/optimizer.safetensors", run);
    flip_byte(path, 4000);
    snprintf(path, sizeof path, "%s/checkpoint-3", run);
    CHECK(tg_checkpoint_verify_sums(path, NULL) == TG_ERR_INPUT && strstr(tg_error_message(), "optimizer.safetensors") &&
          strstr(tg_error_message(), "SHA-256"));
    snprintf(path, sizeof path, "%s/checkpoint-2", run);
    CHECK(tg_checkpoint_resolve(run, out, sizeof out) == TG_OK && strcmp(out, path) == 0);
    /* checkpoint-2 without sums and without its optimizer file: still
     * caught (trainer_state.json without optimizer.safetensors). */
    snprintf(path, sizeof path, "%s/checkpoint-2/%s", run, TG_CHECKPOINT_SUMS);
    CHECK(unlink(path) == 0);
    snprintf(path, sizeof path, "%s/checkpoint-2/optimizer.safetensors", run);
    CHECK(unlink(path) == 0);
    snprintf(path, sizeof path, "%s/checkpoint-1", run);
    CHECK(tg_checkpoint_resolve(run, out, sizeof out) == TG_OK && strcmp(out, path) == 0);
    /* A truncated model file, no sums: its header check catches it. */
    snprintf(path, sizeof path, "%s/checkpoint-1/%s", run, TG_CHECKPOINT_SUMS);
    CHECK(unlink(path) == 0);
    snprintf(path, sizeof path, "%s/checkpoint-1/model.safetensors", run);
    CHECK(truncate(path, 3000) == 0);
    CHECK(tg_checkpoint_resolve(run, out, sizeof out) == TG_ERR_INPUT && strstr(tg_error_message(), "no usable") &&
          strstr(tg_error_message(), "checkpoint-3"));
    /* Loading a checkpoint named directly checks its sums too. */
    CHECK(tg_checkpoint_save(run, 5, m, &x, NULL, 0) == TG_OK);
    snprintf(path, sizeof path, "%s/checkpoint-5/model.safetensors", run);
    long off = data_offset(path, "transformer.wte.weight");
    flip_byte(path, off + 2); /* a mantissa bit: still a finite float */
    snprintf(path, sizeof path, "%s/checkpoint-5", run);
    tg_model *m2 = NULL;
    CHECK(tg_model_load(&m2, path) == TG_ERR_INPUT && strstr(tg_error_message(), "model.safetensors") &&
          strstr(tg_error_message(), "SHA-256") && m2 == NULL);

    /* Stale temporaries: a dead writer's files go, a checkpoint moved aside
     * with no replacement comes back, a live writer's file stays. */
    snprintf(path, sizeof path, "%s/loss.svg.tmp.1073741000", run); /* above any pid_max */
    write_text_file(path, "<svg");
    char live[400];
    snprintf(live, sizeof live, "%s/metrics.jsonl.tmp.%d", run, (int)getpid());
    write_text_file(live, "{}");
    snprintf(path, sizeof path, "%s/checkpoint-9.tmp", run);
    CHECK(tg_mkdirs(path) == TG_OK);
    snprintf(path, sizeof path, "%s/checkpoint-9.tmp/model.safetensors", run);
    write_text_file(path, "half");
    char from[400], to[400];
    snprintf(from, sizeof from, "%s/checkpoint-5", run);
    snprintf(to, sizeof to, "%s/checkpoint-5.old", run);
    CHECK(rename(from, to) == 0);
    CHECK_EQ_INT(tg_run_remove_stale(run), 2);
    snprintf(path, sizeof path, "%s/loss.svg.tmp.1073741000", run);
    CHECK(!tg_path_exists(path));
    snprintf(path, sizeof path, "%s/checkpoint-9.tmp", run);
    CHECK(!tg_path_exists(path));
    CHECK(tg_path_exists(live));
    CHECK(tg_path_is_dir(from) && !tg_path_exists(to));
    unlink(live);
    CHECK_EQ_INT(tg_run_remove_stale(run), 0);
    CHECK_EQ_INT(tg_run_count_checkpoints(run), 4);
    free(m1);
    free(v2);
    tg_model_free(m);
}

int main(void) {
    CHECK(mkdtemp(g_dir) != NULL);
    tg_log_quiet = 1;
    test_safetensors_wrap();
    test_config_ceilings();
    test_config_vs_weights();
    test_shards();
    test_checkpoint_trust();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_summary("test_hostile_files");
}
