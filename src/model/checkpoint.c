/*
 * checkpoint.c — checkpoints as Hugging Face GPT-2 directories
 * (docs/architecture.md "File formats"): config.json (GPT2Config),
 * model.safetensors (HF tensor names and shapes, the true vocabulary's rows
 * only), optimizer.safetensors (AdamW moments under "exp_avg.<name>" /
 * "exp_avg_sq.<name>"), trainer_state.json, manifest.json and tokenizer.json.
 *
 * A checkpoint is written into RUN/checkpoint-STEP.tmp and renamed to
 * RUN/checkpoint-STEP only when every file is complete and fsynced, so a
 * directory named checkpoint-STEP is always whole. Loading checks each
 * tensor's presence, dtype and shape against config.json before copying.
 * This file does not decide what goes into trainer_state.json or
 * manifest.json (the trainer does); it only stores them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "model/hf.h"
#include "model/checkpoint_verify.h"
#include "model/safetensors.h"

/* ------------------------------------------------------------ tensor names */

typedef struct {
    char name[96];     /* HF name with the "transformer." prefix */
    int ndim;
    int64_t shape[2];
    float *data;       /* into the parameter-shaped buffer */
} named_tensor;

/* Lists the HF tensors of a GPT-2 model whose parameter-shaped buffer is mem
 * (parameters, or an AdamW moment laid out like them). out must hold
 * 4 + 12*L entries. Returns the count. */
static int list_tensors(const tg_config *cfg, float *mem, named_tensor *out) {
    tg_params p;
    tg_params_point(&p, cfg, mem);
    int64_t C = cfg->n_embd, L = cfg->n_layer;
    int n = 0;
#define ADD(nm, nd, d0, d1, ptr)                                           \
    do {                                                                   \
        snprintf(out[n].name, sizeof out[n].name, "transformer.%s", nm); \
        out[n].ndim = nd;                                                  \
        out[n].shape[0] = d0;                                              \
        out[n].shape[1] = d1;                                              \
        out[n].data = ptr;                                                 \
        n++;                                                               \
    } while (0)
    ADD("wte.weight", 2, cfg->vocab_size, C, p.wte); /* true V rows, padded rows stay zero */
    ADD("wpe.weight", 2, cfg->n_ctx, C, p.wpe);
    for (int64_t l = 0; l < L; l++) {
        char nm[64];
#define LAYER(suffix, nd, d0, d1, ptr)                              \
        snprintf(nm, sizeof nm, "h.%lld.%s", (long long)l, suffix); \
        ADD(nm, nd, d0, d1, ptr)
        LAYER("ln_1.weight", 1, C, 0, p.ln1w + l * C);
        LAYER("ln_1.bias", 1, C, 0, p.ln1b + l * C);
        LAYER("attn.c_attn.weight", 2, C, 3 * C, p.qkvw + l * C * 3 * C);
        LAYER("attn.c_attn.bias", 1, 3 * C, 0, p.qkvb + l * 3 * C);
        LAYER("attn.c_proj.weight", 2, C, C, p.attprojw + l * C * C);
        LAYER("attn.c_proj.bias", 1, C, 0, p.attprojb + l * C);
        LAYER("ln_2.weight", 1, C, 0, p.ln2w + l * C);
        LAYER("ln_2.bias", 1, C, 0, p.ln2b + l * C);
        LAYER("mlp.c_fc.weight", 2, C, 4 * C, p.fcw + l * C * 4 * C);
        LAYER("mlp.c_fc.bias", 1, 4 * C, 0, p.fcb + l * 4 * C);
        LAYER("mlp.c_proj.weight", 2, 4 * C, C, p.fcprojw + l * 4 * C * C);
        LAYER("mlp.c_proj.bias", 1, C, 0, p.fcprojb + l * C);
#undef LAYER
    }
    ADD("ln_f.weight", 1, C, 0, p.lnfw);
    ADD("ln_f.bias", 1, C, 0, p.lnfb);
#undef ADD
    return n;
}

static named_tensor *alloc_list(const tg_config *cfg, float *mem, int *n) {
    named_tensor *t = calloc((size_t)(4 + 12 * cfg->n_layer), sizeof *t);
    if (!t) {
        tg_error_set(TG_ERR_RUNTIME, "out of memory");
        return NULL;
    }
    *n = list_tensors(cfg, mem, t);
    return t;
}

