/*
 * test_ingest.c — ingest end to end through the library: fixtures made here
 * at run time (an X archive as zip and as folder with retweets, entities,
 * t.co links and a split part; a Mastodon outbox with boosts and HTML as zip,
 * tar.gz and folder; JSONL with a broken line; invalid UTF-8; ANSI codes;
 * exact and near-duplicates), each checked for exactly the expected texts
 * and counts; then bad input (missing file, a zip that is not one, a
 * tweets.js without the array, a NUL byte, a 100 MB line) for the right
 * error, bounded memory, and nothing half-written in CORPUS.
 */
#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "data/ingest.h"
#include "test_util.h"

static char g_tmp[256];

#define CHECK_STR(got, want)                                                                          \
    do {                                                                                              \
        const char *g_ = (got), *w_ = (want);                                                         \
        tg_test_checks++;                                                                             \
        if (!g_ || strcmp(g_, w_) != 0) {                                                             \
            tg_test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: got \"%s\"\n    expected \"%s\"\n", __FILE__, __LINE__, g_ ? g_ : "(null)", w_); \
        }                                                                                             \
    } while (0)

static char *tmp_path(const char *name) { return tg_path_join(g_tmp, name); }

static void write_file(const char *name, const void *data, size_t n) {
    char *p = tmp_path(name);
    char *dir = strdup(p);
    char *slash = strrchr(dir, '/');
    *slash = 0;
    tg_mkdirs(dir);
    FILE *f = fopen(p, "wb");
    TG_ASSERT(f);
    TG_ASSERT(fwrite(data, 1, n, f) == n);
    fclose(f);
    free(dir);
    free(p);
}
static void write_str(const char *name, const char *s) { write_file(name, s, strlen(s)); }

/* Writes an archive (zip, or tar.gz) of n members with libarchive. */
static void write_archive(const char *name, int zip, const char *const *members, const char *const *data, int n) {
    char *p = tmp_path(name);
    struct archive *a = archive_write_new();
    if (zip) archive_write_set_format_zip(a);
    else {
        archive_write_add_filter_gzip(a);
        archive_write_set_format_pax_restricted(a);
    }
    TG_ASSERT(archive_write_open_filename(a, p) == ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, members[i]);
        archive_entry_set_size(e, (la_int64_t)strlen(data[i]));
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        TG_ASSERT(archive_write_header(a, e) == ARCHIVE_OK);
        TG_ASSERT(archive_write_data(a, data[i], strlen(data[i])) == (la_ssize_t)strlen(data[i]));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    free(p);
}

/* The documents of a corpus file, in order. */
typedef struct {
    int n;
    char *text[64], *id[64], *created[64], *source[64];
    char *author[64], *url[64]; /* NULL where the line has none */
} docs;

static void docs_free(docs *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->text[i]);
        free(d->id[i]);
        free(d->created[i]);
        free(d->source[i]);
        free(d->author[i]);
        free(d->url[i]);
    }
    d->n = 0;
}

static int read_docs(const char *corpus, const char *file, docs *d) {
    memset(d, 0, sizeof *d);
    char *dir = tmp_path(corpus);
    char *p = tg_path_join(dir, file);
    FILE *f = fopen(p, "rb");
    free(dir);
    free(p);
    if (!f) return 0;
    char line[1 << 16];
    while (fgets(line, sizeof line, f) && d->n < 64) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        TG_ASSERT(o);
        json_t *ca = json_object_get(o, "created_at");
        d->text[d->n] = strdup(json_string_value(json_object_get(o, "text")));
        d->id[d->n] = strdup(json_string_value(json_object_get(o, "id")));
        d->source[d->n] = strdup(json_string_value(json_object_get(o, "source")));
        d->created[d->n] = json_is_string(ca) ? strdup(json_string_value(ca)) : NULL;
        json_t *au = json_object_get(o, "author"), *url = json_object_get(o, "url");
        d->author[d->n] = json_is_string(au) ? strdup(json_string_value(au)) : NULL;
        d->url[d->n] = json_is_string(url) ? strdup(json_string_value(url)) : NULL;
        json_decref(o);
        d->n++;
    }
    fclose(f);
    return 1;
}

static tg_ingest_opts quiet_opts(void) {
    tg_ingest_opts o = tg_ingest_default_opts();
    o.quiet = 1;
    o.val_frac = 0; /* everything in train.jsonl, in input order */
    o.min_chars = 1;
    return o;
}

static int run1(const tg_ingest_opts *o, const char *input, const char *corpus, tg_ingest_stats *st) {
    char *in = tmp_path(input), *out = tmp_path(corpus);
    char *inputs[1] = {in};
    memset(st, 0, sizeof *st);
    int rc = tg_ingest_run(o, inputs, 1, out, st);
    free(in);
    free(out);
    return rc;
}

/* True if CORPUS holds no output and no temporary file at all. */
static int corpus_untouched(const char *corpus) {
    char *dir = tmp_path(corpus);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' 2>/dev/null)\"", dir);
    free(dir);
    return system(cmd) == 0;
}

