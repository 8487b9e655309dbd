/*
 * shard_check.c — what checking every token id at shard open costs
 * (src/data/shard.c check_ids): opens DIR's shards as one stream, best of
 * --repeat opens, beside a pass that only reads the same mapped bytes (the
 * page faults every reader pays anyway). bench/shard_check.sh sets it beside
 * the `tokenize` pass that wrote the shards.
 *
 * usage: bench_shard_check DIR [REPEAT]   (prints a JSON line)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/core.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_shard_check DIR [REPEAT]\n");
        return 2;
    }
    int repeat = argc > 2 ? atoi(argv[2]) : 5;
    double best_open = 1e30, best_read = 1e30;
    int64_t tokens = 0;
    size_t bytes = 0;
    uint64_t sum = 0;
    for (int r = 0; r < repeat; r++) {
        tg_token_stream ts;
        double t0 = now_s();
        if (tg_token_stream_open(&ts, argv[1], NULL) != TG_OK) {
            fprintf(stderr, "bench_shard_check: %s\n", tg_error_message());
            return 2;
        }
        double t1 = now_s();
        /* Reading the same ids once more, through the mapping the open set
         * up (a byte sum): the floor any pass over the data pays. */
        tokens = 0, bytes = 0;
        for (int i = 0; i < ts.n_shards; i++) {
            const uint8_t *p = ts.shards[i].ids;
            size_t n = (size_t)ts.shards[i].n_tokens * (size_t)ts.shards[i].bytes_per_token;
            for (size_t k = 0; k < n; k++) sum += p[k];
            tokens += ts.shards[i].n_tokens;
            bytes += n;
        }
        double t2 = now_s();
        tg_token_stream_close(&ts);
        if (t1 - t0 < best_open) best_open = t1 - t0;
        if (t2 - t1 < best_read) best_read = t2 - t1;
    }
    printf("{\"tokens\":%lld,\"bytes\":%zu,\"open_with_check_s\":%.6f,\"byte_sum_s\":%.6f,\"checksum\":%llu}\n",
           (long long)tokens, bytes, best_open, best_read, (unsigned long long)(sum & 0xffff));
    return 0;
}
