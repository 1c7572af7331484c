// convd: conv2d forward and backward as a service (serve), or one request offline (run).
#include <stdio.h>
#include <string.h>

#include "core/conv.h"
#include "server/blas_boot.h"
#include "server/cli.h"
#include "server/version.h"

static void print_usage(FILE *to) {
    fputs("usage: convd [serve] [options]   serve HTTP (default; convd serve --help)\n"
          "       convd run [FILE]          one JSON request from FILE or stdin to stdout\n"
          "       convd check [FILE]        grade a submission against a problem (offline)\n"
          "       convd problem [FILE | --suite NAME --seed N --index I]   make problems\n"
          "       convd healthcheck [--ready]  is the local server healthy? (exit 0/1)\n"
          "       convd --version | --help\n",
          to);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("convd %s (OpenBLAS core %s, %s; kernels %s; GEMM %s)\n", CONVD_VERSION,
               blas_core_name(), blas_core_source(), conv_isa_name(CONV_ISA_AUTO),
               conv_gemm_name(CONV_ISA_AUTO));
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "run") == 0) return cli_run(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0) return cli_check(argc - 1, argv + 1);
    if (strcmp(cmd, "problem") == 0) return cli_problem(argc - 1, argv + 1);
    if (strcmp(cmd, "healthcheck") == 0) return cli_healthcheck(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0) return cli_serve(argc - 1, argv + 1);
    if (cmd[0] == '-') return cli_serve(argc, argv); // options only: serve is the default
    fprintf(stderr, "convd: unknown command '%s'\n", cmd);
    print_usage(stderr);
    return 2;
}
