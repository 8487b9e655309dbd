/*
 * ingest_x.c — X/Twitter archive files for ingest: data/tweets.js (older
 * exports: tweet.js; large ones split into tweets-partN.js). Each holds
 *     window.YTD.tweets.part0 = [ {"tweet": {...}}, ... ]
 * The prefix up to '=' is dropped and the array parsed by jansson.
 *
 * Per tweet: the text is full_text (or text); t.co links are replaced by
 * their entities.urls[].expanded_url (or dropped with --drop-links); media
 * links (entities.media) are dropped, the media themselves are not text;
 * then HTML entities (&amp; &lt; &gt;) are decoded. Retweets ("RT @user:")
 * are skipped unless --keep-retweets. id_str is the document id; created_at
 * ("Wed Oct 10 20:19:24 +0000 2018") becomes ISO 8601 UTC. The author is
 * "@" + data/account.js's username and the URL the tweet's x.com page.
 */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "data/ingest.h"

typedef struct {
    const char *from, *to;
    size_t from_len, to_len;
} link_sub;

#define MAX_SUBS 64

static void collect_subs(json_t *arr, int expand, int drop_links, link_sub *subs, int *n) {
    size_t i;
    json_t *u;
    if (!json_is_array(arr)) return;
    json_array_foreach(arr, i, u) {
        if (*n >= MAX_SUBS) return;
        json_t *url = json_object_get(u, "url"), *exp = json_object_get(u, "expanded_url");
        if (!json_is_string(url) || json_string_length(url) == 0) continue;
        link_sub *s = &subs[*n];
        s->from = json_string_value(url);
        s->from_len = json_string_length(url);
        if (expand && !drop_links && json_is_string(exp)) {
            s->to = json_string_value(exp);
            s->to_len = json_string_length(exp);
        } else {
            s->to = "";
            s->to_len = 0;
        }
        (*n)++;
    }
}

/* Is s[0..] a bare t.co link? Returns its length, 0 if not. */
static size_t tco_len(const char *s, size_t n) {
    static const char *prefixes[] = {"https://t.co/", "http://t.co/", NULL};
    for (int p = 0; prefixes[p]; p++) {
        size_t k = strlen(prefixes[p]);
        if (n >= k && memcmp(s, prefixes[p], k) == 0) {
            size_t j = k;
            while (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= '0' && s[j] <= '9')))
                j++;
            return j > k ? j : 0;
        }
    }
    return 0;
}

/* Applies the link substitutions to text into out (capacity: see caller).
 * A removed link takes one neighbouring space with it, so "a <link> b"
 * becomes "a b", not "a  b". */
static size_t apply_links(const char *text, size_t n, const link_sub *subs, int nsubs, int drop_links, char *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        int matched = 0;
        if (text[i] == 'h') {
            for (int k = 0; k < nsubs; k++) {
                if (n - i >= subs[k].from_len && memcmp(text + i, subs[k].from, subs[k].from_len) == 0) {
                    memcpy(out + o, subs[k].to, subs[k].to_len);
                    o += subs[k].to_len;
                    i += subs[k].from_len;
                    if (subs[k].to_len == 0 && o > 0 && out[o - 1] == ' ') o--;
                    matched = 1;
                    break;
                }
            }
            if (!matched && drop_links) {
                size_t k = tco_len(text + i, n - i);
                if (k) {
                    i += k;
                    if (o > 0 && out[o - 1] == ' ') o--;
                    matched = 1;
                }
            }
        }
        if (!matched) out[o++] = text[i++];
    }
    /* A link removed at the very start leaves the following space. */
    size_t s = 0;
    while (s < o && out[s] == ' ') s++;
    if (s) memmove(out, out + s, o - s);
    return o - s;
}

/* "Wed Oct 10 20:19:24 +0000 2018" -> "2018-10-10T20:19:24Z"; other forms are kept as they are. */
static void x_date_iso(const char *in, char *out, size_t n) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(in, "%a %b %d %H:%M:%S %z %Y", &tm);
    if (!end || *end) {
        snprintf(out, n, "%s", in);
        return;
    }
    long off = tm.tm_gmtoff;
    time_t t = timegm(&tm) - off;
    struct tm u;
    gmtime_r(&t, &u);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &u);
}

static int is_retweet(json_t *tw, const char *text) {
    if (json_object_get(tw, "retweeted_status")) return 1;
    return strncmp(text, "RT @", 4) == 0;
}

