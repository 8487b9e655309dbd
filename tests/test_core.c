/*
 * test_core.c — core helpers and token shards: atomic writes, shard round
 * trip through the writer and the mmap reader, the token stream's wrap-around,
 * and every malformed-shard error (truncated, wrong magic, bad version).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "test_util.h"

static void write_shard(const char *path, const int32_t *ids, size_t n, int vocab) {
    tg_shard_writer *w;
    uint8_t sha[32] = {1, 2, 3};
    CHECK(tg_shard_writer_open(&w, path, vocab, 299, sha) == TG_OK);
    CHECK(tg_shard_writer_append(w, ids, n) == TG_OK);
    CHECK(tg_shard_writer_close(w) == TG_OK);
}

int main(void) {
    char dir[] = "/tmp/tg_test_core_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], path2[256];

    /* atomic write and read back */
    snprintf(path, sizeof path, "%s/a/b/c.txt", dir);
    char parent[256];
    snprintf(parent, sizeof parent, "%s/a/b", dir);
    CHECK(tg_mkdirs(parent) == TG_OK);
    CHECK(tg_write_file_atomic(path, "hello", 5) == TG_OK);
    char *data;
    size_t len;
    CHECK(tg_read_file(path, &data, &len) == TG_OK);
    CHECK(len == 5 && memcmp(data, "hello", 5) == 0);
    free(data);
    CHECK(tg_read_file("/nonexistent/file", &data, &len) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "/nonexistent/file") != NULL);

    /* 2-byte shard round trip */
    int32_t ids[1000];
    for (int i = 0; i < 1000; i++) ids[i] = (i * 37) % 300;
    snprintf(path, sizeof path, "%s/train-000000.tok", dir);
    write_shard(path, ids, 1000, 300);
    tg_shard s;
    CHECK(tg_shard_open(&s, path) == TG_OK);
    CHECK(s.n_tokens == 1000 && s.bytes_per_token == 2 && s.vocab_size == 300 && s.eot_id == 299);
    CHECK(s.tokenizer_sha256[1] == 2);
    for (int i = 0; i < 1000; i++) CHECK_EQ_INT(tg_shard_get(&s, i), ids[i]);
    tg_shard_close(&s);

    /* 4-byte shard (vocabulary above 65536), second file of the stream */
    int32_t big[10];
    for (int i = 0; i < 10; i++) big[i] = 70000 + i;
    snprintf(path2, sizeof path2, "%s/train-000001.tok", dir);
    write_shard(path2, big, 10, 80000);
    CHECK(tg_shard_open(&s, path2) == TG_OK);
    CHECK(s.bytes_per_token == 4 && tg_shard_get(&s, 9) == 70009);
    tg_shard_close(&s);

    /* out-of-vocabulary id is rejected */
    tg_shard_writer *w;
    snprintf(path2, sizeof path2, "%s/bad.tok", dir);
    CHECK(tg_shard_writer_open(&w, path2, 10, 9, NULL) == TG_OK);
    int32_t oov = 10;
    CHECK(tg_shard_writer_append(w, &oov, 1) == TG_ERR_INPUT);
    tg_shard_writer_abort(w);
    CHECK(!tg_path_exists(path2));

    /* stream over both: name order, wrap-around reads */
    tg_token_stream ts;
    CHECK(tg_token_stream_open(&ts, dir, "train") == TG_OK);
    CHECK(ts.n_shards == 2 && ts.n_tokens == 1010 && ts.vocab_size == 80000);
    int32_t out[20];
    tg_token_stream_read(&ts, 1005, out, 20);
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(out[i], 70005 + i);
    for (int i = 5; i < 20; i++) CHECK_EQ_INT(out[i], ids[i - 5]);
    CHECK_EQ_INT(tg_token_stream_get(&ts, 1000), 70000);
    tg_token_stream_close(&ts);
    snprintf(path2, sizeof path2, "%s/train-000001.tok", dir);
    unlink(path2);

    /* corrupt shards: truncated, wrong magic, wrong version */
    char *raw;
    CHECK(tg_read_file(path, &raw, &len) == TG_OK);
    snprintf(path2, sizeof path2, "%s/trunc.tok", dir);
    CHECK(tg_write_file_atomic(path2, raw, len - 3) == TG_OK);
    CHECK(tg_shard_open(&s, path2) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "trunc.tok") && strstr(tg_error_message(), "truncated"));
    raw[0] ^= 0xff;
    CHECK(tg_write_file_atomic(path2, raw, len) == TG_OK);
    CHECK(tg_shard_open(&s, path2) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "magic") != NULL);
    raw[0] ^= 0xff;
    raw[4] = 99;
    CHECK(tg_write_file_atomic(path2, raw, len) == TG_OK);
    CHECK(tg_shard_open(&s, path2) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "version") != NULL);
    CHECK(tg_write_file_atomic(path2, raw, 10) == TG_OK);
    CHECK(tg_shard_open(&s, path2) == TG_ERR_INPUT);
    free(raw);

    /* sha256 of "abc" (FIPS 180-2 test vector) */
    uint8_t h[32];
    char hex[65];
    tg_sha256("abc", 3, h);
    tg_hex(h, 32, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);

    /* rng reproducibility and normal moments */
    tg_rng r1, r2;
    tg_rng_seed(&r1, 42);
    tg_rng_seed(&r2, 42);
    double sum = 0, sq = 0;
    for (int i = 0; i < 100000; i++) {
        float a = tg_rng_normal(&r1), b = tg_rng_normal(&r2);
        CHECK(a == b);
        sum += a;
        sq += a * a;
    }
    CHECK(fabs(sum / 1e5) < 0.02 && fabs(sq / 1e5 - 1) < 0.02);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    /* Big tables: zeroed, and growing keeps the contents and zeroes the
     * rest, below the mmap threshold, across it and above it. */
    {
        size_t sizes[][2] = {{1000, 5000}, {1 << 20, 3 << 20}, {3 << 20, 9 << 20}};
        for (int c = 0; c < 3; c++) {
            size_t n = sizes[c][0], m = sizes[c][1];
            unsigned char *p = tg_big_zalloc(n);
            CHECK(p != NULL);
            int zero = 1;
            for (size_t i = 0; i < n; i++) zero &= p[i] == 0;
            CHECK(zero);
            for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 7 + 1);
            unsigned char *q = tg_big_grow(p, n, m);
            CHECK(q != NULL);
            int kept = 1, rest = 1;
            for (size_t i = 0; i < n; i++) kept &= q[i] == (unsigned char)(i * 7 + 1);
            for (size_t i = n; i < m; i++) rest &= q[i] == 0;
            CHECK(kept && rest);
            tg_big_free(q, m);
        }
    }
    return test_summary("test_core");
}
