/*
 * test_safetensors.c — the safetensors reader and writer: a round trip of
 * several dtypes and shapes with metadata, F16/BF16 to F32 conversion, and
 * every malformed-file case the reader must refuse with TG_ERR_INPUT and a
 * message naming the file (and the tensor where there is one).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "model/safetensors.h"
#include "test_util.h"

static char g_dir[] = "/tmp/tg_test_st_XXXXXX";

/* Writes an 8-byte length, the header text, then ndata bytes of 0x5a. */
static void write_raw(const char *path, uint64_t hlen_field, const char *hdr, size_t ndata) {
    FILE *f = fopen(path, "wb");
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hlen_field >> (8 * i));
    fwrite(b, 1, 8, f);
    fwrite(hdr, 1, strlen(hdr), f);
    for (size_t i = 0; i < ndata; i++) fputc(0x5a, f);
    fclose(f);
}

/* Expects the header to be refused, with `needle` in the message. */
static void expect_bad(const char *what, const char *hdr, size_t ndata, const char *needle) {
    char path[256];
    snprintf(path, sizeof path, "%s/bad.safetensors", g_dir);
    write_raw(path, strlen(hdr), hdr, ndata);
    tg_safetensors st;
    tg_error_clear();
    int rc = tg_safetensors_open(&st, path);
    if (rc != TG_ERR_INPUT) fprintf(stderr, "case '%s': rc %d, expected TG_ERR_INPUT\n", what, rc);
    CHECK_EQ_INT(rc, TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), path) != NULL);
    if (needle && !strstr(tg_error_message(), needle))
        fprintf(stderr, "case '%s': message '%s' lacks '%s'\n", what, tg_error_message(), needle);
    if (needle) CHECK(strstr(tg_error_message(), needle) != NULL);
    if (rc == TG_OK) tg_safetensors_close(&st);
}

static void make_dir(const char *path) { CHECK(tg_mkdirs(path) == TG_OK); }

/* Writes a safetensors file holding every tensor of src (a checkpoint's
 * model.safetensors) renamed/converted the way HF's gpt2 files are: no
 * "transformer." prefix, F16 data, plus h.N.attn.bias and lm_head.weight. */
static void write_hf_style(const char *src, const char *dst, int n_layer) {
    tg_safetensors st;
    CHECK(tg_safetensors_open(&st, src) == TG_OK);
    int n = st.n_tensors;
    tg_st_entry *e = calloc((size_t)n + (size_t)n_layer + 1, sizeof *e);
    uint16_t **bufs = calloc((size_t)n, sizeof *bufs);
    float *mask = calloc(64, sizeof(float));
    for (int i = 0; i < n; i++) {
        const tg_st_tensor *t = &st.tensors[i];
        e[i].name = t->name + strlen("transformer.");
        e[i].dtype = TG_ST_F16;
        e[i].ndim = t->ndim;
        memcpy(e[i].shape, t->shape, sizeof t->shape);
        bufs[i] = malloc((size_t)t->numel * 2 + 2);
        /* fp32 -> fp16 by truncation of values that are exact in fp16
         * (the source holds such values, see below). */
        const float *f = t->data;
        for (int64_t j = 0; j < t->numel; j++) {
            float v;
            memcpy(&v, &f[j], 4);
            uint32_t b;
            memcpy(&b, &v, 4);
            uint32_t sign = (b >> 16) & 0x8000u;
            int32_t ex = (int32_t)((b >> 23) & 0xff) - 127 + 15;
            uint16_t h = v == 0 ? (uint16_t)sign : (uint16_t)(sign | (uint32_t)ex << 10 | ((b >> 13) & 0x3ff));
            bufs[i][j] = h;
        }
        e[i].data = bufs[i];
    }
    char names[8][32];
    for (int l = 0; l < n_layer && l < 8; l++) {
        snprintf(names[l], sizeof names[l], "h.%d.attn.bias", l);
        e[n + l] = (tg_st_entry){names[l], TG_ST_F32, 4, {1, 1, 8, 8}, mask};
    }
    const tg_st_tensor *wte = tg_safetensors_find(&st, "transformer.wte.weight");
    e[n + n_layer] = (tg_st_entry){"lm_head.weight", TG_ST_F16, 2, {wte->shape[0], wte->shape[1]}, NULL};
    /* lm_head shares wte's bytes */
    for (int i = 0; i < n; i++)
        if (strcmp(st.tensors[i].name, "transformer.wte.weight") == 0) e[n + n_layer].data = bufs[i];
    CHECK(tg_safetensors_write(dst, e, n + n_layer + 1, NULL, NULL, 0) == TG_OK);
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(e);
    free(mask);
    tg_safetensors_close(&st);
}

