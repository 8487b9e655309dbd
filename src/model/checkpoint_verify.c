/*
 * checkpoint_verify.c — checking a checkpoint before trusting it: its
 * config against its weights file's header, its weights for NaN/Inf, its
 * files against their SHA-256 sums; and removing what an interrupted write
 * left behind. See checkpoint_verify.h.
 *
 * This file reads and checks; it does not load parameters (checkpoint.c
 * does, after these checks pass).
 */
#include "model/checkpoint_verify.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "model/safetensors.h"

/* ------------------------------------------------- config against header */

/* The tensor prefix + name, or without "transformer." (HF's gpt2 files). */
static const tg_st_tensor *find_either(const tg_safetensors *st, const char *name) {
    char full[128];
    snprintf(full, sizeof full, "transformer.%s", name);
    const tg_st_tensor *t = tg_safetensors_find(st, full);
    return t ? t : tg_safetensors_find(st, name);
}

/* Checks one probe tensor's presence, dtype and shape (d1 0: 1-D). */
static int probe(const tg_safetensors *st, const char *name, int64_t d0, int64_t d1) {
    const tg_st_tensor *t = find_either(st, name);
    int nd = d1 ? 2 : 1;
    char want[64];
    if (nd == 2) snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
    else snprintf(want, sizeof want, "[%lld]", (long long)d0);
    if (!t)
        return tg_error_set(TG_ERR_INPUT, "%s: tensor 'transformer.%s' is missing (config.json says %s)", st->path, name,
                            want);
    if (t->dtype != TG_ST_F32 && t->dtype != TG_ST_F16 && t->dtype != TG_ST_BF16)
        return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s' has dtype %s, expected F32 (or F16/BF16)", st->path, t->name,
                            tg_st_dtype_name(t->dtype));
    if (t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1)) {
        char got[160];
        size_t k = (size_t)snprintf(got, sizeof got, "[");
        for (int d = 0; d < t->ndim && k < sizeof got; d++)
            k += (size_t)snprintf(got + k, sizeof got - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (k < sizeof got) snprintf(got + k, sizeof got - k, "]");
        return tg_error_set(TG_ERR_INPUT, "%s: tensor '%s' has shape %s, config.json says %s", st->path, t->name, got,
                            want);
    }
    return TG_OK;
}

/* Index of the first NaN/Inf element of t, or -1. The first pass only ORs
 * a flag per element (the compiler vectorises it); the index is searched
 * for only when there is one. */
static int64_t first_non_finite(const tg_st_tensor *t) {
    int64_t n = t->numel;
    if (t->dtype == TG_ST_F32) {
        const uint8_t *p = t->data; /* the data may be unaligned: copy out */
        uint32_t bad = 0;
        for (int64_t i = 0; i < n; i++) {
            uint32_t x;
            memcpy(&x, p + 4 * i, 4);
            bad |= (x & 0x7f800000u) == 0x7f800000u;
        }
        if (!bad) return -1;
        for (int64_t i = 0; i < n; i++) {
            uint32_t x;
            memcpy(&x, p + 4 * i, 4);
            if ((x & 0x7f800000u) == 0x7f800000u) return i;
        }
    } else {
        /* F16: exponent bits 0x7c00; BF16: 0x7f80. */
        uint16_t mask = t->dtype == TG_ST_F16 ? 0x7c00 : 0x7f80;
        const uint8_t *p = t->data;
        uint32_t bad = 0;
        for (int64_t i = 0; i < n; i++) {
            uint16_t x;
            memcpy(&x, p + 2 * i, 2);
            bad |= (x & mask) == mask;
        }
        if (!bad) return -1;
        for (int64_t i = 0; i < n; i++) {
            uint16_t x;
            memcpy(&x, p + 2 * i, 2);
            if ((x & mask) == mask) return i;
        }
    }
    return -1;
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int tg_checkpoint_check_weights(const char *dir, const tg_config *cfg) {
    char *path = tg_path_join(dir, "model.safetensors");
    tg_safetensors st;
    int rc = tg_safetensors_open(&st, path);
    free(path);
    if (rc != TG_OK) return rc;
    int64_t C = cfg->n_embd, L = cfg->n_layer;
    char first[64], last[64];
    snprintf(first, sizeof first, "h.0.attn.c_attn.weight");
    snprintf(last, sizeof last, "h.%lld.mlp.c_proj.weight", (long long)(L - 1));
    rc = probe(&st, "wte.weight", cfg->vocab_size, C);
    if (rc == TG_OK) rc = probe(&st, "wpe.weight", cfg->n_ctx, C);
    if (rc == TG_OK) rc = probe(&st, first, C, 3 * C);
    if (rc == TG_OK) rc = probe(&st, last, 4 * C, C);
    if (rc == TG_OK) rc = probe(&st, "ln_f.weight", C, 0);
    for (int i = 0; rc == TG_OK && i < st.n_tensors; i++) {
        const tg_st_tensor *t = &st.tensors[i];
        if (t->dtype != TG_ST_F32 && t->dtype != TG_ST_F16 && t->dtype != TG_ST_BF16) continue;
        /* HF's attention-mask buffers are not parameters and are never read. */
        if (has_suffix(t->name, ".attn.bias") || has_suffix(t->name, ".attn.masked_bias")) continue;
        int64_t at = first_non_finite(t);
        if (at >= 0)
            rc = tg_error_set(TG_ERR_INPUT, "%s: tensor '%s' holds NaN or Inf (element %lld of %lld)", st.path, t->name,
                              (long long)at, (long long)t->numel);
    }
    tg_safetensors_close(&st);
    return rc;
}

/* ------------------------------------------------------------ SHA-256 sums */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int tg_checkpoint_write_sums(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return tg_error_set(TG_ERR_RUNTIME, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0, rc = TG_OK;
    struct dirent *e;
    while ((e = readdir(d)) && rc == TG_OK) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, TG_CHECKPOINT_SUMS) == 0 || strstr(e->d_name, ".tmp.")) continue;
        char *full = tg_path_join(dir, e->d_name);
        struct stat sb;
        int regular = full && stat(full, &sb) == 0 && S_ISREG(sb.st_mode);
        free(full);
        if (!regular) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(names, (size_t)cap * sizeof *nv);
            if (!nv) {
                rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
                break;
            }
            names = nv;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
        else n++;
    }
    closedir(d);
    if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_str);
    size_t cap_text = 1, len = 0;
    for (int i = 0; i < n; i++) cap_text += strlen(names[i]) + 68;
    char *text = rc == TG_OK ? malloc(cap_text) : NULL;
    if (rc == TG_OK && !text) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    for (int i = 0; rc == TG_OK && i < n; i++) {
        char *full = tg_path_join(dir, names[i]);
        uint8_t sha[32];
        char hex[65];
        rc = tg_sha256_file(full, sha);
        free(full);
        if (rc != TG_OK) break;
        tg_hex(sha, 32, hex);
        len += (size_t)snprintf(text + len, cap_text - len, "%s  %s\n", hex, names[i]);
    }
    if (rc == TG_OK) {
        char *path = tg_path_join(dir, TG_CHECKPOINT_SUMS);
        rc = tg_write_file_atomic(path, text, len);
        free(path);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(text);
    return rc;
}

