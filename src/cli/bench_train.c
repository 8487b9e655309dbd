/* bench_train.c — `truthgpt bench train`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_bench_train(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'bench train' is not implemented in this build yet\n");
    return 1;
}
