/*
 * gpt2_files.c — GPT-2's own tokenizer files (encoder.json: printable token
 * string -> id; vocab.bpe: "#version" then one merge "A B" a line, in rank
 * order) and the byte <-> printable code point map they are written in
 * (each byte that is not a visible Latin-1 character is moved to 256+k).
 * The Hugging Face hub serves the same two files as vocab.json and
 * merges.txt (byte for byte the same formats); a directory may hold either
 * pair, or a tokenizer.json, which wins (docs/interop.md).
 */
#include <jansson.h>
#include <pthread.h>
#include <string.h>

#include "tokenizer/gpt2_vocab.h"
#include "tokenizer/tok_internal.h"

static uint32_t byte_cp[256];
static int cp_byte[512]; /* code points < 512 -> byte, -1 if none */
static pthread_once_t map_once = PTHREAD_ONCE_INIT;

static void init_map(void) {
    int k = 0;
    for (int b = 0; b < 256; b++) {
        int visible = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        byte_cp[b] = visible ? (uint32_t)b : (uint32_t)(256 + k++);
    }
    for (int c = 0; c < 512; c++) cp_byte[c] = -1;
    for (int b = 0; b < 256; b++) cp_byte[byte_cp[b]] = b;
}

/* threads may load tokenizers at the same time */
static inline void ensure_map(void) { pthread_once(&map_once, init_map); }

uint32_t tg_byte_to_cp(uint8_t b) {
    ensure_map();
    return byte_cp[b];
}

size_t tg_bytes_to_printable(const char *bytes, size_t len, char *out) {
    ensure_map();
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = byte_cp[(uint8_t)bytes[i]];
        if (cp < 0x80) {
            out[k++] = (char)cp;
        } else { /* all map targets are < 0x800: two UTF-8 bytes */
            out[k++] = (char)(0xC0 | (cp >> 6));
            out[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[k] = 0;
    return k;
}

long tg_printable_to_bytes(const char *s, size_t slen, char *out) {
    ensure_map();
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    long k = 0;
    while (i < slen) {
        uint32_t cp;
        if (p[i] < 0x80) {
            cp = p[i];
            i += 1;
        } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < slen) {
            cp = (uint32_t)(p[i] & 0x1F) << 6 | (p[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1;
        }
        if (cp >= 512 || cp_byte[cp] < 0) return -1;
        out[k++] = (char)cp_byte[cp];
    }
    return k;
}

int tg_tok_load_gpt2(tg_tokenizer **out, const char *encoder_json, const char *vocab_bpe) {
    *out = NULL;
    char *ej = NULL, *vb = NULL;
    size_t ejn, vbn;
    TG_TRY(tg_read_file(encoder_json, &ej, &ejn));
    int rc = tg_read_file(vocab_bpe, &vb, &vbn);
    if (rc != TG_OK) {
        free(ej);
        return rc;
    }
    json_error_t jerr;
    json_t *root = json_loadb(ej, ejn, 0, &jerr);
    tg_tokenizer *t = NULL;
    const char **by_id = NULL;
    char *buf = NULL;
    if (!root || !json_is_object(root)) {
        rc = tg_error_set(TG_ERR_INPUT, "%s: not a JSON object (line %d: %s)", encoder_json, jerr.line, jerr.text);
        goto done;
    }
    size_t n = json_object_size(root);
    by_id = calloc(n ? n : 1, sizeof *by_id);
    buf = malloc(vbn + ejn + 1);
    if (!by_id || !buf || (rc = tg_tok_create(&t)) != TG_OK) {
        if (rc == TG_OK) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || (size_t)id >= n || by_id[id]) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: token \"%s\" has a bad or repeated id", encoder_json, key);
            goto done;
        }
        by_id[id] = key;
    }
    for (size_t id = 0; id < n; id++) {
        const char *s = by_id[id];
        long bl = tg_printable_to_bytes(s, strlen(s), buf);
        if (bl <= 0) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: token %zu \"%s\" is not in GPT-2's byte alphabet", encoder_json, id, s);
            goto done;
        }
        int special = strcmp(s, TG_TOKEN_ENDOFTEXT) == 0 || strcmp(s, TG_TOKEN_IM_START) == 0 ||
                      strcmp(s, TG_TOKEN_IM_END) == 0;
        if ((rc = tg_tok_add(t, buf, (size_t)bl, special, NULL)) != TG_OK) goto done;
    }
    /* vocab.bpe */
    char *line = vb, *end = vb + vbn;
    int lineno = 0;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *le = nl ? nl : end;
        lineno++;
        if (le > line && le[-1] == '\r') le--;
        size_t ll = (size_t)(le - line);
        if (ll > 0 && !(lineno == 1 && line[0] == '#')) {
            char *sp = memchr(line, ' ', ll);
            long a = -1, b = -1;
            if (sp) {
                a = tg_printable_to_bytes(line, (size_t)(sp - line), buf);
                b = a > 0 ? tg_printable_to_bytes(sp + 1, (size_t)(le - sp - 1), buf + a) : -1;
            }
            int32_t l = -1, r = -1, m = -1;
            if (a > 0 && b > 0) {
                l = tg_tok_find(t, buf, (size_t)a);
                r = tg_tok_find(t, buf + a, (size_t)b);
                m = tg_tok_find(t, buf, (size_t)(a + b));
            }
            if (l < 0 || r < 0 || m < 0) {
                rc = tg_error_set(TG_ERR_INPUT, "%s:%d: bad merge \"%.*s\" (tokens missing from %s)", vocab_bpe, lineno,
                                  (int)(ll > 80 ? 80 : ll), line, encoder_json);
                goto done;
            }
            if ((rc = tg_tok_add_merge(t, l, r, m)) != TG_OK) goto done;
        }
        line = nl ? nl + 1 : end;
    }
    if ((rc = tg_tok_finish(t, encoder_json)) != TG_OK) goto done;
    /* hash of both files, in this order */
    memcpy(buf, ej, ejn);
    memcpy(buf + ejn, vb, vbn);
    tg_sha256(buf, ejn + vbn, t->sha256);