int tg_checkpoint_verify_sums(const char *dir, int *had_sums) {
    if (had_sums) *had_sums = 0;
    char *path = tg_path_join(dir, TG_CHECKPOINT_SUMS);
    if (!tg_path_exists(path)) {
        free(path);
        return TG_OK;
    }
    char *text;
    size_t len;
    int rc = tg_read_file(path, &text, &len);
    if (rc != TG_OK) {
        free(path);
        return rc;
    }
    if (had_sums) *had_sums = 1;
    size_t lineno = 0;
    for (char *line = text; rc == TG_OK && line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        if (!nl) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: line %zu is not terminated (truncated?)", path, lineno + 1);
            break;
        }
        *nl = 0;
        lineno++;
        /* "<64 hex>  <name>": the name is a plain file name, never a path. */
        const char *name = line + 66;
        if (nl - line < 67 || line[64] != ' ' || line[65] != ' ' || strchr(name, '/') || name[0] == '.') {
            rc = tg_error_set(TG_ERR_INPUT, "%s: line %zu is not '<sha256>  <file name>'", path, lineno);
            break;
        }
        char *full = tg_path_join(dir, name);
        uint8_t sha[32];
        char hex[65];
        if (!tg_path_exists(full)) rc = tg_error_set(TG_ERR_INPUT, "%s: listed in %s but missing", full, TG_CHECKPOINT_SUMS);
        else if (tg_sha256_file(full, sha) != TG_OK) rc = TG_ERR_INPUT;
        else {
            tg_hex(sha, 32, hex);
            if (memcmp(hex, line, 64) != 0)
                rc = tg_error_set(TG_ERR_INPUT, "%s: SHA-256 differs from %s (corrupt or changed since it was written)",
                                  full, TG_CHECKPOINT_SUMS);
        }
        free(full);
        line = nl + 1;
    }
    free(text);
    free(path);
    return rc;
}

/* The last directory whose sums passed on this thread, with a signature of
 * its files' state (name, inode, size, modification time of each, combined
 * order-independently): `sample --model RUN` resolves RUN and then loads
 * the checkpoint it names, and hashing it twice would double the cost. A
 * file written since changes its signature and is hashed again. */
static _Thread_local struct {
    char dir[4096];
    uint64_t sig;
    int valid;
} verified;

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t dir_signature(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    uint64_t sig = 0x9e3779b97f4a7c15ull;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *full = tg_path_join(dir, e->d_name);
        struct stat sb;
        if (full && stat(full, &sb) == 0 && S_ISREG(sb.st_mode)) {
            uint64_t h = 1469598103934665603ull;
            for (const char *c = e->d_name; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
            h = mix(h ^ (uint64_t)sb.st_ino);
            h = mix(h ^ (uint64_t)sb.st_size);
            h = mix(h ^ ((uint64_t)sb.st_mtim.tv_sec * 1000000000ull + (uint64_t)sb.st_mtim.tv_nsec));
            sig += h;
        }
        free(full);
    }
    closedir(d);
    return sig;
}