static void test_checkpoints(void) {
    tg_config cfg = {.n_layer = 2, .n_head = 2, .n_embd = 16, .n_ctx = 8, .vocab_size = 70, .ln_eps = 1e-5f, .eos_id = 69};
    CHECK(tg_config_validate(&cfg) == TG_OK);
    tg_model *m;
    CHECK(tg_model_init(&m, &cfg) == TG_OK);
    tg_model_init_weights(m, 5);
    size_t n = tg_model_num_params(m);
    float *p = malloc(n * sizeof(float));
    CHECK(p && tg_model_params_to_host(m, p) == TG_OK);
    /* Round every weight to a value exact in fp16 (|x| in [2^-14, 2^15),
     * 10 mantissa bits) so the F16 copy below must load back bit-exactly. */
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &p[i], 4);
        b &= 0xffffe000u;
        memcpy(&p[i], &b, 4);
        if (p[i] != 0 && fabsf(p[i]) < 1e-4f) p[i] = 0;
    }
    CHECK(tg_model_params_from_host(m, p) == TG_OK);
    char run[300], ck[300], path[400], out[400];
    snprintf(run, sizeof run, "%s/run", g_dir);
    make_dir(run);
    float *m1 = calloc(n, sizeof(float)), *v2 = calloc(n, sizeof(float));
    for (size_t i = 0; i < n; i++) m1[i] = (float)i * 0.5f, v2[i] = (float)i * 0.25f;
    /* Padded vocabulary rows (70..127) are not in the files: zero them in
     * the moments as the trainer's would be. */
    for (size_t i = 70 * 16; i < 128 * 16; i++) m1[i] = v2[i] = 0;
    CHECK(tg_model_optim_from_host(m, m1, v2) == TG_OK);
    tg_checkpoint_extras x = {true, "{\"step\": 3}", "{\"manifest\": 1}", NULL};
    CHECK(tg_checkpoint_save(run, 3, m, &x, ck, sizeof ck) == TG_OK);
    CHECK(strstr(ck, "checkpoint-3") != NULL);
    snprintf(path, sizeof path, "%s/model.safetensors", ck);
    tg_safetensors st;
    CHECK(tg_safetensors_open(&st, path) == TG_OK);
    CHECK_EQ_INT(st.n_tensors, 4 + 12 * 2);
    const tg_st_tensor *t = tg_safetensors_find(&st, "transformer.wte.weight");
    CHECK(t && t->shape[0] == 70 && t->shape[1] == 16); /* true V rows, not 128 */
    t = tg_safetensors_find(&st, "transformer.h.1.attn.c_attn.weight");
    CHECK(t && t->shape[0] == 16 && t->shape[1] == 48);
    t = tg_safetensors_find(&st, "transformer.h.0.mlp.c_proj.weight");
    CHECK(t && t->shape[0] == 64 && t->shape[1] == 16);
    tg_safetensors_close(&st);

    /* Load back: bit-exact parameters; moments too. */
    tg_model *m2;
    CHECK(tg_model_load(&m2, run) == TG_OK); /* the run dir resolves to checkpoint-3 */
    size_t n2 = tg_model_num_params(m2);
    float *p2 = malloc(n2 * sizeof(float));
    CHECK(p2 && tg_model_params_to_host(m2, p2) == TG_OK);
    CHECK(n2 == n && memcmp(p, p2, n * sizeof(float)) == 0);
    CHECK(tg_model_config(m2)->vocab_size == 70 && tg_model_config(m2)->eos_id == 69 && tg_model_config(m2)->n_ctx == 8);
    float *r1 = malloc(n * sizeof(float)), *r2 = malloc(n * sizeof(float));
    CHECK(tg_checkpoint_load_optimizer(ck, m2) == TG_OK);
    CHECK(tg_model_optim_to_host(m2, r1, r2) == TG_OK);
    CHECK(memcmp(r1, m1, n * sizeof(float)) == 0 && memcmp(r2, v2, n * sizeof(float)) == 0);
    tg_model_free(m2);

    /* Hugging Face's own layout (F16, no prefix, extras) loads to the same weights. */
    char hf[300];
    snprintf(hf, sizeof hf, "%s/hf", g_dir);
    make_dir(hf);
    snprintf(out, sizeof out, "%s/model.safetensors", hf);
    write_hf_style(path, out, 2);
    char cfgsrc[400], cfgdst[400];
    snprintf(cfgsrc, sizeof cfgsrc, "%s/config.json", ck);
    snprintf(cfgdst, sizeof cfgdst, "%s/config.json", hf);
    char *text;
    size_t len;
    CHECK(tg_read_file(cfgsrc, &text, &len) == TG_OK);
    CHECK(tg_write_file_atomic(cfgdst, text, len) == TG_OK);
    free(text);
    CHECK(tg_model_load(&m2, hf) == TG_OK);
    CHECK(tg_model_params_to_host(m2, p2) == TG_OK);
    int same = 1;
    for (size_t i = 0; i < n && same; i++) same = p[i] == p2[i];
    CHECK(same);
    tg_model_free(m2);

    /* A missing tensor and a mis-shaped one are named. */
    tg_st_entry one = {"transformer.wte.weight", TG_ST_F32, 2, {70, 16}, p};
    CHECK(tg_safetensors_write(out, &one, 1, NULL, NULL, 0) == TG_OK);
    CHECK(tg_model_load(&m2, hf) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "model.safetensors") && strstr(tg_error_message(), "transformer.wpe.weight") &&
          strstr(tg_error_message(), "missing"));
    one.shape[0] = 64, one.shape[1] = 16; /* 64 rows: the right count of bytes is not enough */
    CHECK(tg_safetensors_write(out, &one, 1, NULL, NULL, 0) == TG_OK);
    CHECK(tg_model_load(&m2, hf) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "transformer.wte.weight") && strstr(tg_error_message(), "[64, 16]") &&
          strstr(tg_error_message(), "[70, 16]"));
    one.dtype = TG_ST_I32, one.shape[0] = 70;
    CHECK(tg_safetensors_write(out, &one, 1, NULL, NULL, 0) == TG_OK);
    CHECK(tg_model_load(&m2, hf) == TG_ERR_INPUT && strstr(tg_error_message(), "dtype I32"));

    /* Resolution: newest complete checkpoint; .tmp and incomplete ones are ignored. */
    CHECK(tg_checkpoint_save(run, 12, m, NULL, NULL, 0) == TG_OK);
    snprintf(path, sizeof path, "%s/checkpoint-40.tmp", run);
    make_dir(path); /* a save interrupted by a crash */
    snprintf(path, sizeof path, "%s/checkpoint-30", run);
    make_dir(path); /* no files: incomplete */
    snprintf(path, sizeof path, "%s/checkpoint-7x", run);
    make_dir(path);
    CHECK(tg_checkpoint_resolve(run, out, sizeof out) == TG_OK);
    snprintf(path, sizeof path, "%s/checkpoint-12", run);
    CHECK(strcmp(out, path) == 0);
    CHECK(tg_checkpoint_resolve(g_dir, out, sizeof out) == TG_ERR_INPUT && strstr(tg_error_message(), g_dir));
    /* Saving the same step again replaces it whole. */
    CHECK(tg_checkpoint_save(run, 12, m, &x, NULL, 0) == TG_OK);
    snprintf(path, sizeof path, "%s/checkpoint-12/trainer_state.json", run);
    CHECK(tg_path_exists(path));
    snprintf(path, sizeof path, "%s/checkpoint-12.tmp", run);
    CHECK(!tg_path_exists(path));

    free(r1);
    free(r2);
    free(m1);
    free(v2);
    free(p);
    free(p2);
    tg_model_free(m);
}

