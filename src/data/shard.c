/*
 * shard.c — token shards (docs/architecture.md "File formats"): the file
 * format, an mmap reader, a streaming atomic writer, and a token stream over
 * many shards.
 *
 * Layout (little-endian), 64-byte header then the ids:
 *   u32 magic "TGTK" | u32 version | u32 bytes per token (2|4) | u32 vocab size
 *   u32 end-of-text id | u32 reserved (0) | u64 token count | u8[32] SHA-256 of the tokenizer
 *   ids: token count x bytes per token
 * The file size must equal 64 + count * bytes: a truncated shard is an error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

#define HEADER_BYTES 64

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

/* Checks every id of a shard against its vocabulary, once, at open: after
 * this no reader needs to (a window drawn late, or never, by a shuffled run
 * cannot hold a bad id). The first pass is a max-reduction the compiler
 * vectorises, at memory speed (its cost against a tokenize pass is in
 * bench/README.md, "Shard id check"); only when it finds an id out of range
 * does a second pass look for its offset, for the message. */
static int check_ids(const char *path, const uint8_t *ids, uint64_t count, int bpt, uint32_t vocab) {
    uint32_t max = 0;
    if (bpt == 2) {
        const uint16_t *v = (const uint16_t *)(const void *)ids; /* 64-byte header: aligned */
        uint16_t m = 0;
        for (uint64_t i = 0; i < count; i++) m = v[i] > m ? v[i] : m;
        max = m;
    } else {
        const uint32_t *v = (const uint32_t *)(const void *)ids;
        for (uint64_t i = 0; i < count; i++) max = v[i] > max ? v[i] : max;
    }
    if (count == 0 || max < vocab) return TG_OK;
    for (uint64_t i = 0; i < count; i++) {
        uint32_t id = bpt == 2 ? ((const uint16_t *)(const void *)ids)[i] : ((const uint32_t *)(const void *)ids)[i];
        if (id >= vocab)
            return tg_error_set(TG_ERR_INPUT,
                                "%s: token %llu (byte offset %llu) is id %u, outside the header's vocabulary of %u "
                                "(corrupt shard?)",
                                path, (unsigned long long)i, (unsigned long long)(HEADER_BYTES + i * (uint64_t)bpt), id,
                                vocab);
    }
    return TG_OK;
}