/* ------------------------------------------------------------ unit parts */

static void test_clean(void) {
    char out[256];
    tg_clean_counts c = {0, 0, 0};
    const char *ansi = "\x1b[32m\xe3\x80\x8a\xe6\x84\x9f\xe9\x81\x87\xe3\x80\x8b\x1b[m\r\n\x1b[33mline two\x1b[m  \r\nend\r";
    size_t n = tg_clean_text(ansi, strlen(ansi), out, &c);
    out[n] = 0;
    CHECK_STR(out, "\xe3\x80\x8a\xe6\x84\x9f\xe9\x81\x87\xe3\x80\x8b\nline two\nend");
    CHECK_EQ_INT(c.escapes, 4);
    CHECK_EQ_INT(c.chars, 4 + 1 + 8 + 1 + 3);

    memset(&c, 0, sizeof c);
    const char *ctl = "  a\x01" "b\x7f" "c\td\xc2\x85" "e\x1b]0;title\x07" "f\n\n";
    n = tg_clean_text(ctl, strlen(ctl), out, &c);
    out[n] = 0;
    CHECK_STR(out, "abc\tdef");
    CHECK_EQ_INT(c.controls, 3);
    CHECK_EQ_INT(c.escapes, 1);

    memset(&c, 0, sizeof c);
    const char *bs = "`_\bn' and B\bBo\bol\bld \xe2\x80\x9c\bx";
    n = tg_clean_text(bs, strlen(bs), out, &c);
    out[n] = 0;
    CHECK_STR(out, "`n' and Bold x"); /* overstrike: the last character struck stays */
    CHECK_EQ_INT(c.controls, 5);
    CHECK_EQ_INT(c.chars, 14);

    int64_t bad = 0;
    const char *inv = "ab\xff" "cd\xc0\xaf" "e\xed\xa0\x80" "f\xe2\x82";
    n = tg_utf8_sanitize(inv, strlen(inv), out, 3 * strlen(inv), &bad);
    out[n] = 0;
    CHECK_STR(out, "ab\xef\xbf\xbd" "cd\xef\xbf\xbd\xef\xbf\xbd" "e\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                   "f\xef\xbf\xbd\xef\xbf\xbd");
    CHECK_EQ_INT(bad, 8);
    CHECK_EQ_INT(tg_utf8_valid_prefix((const uint8_t *)"h\xc3\xa9llo \xf0\x9f\x98\x80", 11), 11);

    const char *html = "<p>Hello &amp; welcome!<br>Line two<br/>three</p><p>Para <a href=\"https://example.com/x\" "
                       "rel=\"nofollow\"><span class=\"invisible\">https://</span><span class=\"\">example.com/x</span>"
                       "</a> &#8220;q&#x201D; &lt;3&nbsp;&bogus; &amp</p>\n<p><span class=\"h-card\"><a href=\"u\">@"
                       "<span>bob</span></a></span> hi</p>";
    n = tg_html_to_text(html, strlen(html), out);
    out[n] = 0;
    CHECK_STR(out, "Hello & welcome!\nLine two\nthree\n\nPara https://example.com/x \xe2\x80\x9cq\xe2\x80\x9d <3 "
                   "&bogus; &amp \n\n@bob hi");
    const char *ent = "a &lt;b&gt; &amp;amp; &#39;c&#39; &#0; &#xD800;";
    n = tg_html_unescape(ent, strlen(ent), out);
    out[n] = 0;
    CHECK_STR(out, "a <b> &amp; 'c' \xef\xbf\xbd \xef\xbf\xbd");
}

/* Random bytes from an alphabet rich in the characters the parsers care
 * about, through every clean-up function: output within its stated bound,
 * valid UTF-8 after repair, never a crash (ASan/UBSan build checks memory). */
static void test_clean_fuzz(void) {
    static const unsigned char alpha[] = "<>&#;x0123456789abpPrR/ \n\r\t\b\x1b[]\\\x07\xc3\xa9\xe2\x80\x9c\xf0\x9f\x98\x80\xff\xed\xa0\x00";
    tg_rng rng;
    tg_rng_seed(&rng, 42);
    char in[512], fixed[3 * 512 + 1], out[3 * 512 + 1];
    int bad_len = 0, bad_utf8 = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = tg_rng_next(&rng) % 300;
        for (size_t i = 0; i < n; i++) in[i] = (char)alpha[tg_rng_next(&rng) % (sizeof alpha - 1)];
        int64_t inv = 0;
        size_t fl = tg_utf8_sanitize(in, n, fixed, 3 * n, &inv);
        bad_len += fl > 3 * n;
        bad_utf8 += tg_utf8_valid_prefix((const uint8_t *)fixed, fl) != fl;
        tg_clean_counts c = {0, 0, 0};
        size_t cl = tg_clean_text(fixed, fl, out, &c);
        bad_len += cl > fl;
        bad_utf8 += tg_utf8_valid_prefix((const uint8_t *)out, cl) != cl;
        size_t hl = tg_html_to_text(fixed, fl, out);
        bad_len += hl > fl;
        size_t ul = tg_html_unescape(fixed, fl, out);
        bad_len += ul > fl;
        uint64_t sig[TG_MINHASH_K];
        tg_minhash_signature(fixed, fl, sig);
    }
    CHECK_EQ_INT(bad_len, 0);
    CHECK_EQ_INT(bad_utf8, 0);
}