int main(void) {
    CHECK(mkdtemp(g_dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/ok.safetensors", g_dir);

    /* Round trip: F32 2-D, I32 1-D, BF16, F16, a scalar, an empty tensor. */
    float a[6] = {1.5f, -2.25f, 3.0f, 1e-20f, -0.0f, 65504.0f};
    int32_t ids[3] = {7, -1, 2147483647};
    uint16_t bf[2] = {0x3fc0, 0xc000};   /* 1.5, -2.0 */
    uint16_t hf[3] = {0x3c00, 0xc200, 0x0001}; /* 1.0, -3.0, smallest subnormal 2^-24 */
    float scalar = 42.0f;
    tg_st_entry e[6] = {
        {"w.weight", TG_ST_F32, 2, {2, 3}, a},  {"ids", TG_ST_I32, 1, {3}, ids}, {"b", TG_ST_BF16, 1, {2}, bf},
        {"h", TG_ST_F16, 1, {3}, hf},          {"s", TG_ST_F32, 0, {0}, &scalar}, {"empty", TG_ST_F32, 2, {0, 4}, NULL},
    };
    const char *mk[2] = {"format", "note"}, *mv[2] = {"pt", "round trip"};
    CHECK(tg_safetensors_write(path, e, 6, mk, mv, 2) == TG_OK);
    tg_safetensors st;
    CHECK(tg_safetensors_open(&st, path) == TG_OK);
    CHECK_EQ_INT(st.n_tensors, 6);
    /* The data section starts 8-byte aligned. */
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)((uint8_t *)st.map)[i] << (8 * i);
    CHECK_EQ_INT(hlen % 8, 0);
    const tg_st_tensor *t = tg_safetensors_find(&st, "w.weight");
    CHECK(t && t->dtype == TG_ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6);
    if (t) CHECK(memcmp(t->data, a, sizeof a) == 0);
    t = tg_safetensors_find(&st, "ids");
    CHECK(t && t->dtype == TG_ST_I32 && t->numel == 3 && memcmp(t->data, ids, sizeof ids) == 0);
    float out[3];
    t = tg_safetensors_find(&st, "b");
    CHECK(t && t->dtype == TG_ST_BF16);
    if (t) {
        tg_st_to_f32(t, out);
        CHECK(out[0] == 1.5f && out[1] == -2.0f);
    }
    t = tg_safetensors_find(&st, "h");
    if (t) {
        tg_st_to_f32(t, out);
        CHECK(out[0] == 1.0f && out[1] == -3.0f && out[2] == ldexpf(1.0f, -24));
    } else CHECK(!"tensor h missing");
    t = tg_safetensors_find(&st, "s");
    float sv = 0;
    if (t) memcpy(&sv, t->data, 4);
    CHECK(t && t->ndim == 0 && t->numel == 1 && sv == 42.0f);
    t = tg_safetensors_find(&st, "empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0 && t->shape[1] == 4);
    CHECK(tg_safetensors_find(&st, "nope") == NULL);
    CHECK(tg_safetensors_meta(&st, "note") && strcmp(tg_safetensors_meta(&st, "note"), "round trip") == 0);
    CHECK(tg_safetensors_meta(&st, "missing") == NULL);
    tg_safetensors_close(&st);

    /* A duplicate name is refused by the writer and nothing is written. */
    char path2[256];
    snprintf(path2, sizeof path2, "%s/dup.safetensors", g_dir);
    tg_st_entry dup[2] = {{"x", TG_ST_F32, 1, {1}, a}, {"x", TG_ST_F32, 1, {1}, a}};
    CHECK(tg_safetensors_write(path2, dup, 2, NULL, NULL, 0) != TG_OK);
    CHECK(!tg_path_exists(path2));

    /* Malformed files. A valid one-tensor header for reference:
     * {"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} + 8 bytes. */
    expect_bad("data one byte short", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 7, "'t'");
    expect_bad("not JSON", "{\"t\":", 0, "not valid JSON");
    expect_bad("not an object", "[1,2]", 0, "'{'");
    expect_bad("empty header", "", 0, NULL);
    expect_bad("duplicate key",
               "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, "JSON");
    expect_bad("entry not object", "{\"t\":3}", 0, "'t'");
    expect_bad("missing dtype", "{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'t'");
    expect_bad("missing offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "'t'");
    expect_bad("unknown dtype", "{\"t\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "F99");
    expect_bad("negative dim", "{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape");
    expect_bad("float dim", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "shape");
    expect_bad("huge shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
               "too large");
    expect_bad("too many dims", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
               "dimensions");
    expect_bad("size mismatch", "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "need 12");
    expect_bad("end before begin", "{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "before");
    expect_bad("three offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "two");
    expect_bad("negative offset", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "non-negative");
    expect_bad("gap", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap");
    expect_bad("overlap",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, "overlaps");
    expect_bad("truncated data", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10, "truncated");
    expect_bad("trailing data", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9, "after the last");
    expect_bad("metadata not object", "{\"__metadata__\":[1]}", 0, "__metadata__");
    expect_bad("metadata value not string", "{\"__metadata__\":{\"k\":1}}", 0, "'k'");

    /* Header length field past the end of the file, and absurdly large. */
    const char *ok_hdr = "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    snprintf(path, sizeof path, "%s/len.safetensors", g_dir);
    write_raw(path, strlen(ok_hdr) + 100, ok_hdr, 4);
    CHECK(tg_safetensors_open(&st, path) == TG_ERR_INPUT && strstr(tg_error_message(), "past the end"));
    write_raw(path, UINT64_C(1) << 40, ok_hdr, 4);
    CHECK(tg_safetensors_open(&st, path) == TG_ERR_INPUT && strstr(tg_error_message(), "limit"));
    write_raw(path, strlen(ok_hdr), ok_hdr, 4); /* and the same file, well formed, opens */
    int orc = tg_safetensors_open(&st, path);
    CHECK_EQ_INT(orc, TG_OK);
    if (orc == TG_OK) tg_safetensors_close(&st);
    /* Shorter than the 8-byte length. */
    FILE *f = fopen(path, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    CHECK(tg_safetensors_open(&st, path) == TG_ERR_INPUT && strstr(tg_error_message(), "too short"));
    CHECK(tg_safetensors_open(&st, "/nonexistent/x.safetensors") == TG_ERR_INPUT);

    test_checkpoints();

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    CHECK(system(cmd) == 0);
    return test_summary("test_safetensors");
}
