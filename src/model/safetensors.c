/*
 * safetensors.c — the safetensors reader (mmap, validate everything before
 * any pointer arithmetic) and writer (atomic, 8-byte aligned data).
 *
 * The header is parsed with jansson, duplicate keys rejected. Validation
 * follows the format's own rules: each tensor's byte range must equal its
 * element count times its element size, and the ranges, sorted, must tile
 * the data section exactly (no gaps, no overlap, nothing left over), so a
 * file that passes can be read without any further bounds checks.
 * The host is assumed little-endian (x86-64, AArch64), as the files are.
 */
#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

static const char *const dtype_names[] = {"F32", "F16", "BF16", "I32", "I64", "U8"};
static const size_t dtype_sizes[] = {4, 2, 2, 4, 8, 1};
#define N_DTYPES 6

size_t tg_st_dtype_size(tg_st_dtype d) { return dtype_sizes[d]; }
const char *tg_st_dtype_name(tg_st_dtype d) { return dtype_names[d]; }

static int parse_dtype(const char *s, tg_st_dtype *d) {
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(s, dtype_names[i]) == 0) {
            *d = (tg_st_dtype)i;
            return 1;
        }
    return 0;
}

static int cmp_offset(const void *a, const void *b) {
    const tg_st_tensor *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Parses one header entry into t (t->data stays NULL until the whole header
 * is checked). */
static int parse_entry(const char *path, const char *name, json_t *v, tg_st_tensor *t, uint64_t *begin,
                       uint64_t *end) {
    if (!json_is_object(v)) return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': header entry is not an object", path, name);
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"), *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off))
        return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': needs dtype (string), shape and data_offsets (arrays)", path,
                            name);
    if (!parse_dtype(json_string_value(dt), &t->dtype))
        return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': unsupported dtype %s", path, name, json_string_value(dt));
    size_t nd = json_array_size(sh);
    if (nd > TG_ST_MAX_DIMS)
        return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': %zu dimensions (at most %d)", path, name, nd, TG_ST_MAX_DIMS);
    t->ndim = (int)nd;
    /* numel may not overflow: cap the product at 2^62 as we go. */
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(sh, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name, i);
        uint64_t x = (uint64_t)json_integer_value(d);
        if (x != 0 && numel > (UINT64_C(1) << 62) / x)
            return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': shape too large", path, name);
        numel *= x;
        t->shape[i] = (int64_t)x;
    }
    /* numel <= 2^62 alone is not enough: times an element size of 8 it
     * would wrap, and a [2^62] F32 tensor would claim 0 bytes. */
    if (numel > (UINT64_C(1) << 62) / dtype_sizes[t->dtype])
        return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': shape too large (%llu elements of %zu bytes)", path, name,
                            (unsigned long long)numel, dtype_sizes[t->dtype]);
    if (json_array_size(off) != 2 || !json_is_integer(json_array_get(off, 0)) || !json_is_integer(json_array_get(off, 1)) ||
        json_integer_value(json_array_get(off, 0)) < 0 || json_integer_value(json_array_get(off, 1)) < 0)
        return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': data_offsets must be two non-negative integers", path, name);
    *begin = (uint64_t)json_integer_value(json_array_get(off, 0));
    *end = (uint64_t)json_integer_value(json_array_get(off, 1));
    if (*end < *begin)
        return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': data_offsets end %llu before begin %llu", path, name,
                            (unsigned long long)*end, (unsigned long long)*begin);
    if (*end - *begin != numel * dtype_sizes[t->dtype])
        return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': %llu bytes in data_offsets but shape and dtype need %llu", path,
                            name, (unsigned long long)(*end - *begin),
                            (unsigned long long)(numel * dtype_sizes[t->dtype]));
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)(*end - *begin);
    t->name = strdup(name);
    if (!t->name) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    return TG_OK;
}