static double sig_agreement(const char *a, const char *b) {
    uint64_t sa[TG_MINHASH_K], sb[TG_MINHASH_K];
    tg_minhash_signature(a, strlen(a), sa);
    tg_minhash_signature(b, strlen(b), sb);
    int eq = 0;
    for (int k = 0; k < TG_MINHASH_K; k++) eq += sa[k] == sb[k];
    return (double)eq / TG_MINHASH_K;
}

static const char *PARA =
    "The committee met on Tuesday to discuss the new bicycle lanes along the river, and after a long debate "
    "about parking, trees and the cost of paint, it voted to start with the northern section next spring.";
static const char *PARA_EDIT =
    "The committee met on Tuesday to discuss the new bicycle lanes along the river, and after a long debate "
    "about parking, trees and the cost of paint; it voted to start with the northern section next spring.";
static const char *OTHER =
    "Our bakery is closed for the holidays; fresh sourdough, rye and cinnamon rolls return on the fifth of "
    "January, together with the new lemon tart that so many of you asked for last summer.";

static void test_minhash(void) {
    int b, r;
    tg_lsh_choose(0.9, &b, &r);
    CHECK(b * r <= TG_MINHASH_K);
    double t = pow(1.0 / b, 1.0 / r); /* where the S-curve rises: below 0.9, candidates are verified */
    CHECK(t > 0.7 && t < 0.9);
    CHECK(sig_agreement(PARA, PARA) == 1.0);
    /* Case and whitespace are folded for shingling. */
    CHECK(sig_agreement("Hello   World, this is a post", "hello world,\nthis is a post") == 1.0);
    double near = sig_agreement(PARA, PARA_EDIT), far = sig_agreement(PARA, OTHER);
    /* One character changed: true Jaccard of the 5-gram sets is about 0.97. */
    CHECK(near > 0.8);
    CHECK(far < 0.1);
    if (!(near > 0.8) || !(far < 0.1)) fprintf(stderr, "  agreement near %.3f far %.3f\n", near, far);
    tg_lsh lsh;
    CHECK(tg_lsh_init(&lsh, 0.9) == TG_OK);
    uint64_t sig[TG_MINHASH_K], keys[2 * TG_MINHASH_K];
    CHECK(tg_lsh_stride(&lsh) <= 2 * TG_MINHASH_K);
    int dup;
    tg_minhash_signature(PARA, strlen(PARA), sig);
    tg_lsh_block(sig, lsh.bands, lsh.rows, keys);
    CHECK(tg_lsh_check_insert(&lsh, keys, &dup) == TG_OK && dup == 0);
    tg_minhash_signature(OTHER, strlen(OTHER), sig);
    tg_lsh_block(sig, lsh.bands, lsh.rows, keys);
    CHECK(tg_lsh_check_insert(&lsh, keys, &dup) == TG_OK && dup == 0);
    tg_minhash_signature(PARA_EDIT, strlen(PARA_EDIT), sig);
    tg_lsh_block(sig, lsh.bands, lsh.rows, keys);
    CHECK(tg_lsh_check_insert(&lsh, keys, &dup) == TG_OK && dup == 1);
    /* A document sharing a band but under the threshold is verified away:
     * the same paragraph with its second half replaced (Jaccard ~0.5). */
    char half[512];
    snprintf(half, sizeof half, "%.100s%s", PARA, OTHER + 100);
    tg_minhash_signature(half, strlen(half), sig);
    tg_lsh_block(sig, lsh.bands, lsh.rows, keys);
    CHECK(tg_lsh_check_insert(&lsh, keys, &dup) == TG_OK && dup == 0);
    tg_lsh_free(&lsh);
}

/* ------------------------------------------------------------- X archive */

