/* cmd_finetune.c — `truthgpt finetune`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_finetune(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'finetune' is not implemented in this build yet\n");
    return 1;
}
