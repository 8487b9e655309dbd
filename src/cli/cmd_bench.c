/* cmd_bench.c — `truthgpt bench`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'bench' is not implemented in this build yet\n");
    return 1;
}