int tg_checkpoint_verify_sums_cached(const char *dir) {
    char *sums = tg_path_join(dir, TG_CHECKPOINT_SUMS);
    int have = sums && tg_path_exists(sums);
    free(sums);
    if (!have) return TG_OK;
    char real[4096];
    if (!realpath(dir, real)) snprintf(real, sizeof real, "%s", dir);
    uint64_t sig = dir_signature(dir);
    if (verified.valid && strcmp(verified.dir, real) == 0 && verified.sig == sig) return TG_OK;
    verified.valid = 0;
    TG_TRY(tg_checkpoint_verify_sums(dir, NULL));
    snprintf(verified.dir, sizeof verified.dir, "%s", real);
    verified.sig = sig;
    verified.valid = 1;
    return TG_OK;
}

int tg_checkpoint_check_complete(const char *dir) {
    static const char *const need[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *p = tg_path_join(dir, need[i]);
        int ok = tg_path_exists(p);
        int rc = ok ? TG_OK : tg_error_set(TG_ERR_INPUT, "%s: missing", p);
        free(p);
        if (!ok) return rc;
    }
    /* A training checkpoint has both of these or neither. */
    char *a = tg_path_join(dir, "trainer_state.json"), *b = tg_path_join(dir, "optimizer.safetensors");
    int ha = tg_path_exists(a), hb = tg_path_exists(b);
    int rc = ha == hb ? TG_OK : tg_error_set(TG_ERR_INPUT, "%s: missing (%s is there)", ha ? b : a, ha ? a : b);
    free(a);
    free(b);
    TG_TRY(rc);
    /* The weights file's own structure (a truncated file fails here even
     * without a sums file): header only, no data read. */
    char *m = tg_path_join(dir, "model.safetensors");
    tg_safetensors st;
    rc = tg_safetensors_open(&st, m);
    free(m);
    if (rc != TG_OK) return rc;
    tg_safetensors_close(&st);
    return tg_checkpoint_verify_sums_cached(dir);
}

int64_t tg_checkpoint_dir_step(const char *name) {
    if (strncmp(name, "checkpoint-", 11) != 0 || !name[11]) return -1;
    int64_t s = 0;
    for (const char *c = name + 11; *c; c++) {
        if (*c < '0' || *c > '9' || s > INT64_MAX / 10 - 10) return -1;
        s = s * 10 + (*c - '0');
    }
    return s;
}

int tg_run_count_checkpoints(const char *run_dir) {
    DIR *d = opendir(run_dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += tg_checkpoint_dir_step(e->d_name) >= 0;
    closedir(d);
    return n;
}

/* ------------------------------------------------------- stale temporaries */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p) == 0 || errno == ENOENT ? 0 : -1;
}

int tg_remove_tree(const char *path) {
    if (!tg_path_exists(path)) return TG_OK;
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return tg_error_set(TG_ERR_RUNTIME, "%s: cannot remove: %s", path, strerror(errno));
    return TG_OK;
}

/* The pid of a "<name>.tmp.<pid>" temporary (src/core/fs.c), or 0. */
static long tmp_file_pid(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t) return 0;
    const char *p = t + 5;
    long pid = 0;
    for (; *p >= '0' && *p <= '9' && pid < 1L << 30; p++) pid = pid * 10 + (*p - '0');
    return *p == 0 ? pid : 0;
}

int tg_run_remove_stale(const char *run_dir) {
    DIR *d = opendir(run_dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        int stale_dir = strncmp(nm, "checkpoint-", 11) == 0 && (has_suffix(nm, ".tmp") || has_suffix(nm, ".old"));
        long pid = tmp_file_pid(nm);
        /* A temporary file of a process still alive is its writer's: left alone. */
        int stale_file = pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
        if (!stale_dir && !stale_file) continue;
        char *full = tg_path_join(run_dir, nm);
        struct stat sb;
        if (full && has_suffix(nm, ".old")) {
            /* checkpoint-N.old is a complete checkpoint moved aside while
             * checkpoint-N was replaced: when the kill came between the two
             * renames, it is the only copy of step N. Put it back. */
            size_t fl = strlen(full);
            char *final = strdup(full);
            if (final) final[fl - 4] = 0;
            if (final && !tg_path_exists(final) && rename(full, final) == 0) {
                tg_warn("%s: restored from %s, left by an interrupted replacement", final, nm);
                free(final);
                free(full);
                continue;
            }
            free(final);
        }
        if (full && lstat(full, &sb) == 0) {
            int ok = S_ISDIR(sb.st_mode) ? stale_dir && tg_remove_tree(full) == TG_OK
                                         : S_ISREG(sb.st_mode) && unlink(full) == 0;
            if (ok) {
                tg_warn("%s: removed, left by an interrupted write", full);
                removed++;
            }
        }
        free(full);
    }
    closedir(d);
    return removed;
}
