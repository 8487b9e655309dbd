/* cmd_eval.c — `truthgpt eval`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'eval' is not implemented in this build yet\n");
    return 1;
}