static const char *TWEETS_JS =
    "window.YTD.tweets.part0 = [ {\n"
    "  \"tweet\" : {\"id_str\" : \"1001\", \"created_at\" : \"Wed Oct 10 20:19:24 +0000 2018\",\n"
    "    \"full_text\" : \"Hello &amp; welcome to my feed &lt;3 https://t.co/abc123\",\n"
    "    \"entities\" : {\"urls\" : [ {\"url\" : \"https://t.co/abc123\", \"expanded_url\" : "
    "\"https://example.com/post\", \"display_url\" : \"example.com/post\"} ]}}\n"
    "}, {\n"
    "  \"tweet\" : {\"id_str\" : \"1002\", \"created_at\" : \"Thu Oct 11 08:00:00 +0000 2018\",\n"
    "    \"full_text\" : \"RT @alice: a retweeted thought about compilers\", \"entities\" : {}}\n"
    "}, {\n"
    "  \"tweet\" : {\"id_str\" : \"1003\", \"created_at\" : \"Fri Oct 12 09:30:00 +0200 2018\",\n"
    "    \"full_text\" : \"Look at this sunset over the bay https://t.co/media99\",\n"
    "    \"entities\" : {\"urls\" : [], \"media\" : [ {\"url\" : \"https://t.co/media99\", \"expanded_url\" : "
    "\"https://twitter.com/me/status/1003/photo/1\"} ]}}\n"
    "} ]";
static const char *TWEETS_PART1_JS =
    "window.YTD.tweets.part1 = [ {\n"
    "  \"tweet\" : {\"id_str\" : \"1004\", \"created_at\" : \"Sat Oct 13 10:00:00 +0000 2018\",\n"
    "    \"full_text\" : \"Part one: notes on C11 atomics and https://t.co/zzz1 are here\",\n"
    "    \"entities\" : {\"urls\" : [ {\"url\" : \"https://t.co/zzz1\", \"expanded_url\" : \"https://c11.example/atomics\"} ]}}\n"
    "}, {\n"
    "  \"tweet\" : {\"id_str\" : \"1005\", \"created_at\" : \"Sun Oct 14 10:00:00 +0000 2018\",\n"
    "    \"full_text\" : \"Hello &amp; welcome to my feed &lt;3 https://t.co/abc123\",\n"
    "    \"entities\" : {\"urls\" : [ {\"url\" : \"https://t.co/abc123\", \"expanded_url\" : \"https://example.com/post\"} ]}}\n"
    "} ]\n";

static void check_x_docs(const char *corpus, const tg_ingest_stats *st) {
    docs d;
    CHECK(read_docs(corpus, "train.jsonl", &d));
    CHECK_EQ_INT(d.n, 3);
    if (d.n == 3) {
        CHECK_STR(d.text[0], "Hello & welcome to my feed <3 https://example.com/post");
        CHECK_STR(d.id[0], "1001");
        /* The handle comes from data/account.js, the URL is the tweet's page. */
        CHECK(d.author[0] && !strcmp(d.author[0], "@me"));
        CHECK(d.url[0] && !strcmp(d.url[0], "https://x.com/me/status/1001"));
        CHECK(d.url[2] && !strcmp(d.url[2], "https://x.com/me/status/1004"));
        CHECK_STR(d.created[0], "2018-10-10T20:19:24Z");
        CHECK_STR(d.text[1], "Look at this sunset over the bay");
        CHECK_STR(d.created[1], "2018-10-12T07:30:00Z"); /* +0200 converted to UTC */
        CHECK_STR(d.text[2], "Part one: notes on C11 atomics and https://c11.example/atomics are here");
        CHECK_STR(d.id[2], "1004");
        CHECK(strstr(d.source[2], "tweets-part1.js") != NULL);
    }
    docs_free(&d);
    CHECK_EQ_INT(st->read, 5);
    CHECK_EQ_INT(st->kept, 3);
    CHECK_EQ_INT(st->dropped[TG_DROP_retweet], 1);
    CHECK_EQ_INT(st->dropped[TG_DROP_duplicate], 1);
    CHECK_EQ_INT(st->files, 2);
}

static void test_x(void) {
    tg_ingest_opts o = quiet_opts();
    tg_ingest_stats st;
    const char *members[] = {"data/account.js", "data/tweets.js", "data/tweets-part1.js", "data/tweets_media/1003.jpg"};
    const char *data[] = {"window.YTD.account.part0 = [ {\"account\": {\"username\": \"me\"}} ]", TWEETS_JS,
                          TWEETS_PART1_JS, "\xff\xd8\xff\xe0 not really a jpeg \x01\x02"};
    write_archive("x.zip", 1, members, data, 4);
    CHECK(run1(&o, "x.zip", "cx_zip", &st) == TG_OK);
    check_x_docs("cx_zip", &st);

    /* The unpacked folder gives the same corpus. */
    write_str("xdir/data/account.js", data[0]);
    write_str("xdir/data/tweets.js", TWEETS_JS);
    write_str("xdir/data/tweets-part1.js", TWEETS_PART1_JS);
    CHECK(run1(&o, "xdir", "cx_dir", &st) == TG_OK);
    check_x_docs("cx_dir", &st);

    /* --keep-retweets and --drop-links. */
    o.keep_retweets = 1;
    o.drop_links = 1;
    CHECK(run1(&o, "x.zip", "cx_opts", &st) == TG_OK);
    docs d;
    CHECK(read_docs("cx_opts", "train.jsonl", &d));
    CHECK_EQ_INT(d.n, 4);
    if (d.n == 4) {
        CHECK_STR(d.text[0], "Hello & welcome to my feed <3");
        CHECK(d.author[0] && !strcmp(d.author[0], "@me"));
        CHECK_STR(d.text[1], "RT @alice: a retweeted thought about compilers");
        CHECK_STR(d.text[3], "Part one: notes on C11 atomics and are here");
    }
    docs_free(&d);
    CHECK_EQ_INT(st.dropped[TG_DROP_retweet], 0);

    /* Without account.js: no author, and the handle-free URL. */
    write_str("xnoacct/data/tweets.js", TWEETS_JS);
    o.keep_retweets = 0;
    o.drop_links = 0;
    CHECK(run1(&o, "xnoacct", "cx_noacct", &st) == TG_OK);
    CHECK(read_docs("cx_noacct", "train.jsonl", &d));
    CHECK_EQ_INT(d.n, 2);
    if (d.n == 2) {
        CHECK(d.author[0] == NULL);
        CHECK(d.url[0] && !strcmp(d.url[0], "https://x.com/i/status/1001"));
    }
    docs_free(&d);
}

