/*
 * tokenizer_json.c — the Hugging Face tokenizer.json format for byte-level
 * BPE (docs/architecture.md "File formats"): model.vocab (printable token ->
 * id), model.merges ("A B" strings or ["A", "B"] pairs, in rank order),
 * added_tokens (special tokens, raw text), a ByteLevel pre-tokenizer and
 * decoder with add_prefix_space false. Read with jansson; written atomically.
 */
#include <jansson.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* Rejects settings that would make Hugging Face's encoding differ from ours. */
static int check_pipeline(json_t *root, const char *path) {
    json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm))
        return tg_error_set(TG_ERR_INPUT, "%s: a normalizer is not supported (byte-level BPE has none)", path);
    json_t *pre = json_object_get(root, "pre_tokenizer");
    if (pre && !json_is_null(pre)) {
        const char *type = json_string_value(json_object_get(pre, "type"));
        if (!type || strcmp(type, "ByteLevel") != 0)
            return tg_error_set(TG_ERR_INPUT, "%s: pre_tokenizer \"%s\" is not supported (only ByteLevel)", path,
                                type ? type : "?");
        if (json_is_true(json_object_get(pre, "add_prefix_space")))
            return tg_error_set(TG_ERR_INPUT, "%s: ByteLevel add_prefix_space true is not supported", path);
        if (json_is_false(json_object_get(pre, "use_regex")))
            return tg_error_set(TG_ERR_INPUT, "%s: ByteLevel use_regex false is not supported", path);
    }
    json_t *model = json_object_get(root, "model");
    if (json_is_true(json_object_get(model, "ignore_merges")))
        return tg_error_set(TG_ERR_INPUT, "%s: model.ignore_merges true is not supported", path);
    return TG_OK;
}

int tg_tok_load_json(tg_tokenizer **out, const char *path) {
    *out = NULL;
    char *data;
    size_t dlen;
    TG_TRY(tg_read_file(path, &data, &dlen));
    json_error_t jerr;
    json_t *root = json_loadb(data, dlen, 0, &jerr);
    tg_tokenizer *t = NULL;
    const char **by_id = NULL;
    uint8_t *is_added = NULL;
    char *buf = NULL;
    int rc = TG_OK;
    if (!root) {
        rc = tg_error_set(TG_ERR_INPUT, "%s: malformed JSON at line %d column %d: %s", path, jerr.line, jerr.column,
                          jerr.text);
        goto done;
    }
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (!json_is_object(model) || !json_is_object(vocab) || !json_is_array(merges) || (mtype && strcmp(mtype, "BPE"))) {
        rc = tg_error_set(TG_ERR_INPUT, "%s: not a BPE tokenizer.json (needs model.type \"BPE\", model.vocab, model.merges)",
                          path);
        goto done;
    }
    if ((rc = check_pipeline(root, path)) != TG_OK) goto done;
    /* ids must be dense: 0 .. max over vocab and added tokens */
    json_int_t max_id = -1;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) > (1 << 30)) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: model.vocab[\"%s\"] is not a valid id", path, key);
            goto done;
        }
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
    }
    size_t ai;
    json_t *at;
    json_array_foreach(added, ai, at) {
        json_t *idv = json_object_get(at, "id");
        if (!json_is_integer(idv) || json_integer_value(idv) < 0 || json_integer_value(idv) > (1 << 30) ||
            !json_is_string(json_object_get(at, "content"))) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: added_tokens[%zu] needs an integer id and a string content", path, ai);
            goto done;
        }
        if (json_integer_value(idv) > max_id) max_id = json_integer_value(idv);
    }
    size_t n = (size_t)(max_id + 1);
    by_id = calloc(n ? n : 1, sizeof *by_id);
    is_added = calloc(n ? n : 1, 1);
    buf = malloc(dlen + 1);
    if (!by_id || !is_added || !buf || (rc = tg_tok_create(&t)) != TG_OK) {
        if (rc == TG_OK) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
        goto done;
    }
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (by_id[id]) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: id %lld appears twice in model.vocab", path, (long long)id);
            goto done;
        }
        by_id[id] = key;
    }
    json_array_foreach(added, ai, at) {
        json_int_t id = json_integer_value(json_object_get(at, "id"));
        /* an added token may also be in the vocabulary (GPT-2's <|endoftext|>) */
        if (!by_id[id]) by_id[id] = json_string_value(json_object_get(at, "content"));
        is_added[id] = 1;
    }
    for (size_t id = 0; id < n; id++) {
        const char *s = by_id[id];
        if (!s) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: id %zu is missing (ids must run from 0 to %zu)", path, id, n - 1);
            goto done;
        }
        long bl;
        if (is_added[id]) {
            /* added tokens are raw text; when also in the vocabulary the
             * content is what the text must contain */
            const char *content = NULL;
            json_array_foreach(added, ai, at) if (json_integer_value(json_object_get(at, "id")) == (json_int_t)id)
                content = json_string_value(json_object_get(at, "content"));
            bl = (long)strlen(content);
            memcpy(buf, content, (size_t)bl);
        } else {
            bl = tg_printable_to_bytes(s, strlen(s), buf);
        }
        if (bl <= 0) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: token %zu \"%s\" is not in the byte-level alphabet", path, id, s);
            goto done;
        }
        if ((rc = tg_tok_add(t, buf, (size_t)bl, is_added[id], NULL)) != TG_OK) goto done;
    }
    size_t mi;
    json_t *m;
    json_array_foreach(merges, mi, m) {
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            const char *sp = strchr(s, ' ');
            if (sp) {
                a = s;
                al = (size_t)(sp - s);
                b = sp + 1;
                bl = strlen(b);
            }
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            al = strlen(a);
            bl = strlen(b);
        }
        long x = a ? tg_printable_to_bytes(a, al, buf) : -1;
        long y = x > 0 ? tg_printable_to_bytes(b, bl, buf + x) : -1;
        int32_t l = -1, r = -1, mg = -1;
        if (x > 0 && y > 0) {
            l = tg_tok_find(t, buf, (size_t)x);
            r = tg_tok_find(t, buf + x, (size_t)y);
            mg = tg_tok_find(t, buf, (size_t)(x + y));
        }
        if (l < 0 || r < 0 || mg < 0) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: model.merges[%zu] is malformed or names tokens not in model.vocab", path,
                              mi);
            goto done;
        }
        if ((rc = tg_tok_add_merge(t, l, r, mg)) != TG_OK) goto done;
    }
    if ((rc = tg_tok_finish(t, path)) != TG_OK) goto done;
    tg_sha256(data, dlen, t->sha256);
