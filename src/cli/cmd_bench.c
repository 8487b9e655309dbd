/* cmd_bench.c — `truthgpt bench train|generate`: dispatches to the benchmarks. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int tg_cmd_bench(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        FILE *f = argc < 1 ? stderr : stdout;
        fprintf(f, "usage: truthgpt bench train|generate [options]\n\n"
                   "  train     training tokens/s, MFU against the measured GEMM peak, peak memory\n"
                   "  generate  decode and prefill tokens/s against their bounds, batched streams\n"
                   "\n(truthgpt bench train --help for the options of each)\n");
        return argc < 1 ? 2 : 0;
    }
    if (!strcmp(argv[0], "train")) return tg_bench_train(argc - 1, argv + 1);
    if (!strcmp(argv[0], "generate")) return tg_bench_generate(argc - 1, argv + 1);
    fprintf(stderr, "truthgpt: unknown benchmark '%s' (train or generate)\n", argv[0]);
    return 2;
}