/* Writes the tensors with an optional name prefix ("exp_avg."). */
static int write_tensors(const char *path, const named_tensor *t, int n, const char *prefix) {
    tg_st_entry *e = calloc((size_t)n, sizeof *e);
    char (*names)[128] = calloc((size_t)n, sizeof *names);
    if (!e || !names) {
        free(e);
        free(names);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%s%s", prefix, t[i].name);
        e[i].name = names[i];
        e[i].dtype = TG_ST_F32;
        e[i].ndim = t[i].ndim;
        e[i].shape[0] = t[i].shape[0];
        e[i].shape[1] = t[i].shape[1];
        e[i].data = t[i].data;
    }
    const char *mk[1] = {"format"}, *mv[1] = {"pt"};
    int rc = tg_safetensors_write(path, e, n, mk, mv, 1);
    free(e);
    free(names);
    return rc;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Reads every expected tensor (prefix + name, or for prefix "" also the name
 * without "transformer.", as HF's own gpt2 files store it) into t[i].data. */
static int read_tensors(const char *path, named_tensor *t, int n, const char *prefix, int float_only_f32) {
    tg_safetensors st;
    TG_TRY(tg_safetensors_open(&st, path));
    int rc = TG_OK;
    for (int i = 0; i < n && rc == TG_OK; i++) {
        char nm[160];
        snprintf(nm, sizeof nm, "%s%s", prefix, t[i].name);
        const tg_st_tensor *s = tg_safetensors_find(&st, nm);
        if (!s && !*prefix) s = tg_safetensors_find(&st, t[i].name + strlen("transformer."));
        if (!s) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: tensor '%s' is missing", path, nm);
            break;
        }
        int float_ok = s->dtype == TG_ST_F32 || (!float_only_f32 && (s->dtype == TG_ST_F16 || s->dtype == TG_ST_BF16));
        if (!float_ok) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: tensor '%s' has dtype %s, expected F32%s", path, nm,
                              tg_st_dtype_name(s->dtype), float_only_f32 ? "" : " (or F16/BF16)");
            break;
        }
        int same = s->ndim == t[i].ndim;
        for (int d = 0; same && d < s->ndim; d++) same = s->shape[d] == t[i].shape[d];
        if (!same) {
            char got[128], want[64];
            shape_str(got, sizeof got, s->ndim, s->shape);
            shape_str(want, sizeof want, t[i].ndim, t[i].shape);
            rc = tg_error_set(TG_ERR_INPUT, "%s: tensor '%s' has shape %s, config.json says %s", path, nm, got, want);
            break;
        }
        tg_st_to_f32(s, t[i].data);
    }
    tg_safetensors_close(&st);
    return rc;
}

/* ----------------------------------------------------------------- config */