int tg_shard_open(tg_shard *s, const char *path) {
    memset(s, 0, sizeof *s);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return tg_error_set(TG_ERR_INPUT, "%s: cannot open shard: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tg_error_set(TG_ERR_INPUT, "%s: not a regular file", path);
    }
    if (st.st_size < HEADER_BYTES) {
        close(fd);
        return tg_error_set(TG_ERR_INPUT, "%s: truncated shard (%lld bytes, header needs %d)", path,
                            (long long)st.st_size, HEADER_BYTES);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return tg_error_set(TG_ERR_RUNTIME, "%s: mmap failed: %s", path, strerror(errno));
    const uint8_t *h = map;
    int rc = TG_OK;
    uint32_t magic = rd32(h), version = rd32(h + 4), bpt = rd32(h + 8);
    uint64_t count = rd64(h + 24);
    if (magic != TG_SHARD_MAGIC) {
        rc = tg_error_set(TG_ERR_INPUT, "%s: not a token shard (wrong magic 0x%08x)", path, magic);
    } else if (version != TG_SHARD_VERSION) {
        rc = tg_error_set(TG_ERR_INPUT, "%s: shard version %u, this build reads %d", path, version, TG_SHARD_VERSION);
    } else if (bpt != 2 && bpt != 4) {
        rc = tg_error_set(TG_ERR_INPUT, "%s: bad bytes per token %u", path, bpt);
    } else if (count > ((uint64_t)st.st_size - HEADER_BYTES) / bpt ||
               HEADER_BYTES + count * bpt != (uint64_t)st.st_size) {
        rc = tg_error_set(TG_ERR_INPUT, "%s: truncated or corrupt shard: header says %llu tokens (%llu bytes), file has %lld bytes",
                          path, (unsigned long long)count, (unsigned long long)(HEADER_BYTES + count * bpt),
                          (long long)st.st_size);
    } else if (rd32(h + 12) == 0 || rd32(h + 12) > INT32_MAX || rd32(h + 16) >= rd32(h + 12)) {
        rc = tg_error_set(TG_ERR_INPUT, "%s: bad vocabulary size %u or end-of-text id %u (vocabulary must be 1..%d)",
                          path, rd32(h + 12), rd32(h + 16), INT32_MAX);
    } else if (bpt == 2 && rd32(h + 12) > 65536) {
        rc = tg_error_set(TG_ERR_INPUT, "%s: vocabulary of %u does not fit in 2 bytes per token (corrupt header)", path,
                          rd32(h + 12));
    } else if (rd32(h + 20) != 0) {
        rc = tg_error_set(TG_ERR_INPUT, "%s: reserved header field is 0x%08x, not 0 (corrupt header)", path,
                          rd32(h + 20));
    } else {
        rc = check_ids(path, h + HEADER_BYTES, count, (int)bpt, rd32(h + 12));
    }
    if (rc != TG_OK) {
        munmap(map, (size_t)st.st_size);
        return rc;
    }
    s->path = strdup(path);
    s->map = map;
    s->map_size = (size_t)st.st_size;
    s->ids = h + HEADER_BYTES;
    s->n_tokens = (int64_t)count;
    s->bytes_per_token = (int)bpt;
    s->vocab_size = (int)rd32(h + 12);
    s->eot_id = (int)rd32(h + 16);
    memcpy(s->tokenizer_sha256, h + 32, 32);
    return TG_OK;
}

void tg_shard_close(tg_shard *s) {
    if (s->map) munmap(s->map, s->map_size);
    free(s->path);
    memset(s, 0, sizeof *s);
}

struct tg_shard_writer {
    tg_atomic_file af;
    int bpt;
    int vocab_size, eot_id;
    uint8_t sha[32];
    int64_t count;
    uint8_t buf[1 << 16];
    size_t used;
};

int tg_shard_writer_open(tg_shard_writer **out, const char *path, int vocab_size, int eot_id,
                         const uint8_t tokenizer_sha256[32]) {
    *out = NULL;
    if (vocab_size <= 0 || eot_id < 0 || eot_id >= vocab_size)
        return tg_error_set(TG_ERR_INPUT, "%s: bad vocabulary size %d or end-of-text id %d", path, vocab_size, eot_id);
    tg_shard_writer *w = calloc(1, sizeof *w);
    if (!w) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    int rc = tg_atomic_open(&w->af, path);
    if (rc != TG_OK) {
        free(w);
        return rc;
    }
    w->bpt = vocab_size <= 65536 ? 2 : 4;
    w->vocab_size = vocab_size;
    w->eot_id = eot_id;
    if (tokenizer_sha256) memcpy(w->sha, tokenizer_sha256, 32);
    uint8_t zero[HEADER_BYTES] = {0}; /* header written at close */
    if (fwrite(zero, 1, HEADER_BYTES, w->af.f) != HEADER_BYTES) {
        tg_atomic_abort(&w->af);
        free(w);
        return tg_error_set(TG_ERR_RUNTIME, "%s: write failed", path);
    }
    *out = w;
    return TG_OK;
}

static int flush_buf(tg_shard_writer *w) {
    if (w->used && fwrite(w->buf, 1, w->used, w->af.f) != w->used)
        return tg_error_set(TG_ERR_RUNTIME, "%s: write failed: %s", w->af.path, strerror(errno));
    w->used = 0;
    return TG_OK;
}

int tg_shard_writer_append(tg_shard_writer *w, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= w->vocab_size)
            return tg_error_set(TG_ERR_INPUT, "%s: token id %d outside the vocabulary of %d", w->af.path, ids[i], w->vocab_size);
        if (w->used + 4 > sizeof w->buf) TG_TRY(flush_buf(w));
        uint32_t v = (uint32_t)ids[i];
        for (int b = 0; b < w->bpt; b++) w->buf[w->used++] = (uint8_t)(v >> (8 * b));
    }
    w->count += (int64_t)n;
    return TG_OK;
}

int64_t tg_shard_writer_count(const tg_shard_writer *w) { return w->count; }

int tg_shard_writer_close(tg_shard_writer *w) {
    int rc = flush_buf(w);
    uint8_t h[HEADER_BYTES] = {0};
    wr32(h, TG_SHARD_MAGIC);
    wr32(h + 4, TG_SHARD_VERSION);
    wr32(h + 8, (uint32_t)w->bpt);
    wr32(h + 12, (uint32_t)w->vocab_size);
    wr32(h + 16, (uint32_t)w->eot_id);
    wr64(h + 24, (uint64_t)w->count);
    memcpy(h + 32, w->sha, 32);
    if (rc == TG_OK && (fseek(w->af.f, 0, SEEK_SET) != 0 || fwrite(h, 1, HEADER_BYTES, w->af.f) != HEADER_BYTES))
        rc = tg_error_set(TG_ERR_RUNTIME, "%s: write failed", w->af.path);
    if (rc == TG_OK) rc = tg_atomic_commit(&w->af);
    else tg_atomic_abort(&w->af);
    free(w);
    return rc;
}

