/* cmd_chat.c — `truthgpt chat`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_chat(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'chat' is not implemented in this build yet\n");
    return 1;
}
