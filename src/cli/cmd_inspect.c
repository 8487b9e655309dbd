/* cmd_inspect.c — `truthgpt inspect`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_inspect(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'inspect' is not implemented in this build yet\n");
    return 1;
}
