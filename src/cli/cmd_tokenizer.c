/* cmd_tokenizer.c — `truthgpt tokenizer`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_tokenizer(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'tokenizer' is not implemented in this build yet\n");
    return 1;
}