void tg_shard_writer_abort(tg_shard_writer *w) {
    tg_atomic_abort(&w->af);
    free(w);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Lists DIR's *.tok files starting with prefix (all when prefix is NULL), sorted. */
static int list_shards(const char *dir, const char *prefix, char ***names, int *n) {
    DIR *d = opendir(dir);
    if (!d) return tg_error_set(TG_ERR_INPUT, "%s: cannot open directory: %s", dir, strerror(errno));
    char **v = NULL;
    int cnt = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!has_suffix(e->d_name, ".tok")) continue;
        if (prefix && (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || e->d_name[strlen(prefix)] != '-')) continue;
        if (cnt == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) break;
            v = nv;
        }
        v[cnt++] = tg_path_join(dir, e->d_name);
    }
    closedir(d);
    if (cnt > 1) qsort(v, (size_t)cnt, sizeof *v, cmp_str);
    *names = v;
    *n = cnt;
    return TG_OK;
}

int tg_token_stream_open(tg_token_stream *ts, const char *path, const char *prefix) {
    memset(ts, 0, sizeof *ts);
    char **names = NULL;
    int n = 0;
    if (tg_path_is_dir(path)) {
        TG_TRY(list_shards(path, prefix, &names, &n));
        if (n == 0 && prefix) {
            free(names);
            TG_TRY(list_shards(path, NULL, &names, &n));
        }
        if (n == 0) {
            free(names);
            return tg_error_set(TG_ERR_INPUT, "%s: no %s*.tok shards in this directory", path, prefix ? prefix : "");
        }
    } else {
        names = malloc(sizeof *names);
        names[0] = strdup(path);
        n = 1;
    }
    ts->shards = calloc((size_t)n, sizeof *ts->shards);
    ts->starts = calloc((size_t)n + 1, sizeof *ts->starts);
    int rc = TG_OK;
    for (int i = 0; i < n; i++) {
        if (rc == TG_OK) {
            rc = tg_shard_open(&ts->shards[i], names[i]);
            if (rc == TG_OK) {
                ts->n_shards = i + 1;
                ts->starts[i + 1] = ts->starts[i] + ts->shards[i].n_tokens;
                if (ts->shards[i].vocab_size > ts->vocab_size) ts->vocab_size = ts->shards[i].vocab_size;
                if (i > 0 && ts->shards[i].eot_id != ts->shards[0].eot_id)
                    rc = tg_error_set(TG_ERR_INPUT, "%s: end-of-text id %d differs from %s's %d", names[i],
                                      ts->shards[i].eot_id, ts->shards[0].path, ts->shards[0].eot_id);
            }
        }
        free(names[i]);
    }
    free(names);
    if (rc == TG_OK) {
        ts->n_tokens = ts->starts[ts->n_shards];
        ts->eot_id = ts->shards[0].eot_id;
        if (ts->n_tokens < 2) rc = tg_error_set(TG_ERR_INPUT, "%s: fewer than 2 tokens of data", path);
    }
    if (rc != TG_OK) tg_token_stream_close(ts);
    return rc;
}

void tg_token_stream_close(tg_token_stream *ts) {
    for (int i = 0; i < ts->n_shards; i++) tg_shard_close(&ts->shards[i]);
    free(ts->shards);
    free(ts->starts);
    memset(ts, 0, sizeof *ts);
}

int32_t tg_token_stream_get(const tg_token_stream *ts, int64_t i) {
    i %= ts->n_tokens;
    /* Binary search for the shard holding i: O(log shards). */
    int lo = 0, hi = ts->n_shards - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (ts->starts[mid] <= i) lo = mid;
        else hi = mid - 1;
    }
    return tg_shard_get(&ts->shards[lo], i - ts->starts[lo]);
}

void tg_token_stream_read(const tg_token_stream *ts, int64_t pos, int32_t *out, int64_t n) {
    pos %= ts->n_tokens;
    int64_t k = 0;
    while (k < n) {
        int lo = 0, hi = ts->n_shards - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (ts->starts[mid] <= pos) lo = mid;
            else hi = mid - 1;
        }
        const tg_shard *s = &ts->shards[lo];
        int64_t off = pos - ts->starts[lo];
        int64_t take = s->n_tokens - off;
        if (take > n - k) take = n - k;
        for (int64_t j = 0; j < take; j++) out[k + j] = tg_shard_get(s, off + j);
        k += take;
        pos = (pos + take) % ts->n_tokens;
    }
}
