// Placeholder until the run front door lands (being written now); never released like this.
#include <stdio.h>

#include "server/cli.h"

int cli_run(int argc, char **argv) {
    fputs("convd run: not built yet\n", stderr);
    return 1;
}
