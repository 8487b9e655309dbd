/* fuzz_archive_member.c — the members of X and Mastodon archives
 * (tweets.js, outbox.json) through the whole ingest of one file. The first
 * byte picks the format: even X, odd Mastodon. */
#include "data/ingest.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int x = (data[0] & 1) == 0;
    const char *path = fuzz_file(x ? "tweets.js" : "outbox.json", data + 1, size - 1);
    char *inputs[1] = {(char *)path};
    char out[128];
    snprintf(out, sizeof out, "%s/corpus", fuzz_dir());
    tg_ingest_opts o = tg_ingest_default_opts();
    o.format = x ? "x" : "mastodon";
    o.threads = 1;
    o.quiet = 1;
    o.near_dup = 0;
    tg_ingest_stats st;
    (void)tg_ingest_run(&o, inputs, 1, out, &st);
    tg_error_clear();
    return 0;
}
