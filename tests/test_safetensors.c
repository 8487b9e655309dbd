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

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    CHECK(system(cmd) == 0);
    return test_summary("test_safetensors");
}
