/* cmd_sample.c — `truthgpt sample`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_sample(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'sample' is not implemented in this build yet\n");
    return 1;
}
