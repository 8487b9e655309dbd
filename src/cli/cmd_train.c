/* cmd_train.c — `truthgpt train`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_train(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'train' is not implemented in this build yet\n");
    return 1;
}
