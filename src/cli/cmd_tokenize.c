/* cmd_tokenize.c — `truthgpt tokenize`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'tokenize' is not implemented in this build yet\n");
    return 1;
}
