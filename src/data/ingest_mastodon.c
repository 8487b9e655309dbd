/*
 * ingest_mastodon.c — Mastodon archives for ingest: outbox.json, an
 * ActivityStreams OrderedCollection. Create activities of Notes are posts
 * (their HTML content becomes plain text: paragraphs and line breaks kept,
 * entities decoded); Announce activities are boosts of other people's posts
 * and are dropped; anything else is counted as not a note. The Note's url
 * (else its id) is the post's URL and its attributedTo the author, as a
 * handle (@name@host).
 */
#include <jansson.h>
#include <string.h>

#include "core/core.h"
#include "data/ingest.h"

/* The actor's handle: "https://host/users/name" -> "@name@host"; an actor
 * of another shape is kept as it is. Returns out. */
static const char *mastodon_handle(const char *actor, char *out, size_t n) {
    const char *p = strstr(actor, "://");
    const char *host = p ? p + 3 : NULL, *users = host ? strstr(host, "/users/") : NULL;
    const char *name = users ? users + 7 : NULL;
    if (name && *name && !strchr(name, '/') && users - host < 200)
        snprintf(out, n, "@%s@%.*s", name, (int)(users - host), host);
    else snprintf(out, n, "%s", actor);
    return out;
}

int tg_ingest_read_mastodon(tg_ingest *g, int source, char *data, size_t len) {
    char *fixed = NULL;
    if (tg_utf8_valid_prefix((const uint8_t *)data, len) < len) {
        int64_t bad = 0;
        fixed = malloc(3 * len + 1);
        if (!fixed) return tg_error_set(TG_ERR_RUNTIME, "out of memory repairing UTF-8");
        len = tg_utf8_sanitize(data, len, fixed, 3 * len, &bad);
        tg_ingest_count_invalid(g, bad);
        data = fixed;
    }
    json_error_t err;
    json_t *root = json_loadb(data, len, 0, &err);
    free(fixed);
    if (!root)
        return tg_ingest_reject(g, TG_DROP_COUNT, source, err.line > 0 ? err.line : 0,
                                "invalid JSON: %s; file skipped", err.text);
    json_t *items = json_object_get(root, "orderedItems");
    if (!json_is_array(items)) {
        json_decref(root);
        return tg_ingest_reject(g, TG_DROP_COUNT, source, 0,
                                "no \"orderedItems\" array (not a Mastodon outbox); file skipped");
    }
    int rc = TG_OK;
    size_t k;
    json_t *act;
    char *buf = NULL;
    size_t buf_cap = 0;
    json_array_foreach(items, k, act) {
        if (rc != TG_OK) break;
        const char *type = json_string_value(json_object_get(act, "type"));
        if (type && !strcmp(type, "Announce")) {
            tg_ingest_drop(g, TG_DROP_boost);
            continue;
        }
        json_t *obj = json_object_get(act, "object");
        const char *otype = json_string_value(json_object_get(obj, "type"));
        if (!type || strcmp(type, "Create") || !otype || strcmp(otype, "Note")) {
            tg_ingest_drop(g, TG_DROP_not_note);
            continue;
        }
        json_t *content = json_object_get(obj, "content");
        if (!json_is_string(content)) {
            rc = tg_ingest_reject(g, TG_DROP_malformed, source, -(int64_t)(k + 1), "Note without content");
            continue;
        }
        size_t cl = json_string_length(content);
        if (cl + 1 > buf_cap) {
            char *nb = realloc(buf, cl + 1);
            if (!nb) {
                rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
                break;
            }
            buf = nb;
            buf_cap = cl + 1;
        }
        size_t n = tg_html_to_text(json_string_value(content), cl, buf);
        const char *id = json_string_value(json_object_get(obj, "id"));
        if (!id) id = json_string_value(json_object_get(act, "id"));
        const char *pub = json_string_value(json_object_get(obj, "published"));
        if (!pub) pub = json_string_value(json_object_get(act, "published"));
        const char *url = json_string_value(json_object_get(obj, "url"));
        if (!url) url = id;
        const char *actor = json_string_value(json_object_get(obj, "attributedTo"));
        if (!actor) actor = json_string_value(json_object_get(act, "actor"));
        char author[256];
        tg_ingest_meta m = {id, pub, actor ? mastodon_handle(actor, author, sizeof author) : NULL, url};
        rc = tg_ingest_add_post(g, TG_ITEM_TEXT, source, -(int64_t)(k + 1), buf, n, &m);
    }
    free(buf);
    json_decref(root);
    return rc;
}