done:
    if (rc != TG_OK) {
        tg_tokenizer_free(t);
        t = NULL;
    }
    json_decref(root);
    free(by_id);
    free(buf);
    free(ej);
    free(vb);
    *out = t;
    return rc;
}

int tg_tok_load_dir(tg_tokenizer **out, const char *dir) {
    *out = NULL;
    /* In order of preference; the first pair present is read. */
    static const char *const pairs[][2] = {{"vocab.json", "merges.txt"}, {"encoder.json", "vocab.bpe"}};
    char *tj = tg_path_join(dir, "tokenizer.json");
    if (!tj) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    if (tg_path_exists(tj)) {
        int rc = tg_tok_load_json(out, tj);
        free(tj);
        return rc;
    }
    free(tj);
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char *a = tg_path_join(dir, pairs[i][0]), *b = tg_path_join(dir, pairs[i][1]);
        int both = a && b && tg_path_exists(a) && tg_path_exists(b);
        int one = a && b && (tg_path_exists(a) || tg_path_exists(b));
        int rc = TG_OK;
        if (both) rc = tg_tok_load_gpt2(out, a, b);
        else if (one)
            rc = tg_error_set(TG_ERR_INPUT, "%s: has %s but not %s (both are needed)", dir,
                              tg_path_exists(a) ? pairs[i][0] : pairs[i][1], tg_path_exists(a) ? pairs[i][1] : pairs[i][0]);
        free(a);
        free(b);
        if (both || one) return rc;
    }
    return tg_error_set(TG_ERR_INPUT,
                        "%s: no tokenizer.json (nor vocab.json + merges.txt, nor encoder.json + vocab.bpe) in this "
                        "directory",
                        dir);
}

/* ------------------------------------------------ the vocabulary as strings */

void tg_gpt2_vocab_free(tg_gpt2_vocab *v) {
    for (int i = 0; v->tokens && i < v->n; i++) free(v->tokens[i]);
    for (int i = 0; v->merges && i < v->n_merges; i++) free(v->merges[i]);
    free(v->tokens);
    free(v->merges);
    free(v->special);
    memset(v, 0, sizeof *v);
}

/* Printable form of token id (2 bytes per byte at most), malloc'd. */
static char *printable(const tg_tokenizer *t, int32_t id) {
    char *s = malloc(2 * (size_t)t->len[id] + 1);
    if (s) tg_bytes_to_printable(t->arena + t->off[id], t->len[id], s);
    return s;
}

int tg_gpt2_vocab_init(tg_gpt2_vocab *v, const tg_tokenizer *t) {
    memset(v, 0, sizeof *v);
    v->n = t->n;
    v->n_merges = t->n_merges;
    v->tokens = calloc((size_t)t->n + 1, sizeof *v->tokens);
    v->special = calloc((size_t)t->n + 1, 1);
    v->merges = calloc((size_t)t->n_merges + 1, sizeof *v->merges);
    int ok = v->tokens && v->special && v->merges;
    for (int i = 0; ok && i < t->n; i++) {
        v->special[i] = t->special[i];
        if (t->special[i]) {
            v->tokens[i] = malloc(t->len[i] + 1);
            if (v->tokens[i]) {
                memcpy(v->tokens[i], t->arena + t->off[i], t->len[i]);
                v->tokens[i][t->len[i]] = 0;
            }
        } else {
            v->tokens[i] = printable(t, i);
        }
        ok = v->tokens[i] != NULL;
    }
    for (int k = 0; ok && k < t->n_merges; k++) {
        char *a = printable(t, t->merge_left[k]), *b = printable(t, t->merge_right[k]);
        size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
        v->merges[k] = a && b ? malloc(la + lb + 2) : NULL;
        if (v->merges[k]) {
            memcpy(v->merges[k], a, la);
            v->merges[k][la] = ' ';
            memcpy(v->merges[k] + la + 1, b, lb + 1);
        }
        free(a);
        free(b);
        ok = v->merges[k] != NULL;
    }
    if (!ok) {
        tg_gpt2_vocab_free(v);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory listing the vocabulary");
    }
    return TG_OK;
}
