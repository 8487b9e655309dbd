/* cmd_serve.c — `truthgpt serve`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'serve' is not implemented in this build yet\n");
    return 1;
}
