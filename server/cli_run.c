// convd run: the offline front door. One v1 request from a file or standard input, its
// response on standard output; graders without network depend on it.
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_errors.h"
#include "api/codec/codec.h"
#include "core/conv.h"
#include "server/blas_boot.h"
#include "server/cli.h"
#include "server/version.h"

static void print_help(void) {
    printf("usage: convd run [--op OP] [--format json|safetensors] [--threads N] [--max-elements N]\n"
           "                 [--max-flops N] [FILE]\n"
           "\n"
           "Reads one v1 request (JSON) from FILE, or standard input when FILE is absent or '-',\n"
           "and writes the response JSON to standard output. The request names its op, or --op\n"
           "does (both: they must agree):\n"
           "\n"
           "  echo '{\"op\": \"conv2d.forward\", \"dtype\": \"float64\", \"padding\": \"same\",\n"
           "         \"x\": [[1, 2, 3], [4, 5, 6], [7, 8, 9]], \"w\": [[0, 1], [1, 0]]}' | convd run\n"
           "\n"
           "Exit status: 0 success; 2 a bad request (the error JSON, with its code, message and\n"
           "path, is on standard output); 1 an internal failure (out of memory, unreadable FILE).\n"
           "\n"
           "  --op OP            conv1d/2d/3d.*, conv_transpose1d/2d/3d.* (each\n"
           "                     .forward or .backward), for bodies without \"op\"\n"
           "  --format F         json (default) or safetensors: the request and the response as\n"
           "                     safetensors (errors stay JSON; see docs/PROTOCOLS.md)\n"
           "  --threads N        threads for the computation (default: the CPUs available)\n"
           "  --max-elements N   lower the largest tensor accepted (default 16777216 elements)\n"
           "  --max-flops N      lower the most work accepted (default 5e10 FLOPs)\n"
           "  --version          version and the OpenBLAS core in use\n"
           "\n"
           "Errors are listed in docs/ERRORS.md; the request format in docs/API.md.\n");
}

// The whole stream into a heap buffer; NULL on a read error or without memory.
static char *read_all(FILE *in, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, in);
        if (n < cap) break;
        char *grown = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
        if (!grown) free(buf);
        buf = grown;
        cap *= 2;
    }
    if (buf && ferror(in)) {
        free(buf);
        buf = NULL;
    }
    *len = n;
    return buf;
}

static int write_response(const api_response *resp) {
    if (resp->body) {
        fwrite(resp->body, 1, resp->len, stdout);
        if (strcmp(resp->content_type, codec_binary_type) != 0) fputc('\n', stdout);
    }
    if (fflush(stdout) != 0) return 1;
    if (resp->status == 200) return 0;
    return resp->status >= 500 ? 1 : 2;
}

// A failure before any request exists (unreadable FILE): the same error JSON, exit 1.
static int fail_internal(const char *verb, const char *what) {
    api_response resp = {0};
    api_error_refuse(&resp, API_E_INTERNAL, "", "cannot %s %s: %s", verb, what, strerror(errno));
    write_response(&resp);
    free(resp.body);
    return 1;
}

// A whole number from 1 to `most` for option `name`, or a message and false.
static bool count_arg(int64_t *out, const char *name, const char *text, int64_t most) {
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno || end == text || *end || n < 1 || n > most) {
        fprintf(stderr, "convd run: %s takes a whole number from 1 to %lld\n", name,
                (long long)most);
        return false;
    }
    *out = n;
    return true;
}

int cli_run(int argc, char **argv) {
    api_options opt;
    api_options_default(&opt);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    opt.threads = cpus > 0 ? (int)cpus : 1;
    const char *path = NULL, *op = NULL;
    bool safetensors = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help();
            return 0;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("convd %s (OpenBLAS core %s, %s; kernels %s; GEMM %s)\n", CONVD_VERSION,
                   blas_core_name(), blas_core_source(), conv_isa_name(CONV_ISA_AUTO),
                   conv_gemm_name(CONV_ISA_AUTO));
            return 0;
        }
        if (strcmp(arg, "--op") == 0 && i + 1 < argc) {
            op = argv[++i];
        } else if (strcmp(arg, "--format") == 0 && i + 1 < argc) {
            safetensors = strcmp(argv[++i], "safetensors") == 0;
            if (!safetensors && strcmp(argv[i], "json") != 0) {
                fprintf(stderr, "convd run: --format is json or safetensors\n");
                return 2;
            }
        } else if (strcmp(arg, "--threads") == 0 && i + 1 < argc) {
            int64_t n;
            if (!count_arg(&n, arg, argv[++i], 1024)) return 2;
            opt.threads = (int)n;
        } else if (strcmp(arg, "--max-elements") == 0 && i + 1 < argc) {
            if (!count_arg(&opt.max_elements, arg, argv[++i], opt.max_elements)) return 2;
        } else if (strcmp(arg, "--max-flops") == 0 && i + 1 < argc) {
            if (!count_arg(&opt.max_flops, arg, argv[++i], opt.max_flops)) return 2;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "convd run: unknown option '%s' (see convd run --help)\n", arg);
            return 2;
        } else if (path) {
            fprintf(stderr, "convd run: one request at a time (see convd run --help)\n");
            return 2;
        } else {
            path = arg;
        }
    }
    bool from_stdin = !path || strcmp(path, "-") == 0;
    FILE *in = from_stdin ? stdin : fopen(path, "rb");
    if (!in) return fail_internal("open", path);
    size_t len;
    char *body = read_all(in, &len);
    if (!from_stdin) fclose(in);
    if (!body) return fail_internal("read", from_stdin ? "standard input" : path);
    api_response resp = {0};
    if (safetensors) codec_v1_run(&resp, CODEC_BINARY, body, len, codec_binary_type, op, &opt);
    else codec_run_json(&resp, body, len, op, &opt);
    free(body);
    int status = write_response(&resp);
    free(resp.body);
    return status;
}