done:
    if (rc != TG_OK) {
        tg_tokenizer_free(t);
        t = NULL;
    }
    json_decref(root);
    free(by_id);
    free(is_added);
    free(buf);
    free(data);
    *out = t;
    return rc;
}

static json_t *byte_level(int prefix, int trim) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", prefix, "trim_offsets", trim,
                     "use_regex", 1);
}

int tg_tokenizer_save(const tg_tokenizer *t, const char *path) {
    json_t *root = json_object(), *added = json_array(), *vocab = json_object(), *merges = json_array();
    char *buf = malloc(2 * 65536 + 2), *mbuf = NULL;
    int rc = TG_OK;
    size_t maxlen = 0;
    for (int i = 0; i < t->n; i++)
        if (t->len[i] > maxlen) maxlen = t->len[i];
    mbuf = malloc(4 * maxlen + 4);
    if (!root || !added || !vocab || !merges || !buf || !mbuf) {
        rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
        goto done;
    }
    free(buf);
    buf = malloc(2 * maxlen + 2);
    if (!buf) {
        rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
        goto done;
    }
    for (int i = 0; i < t->n; i++) {
        const char *tb = t->arena + t->off[i];
        if (t->special[i]) {
            json_t *a = json_pack("{s:i, s:s%, s:b, s:b, s:b, s:b, s:b}", "id", i, "content", tb, (size_t)t->len[i],
                                  "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1);
            if (!a || json_array_append_new(added, a)) {
                rc = tg_error_set(TG_ERR_INPUT, "%s: special token %d is not valid UTF-8", path, i);
                goto done;
            }
        }
        tg_bytes_to_printable(tb, t->len[i], buf);
        if (json_object_set_new(vocab, buf, json_integer(i))) {
            rc = tg_error_set(TG_ERR_RUNTIME, "%s: cannot store token %d", path, i);
            goto done;
        }
    }
    for (int k = 0; k < t->n_merges; k++) {
        int32_t l = t->merge_left[k], r = t->merge_right[k];
        size_t a = tg_bytes_to_printable(t->arena + t->off[l], t->len[l], mbuf);
        mbuf[a++] = ' ';
        tg_bytes_to_printable(t->arena + t->off[r], t->len[r], mbuf + a);
        json_array_append_new(merges, json_string(mbuf));
    }
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());
    json_object_set(root, "added_tokens", added);
    json_object_set_new(root, "normalizer", json_null());
    json_object_set_new(root, "pre_tokenizer", byte_level(0, 1));
    json_object_set_new(root, "post_processor", byte_level(1, 0));
    json_object_set_new(root, "decoder", byte_level(1, 1));
    json_t *model = json_pack("{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:b}", "type", "BPE", "dropout", "unk_token",
                              "continuing_subword_prefix", "", "end_of_word_suffix", "", "fuse_unk", 0,
                              "byte_fallback", 0, "ignore_merges", 0);
    json_object_set(model, "vocab", vocab);
    json_object_set(model, "merges", merges);
    json_object_set_new(root, "model", model);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (!text) {
        rc = tg_error_set(TG_ERR_RUNTIME, "%s: cannot serialise the tokenizer", path);
        goto done;
    }
    rc = tg_write_file_atomic(path, text, strlen(text));
    free(text);
done:
    json_decref(root);
    json_decref(added);
    json_decref(vocab);
    json_decref(merges);
    free(buf);
    free(mbuf);
    return rc;
}