static int parse_header(tg_safetensors *st, const char *hdr, size_t hlen, const uint8_t *data, uint64_t data_len) {
    const char *path = st->path;
    json_error_t jerr;
    json_t *root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return tg_error_set(TG_ERR_INPUT, "%s: header is not valid JSON: %s (column %d)", path, jerr.text, jerr.column);
    if (!json_is_object(root)) {
        json_decref(root);
        return tg_error_set(TG_ERR_INPUT, "%s: header is not a JSON object", path);
    }
    size_t cap = json_object_size(root);
    st->tensors = calloc(cap ? cap : 1, sizeof *st->tensors);
    if (!st->tensors) {
        json_decref(root);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    int rc = TG_OK;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v)) {
                rc = tg_error_set(TG_ERR_INPUT, "%s: __metadata__ is not an object", path);
                break;
            }
            size_t nm = json_object_size(v);
            st->meta_keys = calloc(nm ? nm : 1, sizeof(char *));
            st->meta_values = calloc(nm ? nm : 1, sizeof(char *));
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv)) {
                    rc = tg_error_set(TG_ERR_INPUT, "%s: __metadata__ value of '%s' is not a string", path, mk);
                    break;
                }
                st->meta_keys[st->n_meta] = strdup(mk);
                st->meta_values[st->n_meta] = strdup(json_string_value(mv));
                st->n_meta++;
            }
            if (rc != TG_OK) break;
            continue;
        }
        uint64_t b = 0, e = 0;
        tg_st_tensor *t = &st->tensors[st->n_tensors];
        rc = parse_entry(path, key, v, t, &b, &e);
        if (rc != TG_OK) break;
        t->offset = b;
        st->n_tensors++;
        (void)e;
    }
    json_decref(root);
    if (rc == TG_OK) {
        /* Sort by begin offset, then check the tiling. */
        qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_offset);
        uint64_t pos = 0;
        for (int i = 0; i < st->n_tensors && rc == TG_OK; i++) {
            tg_st_tensor *t = &st->tensors[i];
            uint64_t b = t->offset;
            if (b != pos)
                rc = tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': data starts at byte %llu, expected %llu (%s)", path,
                                  t->name, (unsigned long long)b, (unsigned long long)pos,
                                  b < pos ? "overlaps the previous tensor" : "gap before it");
            else if (b + t->nbytes > data_len)
                rc = tg_error_set(TG_ERR_INPUT, "%s: tensor '%s': data ends at byte %llu past the end of the file's %llu data bytes (truncated?)",
                                  path, t->name, (unsigned long long)(b + t->nbytes), (unsigned long long)data_len);
            pos = b + t->nbytes;
        }
        if (rc == TG_OK && pos != data_len)
            rc = tg_error_set(TG_ERR_INPUT, "%s: %llu bytes of data after the last tensor", path,
                              (unsigned long long)(data_len - pos));
        /* Only now, with every range inside the mapping, make real pointers. */
        for (int i = 0; rc == TG_OK && i < st->n_tensors; i++) st->tensors[i].data = data + st->tensors[i].offset;
    }
    return rc;
}