/* -------------------------------------------------------------- Mastodon */

static const char *OUTBOX =
    "{\"@context\": \"https://www.w3.org/ns/activitystreams\", \"type\": \"OrderedCollection\",\n"
    " \"totalItems\": 4, \"orderedItems\": [\n"
    "  {\"id\": \"https://m.example/users/me/statuses/1/activity\", \"type\": \"Create\",\n"
    "   \"published\": \"2023-05-01T10:00:00Z\",\n"
    "   \"object\": {\"id\": \"https://m.example/users/me/statuses/1\", \"type\": \"Note\",\n"
    "     \"url\": \"https://m.example/@me/1\", \"attributedTo\": \"https://m.example/users/me\",\n"
    "     \"published\": \"2023-05-01T10:00:00Z\",\n"
    "     \"content\": \"<p>First paragraph &amp; more.</p><p>Second line one<br />second line two &#127881;</p>\"}},\n"
    "  {\"id\": \"https://m.example/users/me/statuses/2/activity\", \"type\": \"Announce\",\n"
    "   \"published\": \"2023-05-02T10:00:00Z\", \"object\": \"https://other.example/statuses/99\"},\n"
    "  {\"id\": \"https://m.example/users/me/statuses/3/activity\", \"type\": \"Create\",\n"
    "   \"actor\": \"https://m.example/users/me\",\n"
    "   \"object\": {\"id\": \"https://m.example/users/me/statuses/3\", \"type\": \"Note\",\n"
    "     \"published\": \"2023-05-03T12:30:00Z\",\n"
    "     \"content\": \"<p><span class=\\\"h-card\\\"><a href=\\\"https://o.example/@bob\\\" class=\\\"u-url mention\\\">"
    "@<span>bob</span></a></span> see <a href=\\\"https://example.org/a/very/long/path\\\"><span class=\\\"invisible\\\">"
    "https://</span><span class=\\\"ellipsis\\\">example.org/a/very/</span><span class=\\\"invisible\\\">long/path</span>"
    "</a> &lt;tag&gt;</p>\"}},\n"
    "  {\"id\": \"https://m.example/q/4\", \"type\": \"Create\",\n"
    "   \"object\": {\"id\": \"https://m.example/q/4\", \"type\": \"Question\", \"content\": \"<p>Tea or coffee?</p>\"}}\n"
    " ]}\n";

static void check_mastodon(const char *corpus, const tg_ingest_stats *st) {
    docs d;
    CHECK(read_docs(corpus, "train.jsonl", &d));
    CHECK_EQ_INT(d.n, 2);
    if (d.n == 2) {
        CHECK_STR(d.text[0], "First paragraph & more.\n\nSecond line one\nsecond line two \xf0\x9f\x8e\x89");
        CHECK_STR(d.id[0], "https://m.example/users/me/statuses/1");
        /* url beats id; the author is attributedTo (else the actor) as a handle. */
        CHECK(d.url[0] && !strcmp(d.url[0], "https://m.example/@me/1"));
        CHECK(d.author[0] && !strcmp(d.author[0], "@me@m.example"));
        CHECK(d.url[1] && !strcmp(d.url[1], "https://m.example/users/me/statuses/3"));
        CHECK(d.author[1] && !strcmp(d.author[1], "@me@m.example"));
        CHECK_STR(d.created[0], "2023-05-01T10:00:00Z");
        CHECK_STR(d.text[1], "@bob see https://example.org/a/very/long/path <tag>");
        CHECK_STR(d.created[1], "2023-05-03T12:30:00Z");
    }
    docs_free(&d);
    CHECK_EQ_INT(st->read, 4);
    CHECK_EQ_INT(st->dropped[TG_DROP_boost], 1);
    CHECK_EQ_INT(st->dropped[TG_DROP_not_note], 1);
    CHECK_EQ_INT(st->kept, 2);
}

