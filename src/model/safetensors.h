/*
 * safetensors.h — reader and writer of the safetensors format (the tensor
 * file of Hugging Face model directories):
 *
 *   u64 little-endian N | N bytes of JSON header | raw tensor data
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the start of the data) and may hold a
 * "__metadata__" object of string values. Only the dtypes truthgpt uses
 * (F32, F16, BF16, I32, I64, U8) are understood; others are an error naming
 * the tensor.
 */
#ifndef TG_SAFETENSORS_H
#define TG_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define TG_ST_MAX_DIMS 8
/* A header larger than this is refused (the reference implementation's limit). */
#define TG_ST_MAX_HEADER (100u << 20)

typedef enum { TG_ST_F32, TG_ST_F16, TG_ST_BF16, TG_ST_I32, TG_ST_I64, TG_ST_U8 } tg_st_dtype;

typedef struct {
    char *name;
    tg_st_dtype dtype;
    int ndim;
    int64_t shape[TG_ST_MAX_DIMS];
    int64_t numel;
    const void *data;  /* into the mapping; nbytes = numel * element size */
    size_t nbytes;
    uint64_t offset;   /* begin of its bytes in the data section */
} tg_st_tensor;

typedef struct {
    char *path;
    void *map;
    size_t map_size;
    tg_st_tensor *tensors;  /* in file order of data offsets */
    int n_tensors;
    char **meta_keys, **meta_values; /* __metadata__ (string values) */
    int n_meta;
} tg_safetensors;

/* Maps and validates path: header length within the file, JSON object,
 * every entry's dtype, shape and offsets consistent (end - begin equals the
 * element count times the element size, offsets in order, contiguous, and
 * covering the data exactly). Errors name the file and the tensor,
 * TG_ERR_INPUT. */
int tg_safetensors_open(tg_safetensors *st, const char *path);
void tg_safetensors_close(tg_safetensors *st);
/* The tensor called name, or NULL. O(n) over the tensors. */
const tg_st_tensor *tg_safetensors_find(const tg_safetensors *st, const char *name);
/* A __metadata__ value, or NULL. */
const char *tg_safetensors_meta(const tg_safetensors *st, const char *key);

size_t tg_st_dtype_size(tg_st_dtype d);
const char *tg_st_dtype_name(tg_st_dtype d);

/* One tensor to write: data holds numel(shape) elements of dtype. */
typedef struct {
    const char *name;
    tg_st_dtype dtype;
    int ndim;
    int64_t shape[TG_ST_MAX_DIMS];
    const void *data;
} tg_st_entry;

/* Writes the entries (in the given order) atomically to path, with optional
 * __metadata__ pairs (n_meta keys and values, may be 0). The header is
 * padded with spaces to a multiple of 8 bytes so the data stays aligned. */
int tg_safetensors_write(const char *path, const tg_st_entry *entries, int n, const char *const *meta_keys,
                         const char *const *meta_values, int n_meta);

/* Copies tensor t into dst as fp32 (converting F16/BF16). */
void tg_st_to_f32(const tg_st_tensor *t, float *dst);

#endif /* TG_SAFETENSORS_H */