static int json_int_field(json_t *root, const char *path, const char *key, const char *alt, int required, int *out) {
    json_t *v = json_object_get(root, key);
    if (!v && alt) v = json_object_get(root, alt);
    if (!v || json_is_null(v)) {
        if (required) return tg_error_set(TG_ERR_INPUT, "%s: field '%s' is missing", path, key);
        return TG_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return tg_error_set(TG_ERR_INPUT, "%s: field '%s' is not a non-negative integer", path, key);
    *out = (int)json_integer_value(v);
    return TG_OK;
}

int tg_checkpoint_read_config(const char *dir, tg_config *cfg) {
    char *path = tg_path_join(dir, "config.json");
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    int rc = TG_OK;
    if (!root) {
        rc = tg_error_set(TG_ERR_INPUT, "%s: %s", path,
                          tg_path_exists(path) ? jerr.text : "missing (not a checkpoint directory?)");
        free(path);
        return rc;
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->ln_eps = 1e-5f;
    cfg->eos_id = -1;
    json_t *mt = json_object_get(root, "model_type");
    if (!json_is_object(root)) rc = tg_error_set(TG_ERR_INPUT, "%s: not a JSON object", path);
    else if (mt && (!json_is_string(mt) || strcmp(json_string_value(mt), "gpt2") != 0))
        rc = tg_error_set(TG_ERR_INPUT, "%s: model_type is not \"gpt2\" (only GPT-2 models are supported)", path);
    if (rc == TG_OK) rc = json_int_field(root, path, "n_layer", NULL, 1, &cfg->n_layer);
    if (rc == TG_OK) rc = json_int_field(root, path, "n_head", NULL, 1, &cfg->n_head);
    if (rc == TG_OK) rc = json_int_field(root, path, "n_embd", NULL, 1, &cfg->n_embd);
    if (rc == TG_OK) rc = json_int_field(root, path, "n_positions", "n_ctx", 1, &cfg->n_ctx);
    if (rc == TG_OK) rc = json_int_field(root, path, "vocab_size", NULL, 1, &cfg->vocab_size);
    if (rc == TG_OK) rc = json_int_field(root, path, "eos_token_id", NULL, 0, &cfg->eos_id);
    if (rc == TG_OK) {
        json_t *eps = json_object_get(root, "layer_norm_epsilon");
        if (eps && !json_is_number(eps)) rc = tg_error_set(TG_ERR_INPUT, "%s: layer_norm_epsilon is not a number", path);
        else if (eps) cfg->ln_eps = (float)json_number_value(eps);
    }
    if (rc == TG_OK) rc = tg_hf_config_check(root, path, cfg); /* the GPT2Config fields we cannot honour */
    json_decref(root);
    if (rc == TG_OK && cfg->eos_id < 0) cfg->eos_id = cfg->vocab_size - 1;
    if (rc == TG_OK && tg_config_validate(cfg) != TG_OK) {
        char why[512]; /* copied: tg_error_set may not read its own buffer */
        snprintf(why, sizeof why, "%s", tg_error_message());
        rc = tg_error_set(TG_ERR_INPUT, "%s: %s", path, why);
    }
    free(path);
    return rc;
}

static int write_config(const tg_config *cfg, const char *dir) {
    json_t *o = json_object();
    json_object_set_new(o, "model_type", json_string("gpt2"));
    json_object_set_new(o, "architectures", json_pack("[s]", "GPT2LMHeadModel"));
    json_object_set_new(o, "activation_function", json_string("gelu_new"));
    json_object_set_new(o, "vocab_size", json_integer(cfg->vocab_size));
    json_object_set_new(o, "n_positions", json_integer(cfg->n_ctx));
    json_object_set_new(o, "n_ctx", json_integer(cfg->n_ctx));
    json_object_set_new(o, "n_embd", json_integer(cfg->n_embd));
    json_object_set_new(o, "n_layer", json_integer(cfg->n_layer));
    json_object_set_new(o, "n_head", json_integer(cfg->n_head));
    json_object_set_new(o, "n_inner", json_null());
    /* The float epsilon printed as its shortest decimal (1e-05, not 9.99999975e-06). */
    char eps[32];
    snprintf(eps, sizeof eps, "%.7g", (double)cfg->ln_eps);
    json_object_set_new(o, "layer_norm_epsilon", json_real(strtod(eps, NULL)));
    json_object_set_new(o, "bos_token_id", json_integer(cfg->eos_id));
    json_object_set_new(o, "eos_token_id", json_integer(cfg->eos_id));
    /* No dropout in truthgpt; HF reads these as the training-time rates. */
    json_object_set_new(o, "resid_pdrop", json_real(0.0));
    json_object_set_new(o, "embd_pdrop", json_real(0.0));
    json_object_set_new(o, "attn_pdrop", json_real(0.0));
    json_object_set_new(o, "initializer_range", json_real(0.02));
    json_object_set_new(o, "scale_attn_weights", json_true());
    json_object_set_new(o, "tie_word_embeddings", json_true());
    json_object_set_new(o, "use_cache", json_true());
    json_object_set_new(o, "torch_dtype", json_string("float32"));
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(o);
    char *path = tg_path_join(dir, "config.json");
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the NUL: written with an explicit length */
    int rc = tg_write_file_atomic(path, text, len + 1);
    free(text);
    free(path);
    return rc;
}

/* ------------------------------------------------------------ resolution */

typedef struct {
    int64_t step;
    char name[256];
} candidate;

static int cmp_step_desc(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    return x->step < y->step ? 1 : x->step > y->step ? -1 : 0;
}

int tg_checkpoint_resolve(const char *path, char *out, size_t n) {
    if (!tg_path_is_dir(path))
        return tg_error_set(TG_ERR_INPUT, "%s: %s", path, tg_path_exists(path) ? "not a directory (expected a checkpoint or run directory)" : "no such directory");
    char *cfg = tg_path_join(path, "config.json");
    int direct = tg_path_exists(cfg);
    free(cfg);
    if (direct) {
        /* A checkpoint named directly is checked when it is loaded
         * (tg_model_load), where each file's own errors come first. */
        if ((size_t)snprintf(out, n, "%s", path) >= n) return tg_error_set(TG_ERR_INPUT, "%s: path too long", path);
        return TG_OK;
    }
    DIR *d = opendir(path);
    if (!d) return tg_error_set(TG_ERR_INPUT, "%s: cannot open directory: %s", path, strerror(errno));
    candidate *c = NULL;
    int nc = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t s = tg_checkpoint_dir_step(e->d_name);
        if (s < 0 || strlen(e->d_name) >= sizeof c->name) continue;
        if (nc == cap) {
            cap = cap ? 2 * cap : 16;
            candidate *nv = realloc(c, (size_t)cap * sizeof *nv);
            if (!nv) break;
            c = nv;
        }
        c[nc].step = s;
        snprintf(c[nc].name, sizeof c[nc].name, "%s", e->d_name);
        nc++;
    }
    closedir(d);
    if (nc > 1) qsort(c, (size_t)nc, sizeof *c, cmp_step_desc);
    /* Newest first; one that fails a check (a kill during a copy, a
     * truncated or bit-flipped file) is skipped with a warning, so --resume
     * and --model RUN take the newest checkpoint that is whole. */
    int found = -1, rejected = 0;
    char why[512] = "";
    for (int i = 0; i < nc && found < 0; i++) {
        char *full = tg_path_join(path, c[i].name);
        if (tg_path_is_dir(full)) {
            if (tg_checkpoint_check_complete(full) == TG_OK) found = i;
            else {
                if (!rejected++) snprintf(why, sizeof why, "%s", tg_error_message());
                tg_warn("skipping %s: %s", full, tg_error_message());
            }
        }
        free(full);
    }
    int rc;
    if (found < 0 && rejected)
        rc = tg_error_set(TG_ERR_INPUT, "%s: no usable checkpoint-STEP directory (the newest: %s)", path, why);
    else if (found < 0)
        rc = tg_error_set(TG_ERR_INPUT, "%s: no config.json and no complete checkpoint-STEP directory in it", path);
    else {
        char *full = tg_path_join(path, c[found].name);
        rc = (size_t)snprintf(out, n, "%s", full) < n ? TG_OK : tg_error_set(TG_ERR_INPUT, "%s: path too long", path);
        free(full);
        tg_error_clear();
    }
    free(c);
    return rc;
}

/* 1 if dir holds both files a and b. */
static int has_pair(const char *dir, const char *a, const char *b) {
    char *pa = tg_path_join(dir, a), *pb = tg_path_join(dir, b);
    int ok = pa && pb && tg_path_exists(pa) && tg_path_exists(pb);
    free(pa);
    free(pb);
    return ok;
}

int tg_checkpoint_tokenizer_path(const char *dir, char *out, size_t n) {
    snprintf(out, n, "%s/tokenizer.json", dir);
    if (tg_path_exists(out)) return 1;
    /* A hub directory may have GPT-2's vocabulary files instead:
     * tg_tokenizer_load takes the directory itself then. */
    if (has_pair(dir, "vocab.json", "merges.txt") || has_pair(dir, "encoder.json", "vocab.bpe")) {
        snprintf(out, n, "%s", dir);
        return 1;
    }
    snprintf(out, n, "%s/tokenizer.json", dir);
    return 0;
}

/* --------------------------------------------------------- model load/save */

/* A zeroed host buffer shaped like m's parameter memory (the model's memory
 * may be a device's: files are read and written through host copies). */
static float *host_params(const tg_model *m, const char *what) {
    size_t bytes = tg_model_num_params(m) * sizeof(float);
    float *p = tg_alloc(bytes, what);
    if (p) memset(p, 0, bytes);
    return p;
}

int tg_model_load_weights(tg_model *m, const char *dir) {
    const tg_config *cfg = tg_model_config(m);
    float *mem = host_params(m, "model parameters (host copy)");
    if (!mem) return TG_ERR_RUNTIME;
    int n;
    TG_TRY(tg_hf_check_weights(dir, cfg)); /* the file exists; nothing in it is ignored silently */
    named_tensor *t = alloc_list(cfg, mem, &n);
    if (!t) {
        tg_free(mem);
        return TG_ERR_RUNTIME;
    }
    char *path = tg_path_join(dir, "model.safetensors");
    int rc = read_tensors(path, t, n, "", 0);
    if (rc == TG_OK) rc = tg_model_params_from_host(m, mem);
    free(path);
    free(t);
    tg_free(mem);
    return rc;
}

int tg_model_load(tg_model **out, const char *path) {
    *out = NULL;
    char dir[4096];
    TG_TRY(tg_checkpoint_resolve(path, dir, sizeof dir));
    tg_config cfg;
    TG_TRY(tg_checkpoint_read_config(dir, &cfg));
    /* Before the parameters are allocated: a config the weights file does
     * not back (n_layer 3000 beside a 4-layer file) fails here, small;
     * a hub directory without the file is told what to do first. */
    TG_TRY(tg_hf_check_weights(dir, &cfg));
    TG_TRY(tg_checkpoint_check_weights(dir, &cfg));
    tg_model *m;
    TG_TRY(tg_model_init(&m, &cfg));
    int rc = tg_model_load_weights(m, dir);
    /* Last, after each file's own checks have had their say: the sums
     * catch what still reads as sound (a bit flip). */
    if (rc == TG_OK) rc = tg_checkpoint_verify_sums_cached(dir);
    if (rc != TG_OK) {
        tg_model_free(m);
        return rc;
    }
    *out = m;
    return TG_OK;
}

int tg_model_save(tg_model *m, const char *dir) {
    const tg_config *cfg = tg_model_config(m);
    TG_TRY(write_config(cfg, dir));
    float *mem = host_params(m, "model parameters (host copy)");
    if (!mem) return TG_ERR_RUNTIME;
    int rc = tg_model_params_to_host(m, mem);
    int n;
    named_tensor *t = rc == TG_OK ? alloc_list(cfg, mem, &n) : NULL;
    if (!t) {
        tg_free(mem);
        return TG_ERR_RUNTIME;
    }
    char *path = tg_path_join(dir, "model.safetensors");
    rc = write_tensors(path, t, n, "");
    free(path);
    free(t);
    tg_free(mem);
    return rc;
}

int tg_checkpoint_load_optimizer(const char *dir, tg_model *m) {
    const tg_config *cfg = tg_model_config(m);
    float *m1 = host_params(m, "AdamW first moments (host copy)");
    float *v2 = host_params(m, "AdamW second moments (host copy)");
    int n;
    named_tensor *t = m1 && v2 ? alloc_list(cfg, m1, &n) : NULL;
    if (!t) {
        tg_free(m1);
        tg_free(v2);
        return TG_ERR_RUNTIME;
    }
    char *path = tg_path_join(dir, "optimizer.safetensors");
    /* The moments must be bit-exact for a bitwise resume: F32 only. */
    int rc = read_tensors(path, t, n, "exp_avg.", 1);
    if (rc == TG_OK) {
        list_tensors(cfg, v2, t);
        rc = read_tensors(path, t, n, "exp_avg_sq.", 1);
    }
    if (rc == TG_OK) rc = tg_model_optim_from_host(m, m1, v2);
    free(path);
    free(t);
    tg_free(m1);
    tg_free(v2);
    return rc;
}

/* ------------------------------------------------------------ checkpoints */

static void fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int write_text(const char *dir, const char *name, const char *text) {
    char *path = tg_path_join(dir, name);
    int rc = tg_write_file_atomic(path, text, strlen(text));
    free(path);
    return rc;
}

static int fill_dir(const char *tmp, tg_model *m, const tg_checkpoint_extras *x) {
    TG_TRY(tg_model_save(m, tmp));
    if (!x) return TG_OK;
    if (x->optimizer) {
        const tg_config *cfg = tg_model_config(m);
        int n;
        named_tensor *t = calloc((size_t)(8 + 24 * cfg->n_layer), sizeof *t);
        float *m1 = host_params(m, "AdamW first moments (host copy)");
        float *v2 = host_params(m, "AdamW second moments (host copy)");
        if (!t || !m1 || !v2) {
            free(t);
            tg_free(m1);
            tg_free(v2);
            return tg_error_set(TG_ERR_RUNTIME, "out of memory");
        }
        tg_model_optim_to_host(m, m1, v2);
        /* Both moments in one file: exp_avg.* then exp_avg_sq.*; the prefix
         * is folded into the names here. */
        n = list_tensors(cfg, m1, t);
        int n2 = list_tensors(cfg, v2, t + n);
        for (int i = 0; i < n; i++) {
            char nm[96];
            snprintf(nm, sizeof nm, "%s", t[i].name);
            snprintf(t[i].name, sizeof t[i].name, "exp_avg.%.80s", nm);
            snprintf(nm, sizeof nm, "%s", t[n + i].name);
            snprintf(t[n + i].name, sizeof t[n + i].name, "exp_avg_sq.%.80s", nm);
        }
        char *path = tg_path_join(tmp, "optimizer.safetensors");
        int rc = write_tensors(path, t, n + n2, "");
        free(path);
        free(t);
        tg_free(m1);
        tg_free(v2);
        TG_TRY(rc);
    }
    if (x->trainer_state_json) TG_TRY(write_text(tmp, "trainer_state.json", x->trainer_state_json));
    if (x->manifest_json) TG_TRY(write_text(tmp, "manifest.json", x->manifest_json));
    if (x->tokenizer_path) {
        char *data;
        size_t len;
        TG_TRY(tg_read_file(x->tokenizer_path, &data, &len));
        char *path = tg_path_join(tmp, "tokenizer.json");
        int rc = tg_write_file_atomic(path, data, len);
        free(path);
        free(data);
        TG_TRY(rc);
    }
    return TG_OK;
}

int tg_checkpoint_save(const char *run_dir, int64_t step, tg_model *m, const tg_checkpoint_extras *x, char *out_dir,
                       size_t n) {
    char name[64];
    snprintf(name, sizeof name, "checkpoint-%lld", (long long)step);
    char *final = tg_path_join(run_dir, name);
    size_t fl = strlen(final) + 32;
    char *tmp = malloc(fl), *old = malloc(fl);
    snprintf(tmp, fl, "%s.tmp", final);
    snprintf(old, fl, "%s.old", final);
    /* A .tmp left by a crash is incomplete by construction: start over. */
    int rc = tg_remove_tree(tmp);
    if (rc == TG_OK) rc = tg_mkdirs(tmp);
    if (rc == TG_OK) rc = fill_dir(tmp, m, x);
    /* The sums go in last, over every file written (about 1 s per GB). */
    if (rc == TG_OK) rc = tg_checkpoint_write_sums(tmp);
    if (rc == TG_OK) {
        fsync_dir(tmp);
        /* Replacing an existing checkpoint-STEP (a resumed run saving the
         * same step again): move it aside first, since rename() cannot
         * replace a non-empty directory. */
        if (tg_path_exists(final)) {
            tg_remove_tree(old);
            if (rename(final, old) != 0)
                rc = tg_error_set(TG_ERR_RUNTIME, "%s: cannot move aside: %s", final, strerror(errno));
        }
        if (rc == TG_OK && rename(tmp, final) != 0)
            rc = tg_error_set(TG_ERR_RUNTIME, "%s: cannot rename into place: %s", final, strerror(errno));
        if (rc == TG_OK) {
            fsync_dir(run_dir);
            tg_remove_tree(old);
        }
    }
    if (rc != TG_OK) tg_remove_tree(tmp);
    if (rc == TG_OK && out_dir) snprintf(out_dir, n, "%s", final);
    free(final);
    free(tmp);
    free(old);
    return rc;
}