static void test_mastodon(void) {
    tg_ingest_opts o = quiet_opts();
    tg_ingest_stats st;
    const char *members[] = {"actor.json", "outbox.json", "media_attachments/files/1/original/a.png"};
    const char *data[] = {"{\"type\": \"Person\"}", OUTBOX, "\x89PNG\r\n\x1a\n"};
    write_archive("m.zip", 1, members, data, 3);
    CHECK(run1(&o, "m.zip", "cm_zip", &st) == TG_OK);
    check_mastodon("cm_zip", &st);
    write_archive("m.tar.gz", 0, members, data, 3);
    CHECK(run1(&o, "m.tar.gz", "cm_tgz", &st) == TG_OK);
    check_mastodon("cm_tgz", &st);
    write_str("mdir/outbox.json", OUTBOX);
    CHECK(run1(&o, "mdir", "cm_dir", &st) == TG_OK);
    check_mastodon("cm_dir", &st);
}

/* ----------------------------------------------------------------- JSONL */

static void test_jsonl(void) {
    tg_ingest_opts o = quiet_opts();
    tg_ingest_stats st;
    const char *jl =
        "{\"id\": 7, \"text\": \"first post is here\", \"created_at\": \"2024-01-01T00:00:00Z\", \"author\": \"alice\", "
        "\"url\": \"https://forum.example/p/7\"}\n"
        "{\"text\": \"unterminated\n"
        "\n"
        "{\"text\": \"caf\xe9 au lait, please\"}\r\n"
        "{\"text\": \"\\u001b[31mred alert\\u001b[0m in the logs\\r\\nsecond line\"}\n"
        "{\"no_text\": 1}\n"
        "{\"text\": \"first post is here\"}\n"
        "{\"text\": \"   \\t  \"}\n";
    write_str("a.jsonl", jl);
    CHECK(run1(&o, "a.jsonl", "cj", &st) == TG_OK);
    docs d;
    CHECK(read_docs("cj", "train.jsonl", &d));
    CHECK_EQ_INT(d.n, 3);
    if (d.n == 3) {
        CHECK_STR(d.text[0], "first post is here");
        CHECK_STR(d.id[0], "7");
        CHECK(d.author[0] && !strcmp(d.author[0], "alice"));
        CHECK(d.url[0] && !strcmp(d.url[0], "https://forum.example/p/7"));
        CHECK(d.author[1] == NULL && d.url[1] == NULL);
        CHECK_STR(d.created[0], "2024-01-01T00:00:00Z");
        CHECK_STR(d.text[1], "caf\xef\xbf\xbd au lait, please");
        CHECK(d.created[1] == NULL);
        CHECK_EQ_INT(strlen(d.id[1]), 16); /* content hash as id */
        CHECK_STR(d.text[2], "red alert in the logs\nsecond line");
    }
    docs_free(&d);
    CHECK_EQ_INT(st.read, 7);
    CHECK_EQ_INT(st.dropped[TG_DROP_malformed], 2);
    CHECK_EQ_INT(st.dropped[TG_DROP_duplicate], 1);
    CHECK_EQ_INT(st.dropped[TG_DROP_empty], 1);
    CHECK_EQ_INT(st.invalid_bytes, 1);
    CHECK_EQ_INT(st.escapes, 2);

    /* Dotted --field path; ids and dates from the object that holds it. */
    write_str("b.jsonl", "{\"tweet\": {\"id_str\": \"55\", \"created_at\": \"x\", \"full_text\": \"nested text here\"}}\n");
    o.field = "tweet.full_text";
    CHECK(run1(&o, "b.jsonl", "cj2", &st) == TG_OK);
    CHECK(read_docs("cj2", "train.jsonl", &d));
    CHECK_EQ_INT(d.n, 1);
    if (d.n == 1) {
        CHECK_STR(d.text[0], "nested text here");
        CHECK_STR(d.id[0], "55");
    }
    docs_free(&d);

    /* --strict: the broken line is fatal, named with its line, nothing written. */
    o = quiet_opts();
    o.strict = 1;
    CHECK(run1(&o, "a.jsonl", "cj_strict", &st) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "a.jsonl:2:") != NULL);
    CHECK(corpus_untouched("cj_strict"));
}

/* ------------------------------------------------------------------ text */

