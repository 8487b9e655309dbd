/* bench_generate.c — `truthgpt bench generate`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_bench_generate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'bench generate' is not implemented in this build yet\n");
    return 1;
}