int tg_safetensors_open(tg_safetensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return tg_error_set(TG_ERR_INPUT, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return tg_error_set(TG_ERR_INPUT, "%s: %zu bytes, too short for a safetensors file (truncated?)", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return tg_error_set(TG_ERR_RUNTIME, "%s: mmap failed: %s", path, strerror(errno));
    st->path = strdup(path);
    st->map = map;
    st->map_size = size;
    const uint8_t *p = map;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)p[i] << (8 * i);
    int rc = TG_OK;
    if (hlen > TG_ST_MAX_HEADER)
        rc = tg_error_set(TG_ERR_INPUT, "%s: header length %llu is over the %u-byte limit (not a safetensors file?)", path,
                          (unsigned long long)hlen, TG_ST_MAX_HEADER);
    else if (hlen > size - 8)
        rc = tg_error_set(TG_ERR_INPUT, "%s: header length %llu runs past the end of the %zu-byte file (truncated?)", path,
                          (unsigned long long)hlen, size);
    else if (hlen < 2 || p[8] != '{')
        rc = tg_error_set(TG_ERR_INPUT, "%s: header does not start with '{' (not a safetensors file?)", path);
    else
        rc = parse_header(st, (const char *)p + 8, (size_t)hlen, p + 8 + hlen, size - 8 - hlen);
    if (rc != TG_OK) tg_safetensors_close(st);
    return rc;
}

void tg_safetensors_close(tg_safetensors *st) {
    if (st->map) munmap(st->map, st->map_size);
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const tg_st_tensor *tg_safetensors_find(const tg_safetensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *tg_safetensors_meta(const tg_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

static float half_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0) {
        if (m == 0) bits = s;
        else { /* subnormal: normalise */
            e = 113;
            while (!(m & 0x400)) {
                m <<= 1;
                e--;
            }
            bits = s | (e << 23) | ((m & 0x3ff) << 13);
        }
    } else if (e == 31) bits = s | 0x7f800000u | (m << 13);
    else bits = s | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void tg_st_to_f32(const tg_st_tensor *t, float *dst) {
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case TG_ST_F32: memcpy(dst, src, t->nbytes); break;
    case TG_ST_BF16:
        for (int64_t i = 0; i < t->numel; i++) {
            uint32_t bits = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        break;
    case TG_ST_F16:
        for (int64_t i = 0; i < t->numel; i++) dst[i] = half_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    default: TG_ASSERT(!"tg_st_to_f32 on an integer tensor");
    }
}

int tg_safetensors_write(const char *path, const tg_st_entry *entries, int n, const char *const *meta_keys,
                         const char *const *meta_values, int n_meta) {
    json_t *root = json_object();
    uint64_t off = 0;
    if (n_meta > 0) {
        json_t *meta = json_object();
        for (int i = 0; i < n_meta; i++) json_object_set_new(meta, meta_keys[i], json_string(meta_values[i]));
        json_object_set_new(root, "__metadata__", meta);
    }
    uint64_t *sizes = calloc((size_t)n + 1, sizeof *sizes);
    for (int i = 0; i < n; i++) {
        const tg_st_entry *e = &entries[i];
        uint64_t numel = 1;
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) {
            numel *= (uint64_t)e->shape[d];
            json_array_append_new(shape, json_integer(e->shape[d]));
        }
        sizes[i] = numel * dtype_sizes[e->dtype];
        if (json_object_get(root, e->name) || strcmp(e->name, "__metadata__") == 0) {
            json_decref(shape);
            json_decref(root);
            free(sizes);
            return tg_error_set(TG_ERR_RUNTIME, "%s: tensor name '%s' used twice", path, e->name);
        }
        json_t *o = json_object();
        json_object_set_new(o, "dtype", json_string(dtype_names[e->dtype]));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "data_offsets", json_pack("[II]", (json_int_t)off, (json_int_t)(off + sizes[i])));
        json_object_set_new(root, e->name, o);
        off += sizes[i];
    }
    /* JSON_PRESERVE_ORDER keeps the header in the order written. */
    char *hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!hdr) {
        free(sizes);
        return tg_error_set(TG_ERR_RUNTIME, "%s: cannot build the header", path);
    }
    size_t hlen = strlen(hdr), padded = (hlen + 8 + 7) / 8 * 8 - 8;
    tg_atomic_file af;
    int rc = tg_atomic_open(&af, path);
    if (rc != TG_OK) {
        free(hdr);
        free(sizes);
        return rc;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, af.f) == 8 && fwrite(hdr, 1, hlen, af.f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', af.f) != EOF;
    for (int i = 0; ok && i < n; i++) ok = sizes[i] == 0 || fwrite(entries[i].data, 1, sizes[i], af.f) == sizes[i];
    free(hdr);
    free(sizes);
    if (!ok) {
        int e = errno;
        tg_atomic_abort(&af);
        return tg_error_set(TG_ERR_RUNTIME, "%s: write failed: %s", path, strerror(e));
    }
    return tg_atomic_commit(&af);
}