static void test_text(void) {
    tg_ingest_opts o = quiet_opts();
    o.min_chars = 8;
    tg_ingest_stats st;
    char buf[4096];
    snprintf(buf, sizeof buf,
             "\x1b[32mA green fortune\x1b[m\r\nwith two lines\r\n%%\n"
             "short\n%%\n"
             "%s\n%%\n"
             "%s\n%%\n"
             "%s\n%%\n"
             "A green fortune\nwith two lines\n%%\n"
             "\n%%\n"
             "last one, no separator after it",
             PARA, OTHER, PARA_EDIT);
    write_str("f.txt", buf);
    CHECK(run1(&o, "f.txt", "ct", &st) == TG_OK);
    o.split = "%";
    CHECK(run1(&o, "f.txt", "ct", &st) == TG_OK);
    docs d;
    CHECK(read_docs("ct", "train.jsonl", &d));
    CHECK_EQ_INT(d.n, 4);
    if (d.n == 4) {
        CHECK_STR(d.text[0], "A green fortune\nwith two lines");
        CHECK_STR(d.text[1], PARA);
        CHECK_STR(d.text[2], OTHER);
        CHECK_STR(d.text[3], "last one, no separator after it");
    }
    docs_free(&d);
    CHECK_EQ_INT(st.read, 8);
    CHECK_EQ_INT(st.dropped[TG_DROP_too_short], 1);
    CHECK_EQ_INT(st.dropped[TG_DROP_near_duplicate], 1);
    CHECK_EQ_INT(st.dropped[TG_DROP_duplicate], 1);
    CHECK_EQ_INT(st.dropped[TG_DROP_empty], 1);
    CHECK_EQ_INT(st.escapes, 2);

    /* --near-dup 0 keeps the edited paragraph. */
    o.near_dup = 0;
    CHECK(run1(&o, "f.txt", "ct0", &st) == TG_OK);
    CHECK_EQ_INT(st.kept, 5);
    CHECK_EQ_INT(st.dropped[TG_DROP_near_duplicate], 0);

    /* line and blank-line splits. */
    write_str("g.txt", "one line here\n\n  \ntwo line here\nthree line here\n");
    o = quiet_opts();
    o.split = "line";
    CHECK(run1(&o, "g.txt", "cl", &st) == TG_OK);
    CHECK_EQ_INT(st.kept, 3);
    o.split = "blank-line";
    CHECK(run1(&o, "g.txt", "cb", &st) == TG_OK);
    CHECK(read_docs("cb", "train.jsonl", &d));
    CHECK_EQ_INT(d.n, 2);
    if (d.n == 2) CHECK_STR(d.text[1], "two line here\nthree line here");
    docs_free(&d);
}

/* The split depends on the content only: same side whatever the order and
 * company; about val_frac of the documents; identical output for any
 * thread count. */
static void test_split_and_threads(void) {
    char *big = malloc(1 << 20);
    size_t n = 0;
    for (int i = 0; i < 400; i++)
        n += (size_t)snprintf(big + n, 4096, "document number %d says %d bottles of %s\n", i, i * 7919 % 1000,
                              i % 3 ? "water" : "tea");
    write_str("s1.txt", big);
    n = 0;
    for (int i = 399; i >= 0; i -= 2)
        n += (size_t)snprintf(big + n, 4096, "document number %d says %d bottles of %s\n", i, i * 7919 % 1000,
                              i % 3 ? "water" : "tea");
    write_str("s2.txt", big);
    free(big);
    tg_ingest_opts o = quiet_opts();
    o.split = "line";
    o.val_frac = 0.25;
    o.threads = 1;
    tg_ingest_stats st;
    CHECK(run1(&o, "s1.txt", "cs1", &st) == TG_OK);
    CHECK_EQ_INT(st.kept, 400);
    CHECK(st.val > 60 && st.val < 140);
    o.threads = 2;
    CHECK(run1(&o, "s1.txt", "cs1b", &st) == TG_OK);
    char *a1 = tmp_path("cs1/train.jsonl"), *a2 = tmp_path("cs1b/train.jsonl");
    char *x1 = NULL, *x2 = NULL;
    size_t l1 = 0, l2 = 1;
    CHECK(tg_read_file(a1, &x1, &l1) == TG_OK && tg_read_file(a2, &x2, &l2) == TG_OK);
    CHECK(l1 == l2 && memcmp(x1, x2, l1) == 0);
    free(x1);
    free(x2);
    free(a1);
    free(a2);
    CHECK(run1(&o, "s2.txt", "cs2", &st) == TG_OK);
    /* Every val document of the second run is a val document of the first. */
    docs v1, v2;
    char *p1 = tmp_path("cs1/val.jsonl");
    char *all = NULL;
    size_t al = 0;
    CHECK(tg_read_file(p1, &all, &al) == TG_OK);
    free(p1);
    CHECK(read_docs("cs2", "val.jsonl", &v2));
    CHECK(v2.n > 10);
    int missing = 0;
    for (int i = 0; i < v2.n; i++) {
        char needle[512];
        snprintf(needle, sizeof needle, "\"text\":\"%s\"", v2.text[i]);
        if (!strstr(all, needle)) missing++;
    }
    CHECK_EQ_INT(missing, 0);
    free(all);
    (void)v1;
    docs_free(&v2);
}

/* ------------------------------------------------------------- bad input */

