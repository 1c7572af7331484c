// Placeholder until the serve front door lands (being written now); never released like this.
#include <stdio.h>

#include "server/cli.h"

int cli_serve(int argc, char **argv) {
    fputs("convd serve: not built yet\n", stderr);
    return 1;
}