int tg_ingest_read_x(tg_ingest *g, int source, char *data, size_t len) {
    const tg_ingest_opts *o = tg_ingest_options(g);
    /* jansson refuses invalid UTF-8: repair the whole file first. */
    char *fixed = NULL;
    if (tg_utf8_valid_prefix((const uint8_t *)data, len) < len) {
        int64_t bad = 0;
        fixed = malloc(3 * len + 1);
        if (!fixed) return tg_error_set(TG_ERR_RUNTIME, "out of memory repairing UTF-8");
        len = tg_utf8_sanitize(data, len, fixed, 3 * len, &bad);
        tg_ingest_count_invalid(g, bad);
        fixed[len] = 0;
        data = fixed;
    }
    /* Find the array: either the file starts with '[' or it follows "window.YTD.<name>.partN =". */
    size_t i = 0;
    if (len >= 3 && (unsigned char)data[0] == 0xEF && (unsigned char)data[1] == 0xBB && (unsigned char)data[2] == 0xBF)
        i = 3;
    while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t')) i++;
    if (i < len && data[i] != '[') {
        const char *eq = memchr(data + i, '=', len - i);
        i = eq ? (size_t)(eq - data) + 1 : len;
        while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t')) i++;
    }
    if (i >= len || data[i] != '[') {
        free(fixed);
        return tg_ingest_reject(g, TG_DROP_COUNT, source, 0,
                                "no JSON array: expected 'window.YTD.tweets.part0 = [ ... ]'; file skipped");
    }
    json_error_t err;
    json_t *arr = json_loadb(data + i, len - i, JSON_DISABLE_EOF_CHECK, &err);
    if (!arr || !json_is_array(arr)) {
        int line = err.line;
        json_decref(arr);
        free(fixed);
        return tg_ingest_reject(g, TG_DROP_COUNT, source, line > 0 ? line : 0, "invalid JSON: %s; file skipped",
                                arr ? "not an array" : err.text);
    }
    int rc = TG_OK;
    size_t k;
    json_t *el;
    char *buf = NULL;
    size_t buf_cap = 0;
    json_array_foreach(arr, k, el) {
        if (rc != TG_OK) break;
        json_t *tw = json_object_get(el, "tweet");
        if (!tw) tw = el; /* some exports hold the tweet objects directly */
        json_t *ft = json_object_get(tw, "full_text");
        if (!json_is_string(ft)) ft = json_object_get(tw, "text");
        if (!json_is_string(ft)) {
            rc = tg_ingest_reject(g, TG_DROP_malformed, source, -(int64_t)(k + 1), "tweet without full_text");
            continue;
        }
        const char *text = json_string_value(ft);
        size_t tl = json_string_length(ft);
        if (!o->keep_retweets && is_retweet(tw, text)) {
            tg_ingest_drop(g, TG_DROP_retweet);
            continue;
        }
        link_sub subs[MAX_SUBS];
        int nsubs = 0;
        json_t *ent = json_object_get(tw, "entities");
        collect_subs(json_object_get(ent, "urls"), 1, o->drop_links, subs, &nsubs);
        collect_subs(json_object_get(ent, "media"), 0, o->drop_links, subs, &nsubs);
        collect_subs(json_object_get(json_object_get(tw, "extended_entities"), "media"), 0, o->drop_links, subs,
                     &nsubs);
        size_t need = tl + 1;
        for (int s = 0; s < nsubs; s++) need += subs[s].to_len;
        if (need > buf_cap) {
            char *nb = realloc(buf, need);
            if (!nb) {
                rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
                break;
            }
            buf = nb;
            buf_cap = need;
        }
        size_t n = apply_links(text, tl, subs, nsubs, o->drop_links, buf);
        n = tg_html_unescape(buf, n, buf);
        const char *id = NULL;
        char idbuf[32];
        json_t *idv = json_object_get(tw, "id_str");
        if (json_is_string(idv)) id = json_string_value(idv);
        else if (json_is_integer(idv = json_object_get(tw, "id"))) {
            snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(idv));
            id = idbuf;
        }
        char date[64];
        const char *ca = NULL;
        json_t *cav = json_object_get(tw, "created_at");
        if (json_is_string(cav)) {
            x_date_iso(json_string_value(cav), date, sizeof date);
            ca = date;
        }
        /* The archive's tweets carry no author: the handle is account.js's,
         * and the post's page is x.com/HANDLE/status/ID (x.com/i/status/ID
         * without one, which x.com redirects). */
        const char *user = tg_ingest_x_user(g);
        char author[80], url[160];
        if (user) snprintf(author, sizeof author, "@%s", user);
        if (id) snprintf(url, sizeof url, "https://x.com/%s/status/%s", user ? user : "i", id);
        tg_ingest_meta m = {id, ca, user ? author : NULL, id ? url : NULL};
        rc = tg_ingest_add_post(g, TG_ITEM_TEXT, source, -(int64_t)(k + 1), buf, n, &m);
    }
    free(buf);
    json_decref(arr);
    free(fixed);
    return rc;
}

int tg_ingest_read_x_account(tg_ingest *g, const char *data, size_t len) {
    const char *eq = memchr(data, '=', len);
    size_t i = eq ? (size_t)(eq - data) + 1 : 0;
    json_error_t err;
    json_t *arr = json_loadb(data + i, len - i, JSON_DISABLE_EOF_CHECK, &err);
    json_t *acct = json_object_get(json_array_get(arr, 0), "account");
    const char *user = json_string_value(json_object_get(acct, "username"));
    /* A handle is [A-Za-z0-9_]{1,15}: anything else is not one. */
    size_t ul = user ? strlen(user) : 0;
    int ok = ul > 0 && ul <= 50;
    for (size_t k = 0; ok && k < ul; k++)
        ok = (user[k] >= 'a' && user[k] <= 'z') || (user[k] >= 'A' && user[k] <= 'Z') ||
             (user[k] >= '0' && user[k] <= '9') || user[k] == '_';
    if (ok) tg_ingest_set_x_user(g, user);
    json_decref(arr);
    return TG_OK;
}