static void test_bad_input(void) {
    tg_ingest_opts o = quiet_opts();
    tg_ingest_stats st;

    /* A missing file: input error naming it, CORPUS not even created. */
    CHECK(run1(&o, "no-such-file.txt", "bad_missing", &st) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "no-such-file.txt") != NULL);
    char *missing_dir = tmp_path("bad_missing");
    CHECK(!tg_path_exists(missing_dir));
    free(missing_dir);

    /* A zip that is not a zip. */
    write_str("fake.zip", "this is plain text, not a zip archive\n");
    CHECK(run1(&o, "fake.zip", "bad_zip", &st) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "fake.zip") != NULL);
    CHECK(strstr(tg_error_message(), "not a zip") != NULL);
    CHECK(corpus_untouched("bad_zip"));

    /* A tweets.js without the array: the file is skipped; nothing is kept,
     * which is an input error; with --strict the message names the file. */
    write_str("noarr/data/tweets.js", "window.YTD.tweets.part0 = {\"tweet\": {}}\n");
    CHECK(run1(&o, "noarr", "bad_noarr", &st) == TG_ERR_INPUT);
    CHECK_EQ_INT(st.malformed_files, 1);
    CHECK(corpus_untouched("bad_noarr"));
    o.strict = 1;
    CHECK(run1(&o, "noarr", "bad_noarr", &st) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "tweets.js") != NULL && strstr(tg_error_message(), "no JSON array") != NULL);
    CHECK(corpus_untouched("bad_noarr"));
    o.strict = 0;

    /* A NUL byte in a text file: the rest of the file is skipped (binary)
     * and reported with its line; fatal with --strict. */
    write_file("nul.txt", "good first document\n\nsecond\0document\n\nthird\n", 44);
    CHECK(run1(&o, "nul.txt", "cnul", &st) == TG_OK);
    CHECK_EQ_INT(st.kept, 1);
    CHECK_EQ_INT(st.malformed_files, 1);
    o.strict = 1;
    CHECK(run1(&o, "nul.txt", "bad_nul", &st) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "nul.txt:3:") != NULL);
    CHECK(corpus_untouched("bad_nul"));
    o.strict = 0;

    /* A failed run into an existing corpus leaves it as it was. */
    char *old_path = tmp_path("cnul/train.jsonl");
    char *before = NULL, *after = NULL;
    size_t lb = 0, la = 1;
    CHECK(tg_read_file(old_path, &before, &lb) == TG_OK);
    o.strict = 1;
    CHECK(run1(&o, "nul.txt", "cnul", &st) == TG_ERR_INPUT);
    CHECK(tg_read_file(old_path, &after, &la) == TG_OK);
    CHECK(lb == la && memcmp(before, after, lb) == 0);
    free(before);
    free(after);
    free(old_path);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls '%s/cnul' | grep tmp)\"", g_tmp);
    CHECK(system(cmd) == 0);
    o.strict = 0;

    /* A 100 MB single line: skipped as too long while it streams past,
     * memory stays bounded (well under the line's size), the rest is kept. */
    char *p = tmp_path("huge.jsonl");
    FILE *f = fopen(p, "wb");
    TG_ASSERT(f);
    fputs("{\"text\": \"before the huge line\"}\n{\"text\": \"", f);
    char *chunk = malloc(1 << 20);
    memset(chunk, 'a', 1 << 20);
    for (int i = 0; i < 100; i++) fwrite(chunk, 1, 1 << 20, f);
    free(chunk);
    fputs("\"}\n{\"text\": \"after the huge line\"}\n", f);
    fclose(f);
    free(p);
    double rss0 = tg_peak_rss_mb();
    CHECK(run1(&o, "huge.jsonl", "chuge", &st) == TG_OK);
    double grew = tg_peak_rss_mb() - rss0;
    CHECK_EQ_INT(st.kept, 2);
    CHECK_EQ_INT(st.dropped[TG_DROP_too_long], 1);
    CHECK(grew < 40);
    if (grew >= 40) fprintf(stderr, "  peak RSS grew by %.1f MB on a 100 MB line\n", grew);
    o.strict = 1;
    CHECK(run1(&o, "huge.jsonl", "bad_huge", &st) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "huge.jsonl:2:") != NULL);
    CHECK(corpus_untouched("bad_huge"));
    p = tmp_path("huge.jsonl");
    unlink(p);
    free(p);

    /* Bad options are input errors naming the flag. */
    o = quiet_opts();
    o.format = "csv";
    CHECK(run1(&o, "a.jsonl", "bad_opt", &st) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "--format") != NULL);
    o = quiet_opts();
    o.near_dup = 1.5;
    CHECK(run1(&o, "a.jsonl", "bad_opt", &st) == TG_ERR_INPUT);
    CHECK(strstr(tg_error_message(), "--near-dup") != NULL);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tg_test_ingest_XXXXXX");
    TG_ASSERT(mkdtemp(g_tmp));
    test_clean();
    test_clean_fuzz();
    test_minhash();
    test_x();
    test_mastodon();
    test_jsonl();
    test_text();
    test_split_and_threads();
    test_bad_input();
    int rc = test_summary("test_ingest");
    if (rc == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    } else {
        fprintf(stderr, "fixtures kept in %s\n", g_tmp);
    }
    return rc;
}
