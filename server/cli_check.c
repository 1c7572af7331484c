// convd check and convd problem: the grading front door on the command line.
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_buf.h"
#include "api/api_errors.h"
#include "api/grade/grade_json.h"
#include "server/cli.h"

typedef void (*grade_door)(api_response *out, const char *body, size_t len,
                           const char *op_from_path, const api_options *opt);

// The whole stream into a heap buffer; NULL on a read error or without memory.
static char *read_stream(FILE *in, size_t *len) {
    api_buf b = {0};
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0) api_buf_put(&b, chunk, n);
    if (ferror(in) || b.failed) {
        api_buf_free(&b);
        return NULL;
    }
    char *body = api_buf_take(&b, len);
    return body ? body : calloc(1, 1); // an empty stream: an empty body, for the parser to judge
}

// Writes the answer and turns its status into the exit status.
static int answer(const api_response *resp) {
    if (resp->body) {
        fwrite(resp->body, 1, resp->len, stdout);
        fputc('\n', stdout);
    }
    if (fflush(stdout) != 0) return 1;
    if (resp->status == 200) return 0;
    return resp->status >= 500 ? 1 : 2;
}

// Runs `door` on `body` and prints the answer.
static int run_body(grade_door door, const char *body, size_t len) {
    api_options opt;
    api_options_default(&opt);
    api_response resp = {0};
    door(&resp, body, len, NULL, &opt);
    const int status = answer(&resp);
    free(resp.body);
    return status;
}

// Runs `door` on FILE (or standard input when `path` is NULL or "-").
static int run_file(grade_door door, const char *name, const char *path) {
    FILE *in = path && strcmp(path, "-") != 0 ? fopen(path, "rb") : stdin;
    size_t len = 0;
    char *body = in ? read_stream(in, &len) : NULL;
    if (in && in != stdin) fclose(in);
    if (!body) {
        api_response resp = {0};
        api_error_refuse(&resp, API_E_INTERNAL, "", "convd %s cannot read %s: %s", name,
                         path ? path : "standard input", strerror(errno ? errno : EIO));
        answer(&resp);
        free(resp.body);
        return 1;
    }
    const int status = run_body(door, body, len);
    free(body);
    return status;
}

// The check door with the report format of --format (NULL: the request's own).
static const char *check_format;

static void check_as(api_response *out, const char *body, size_t len, const char *op_from_path,
                     const api_options *opt) {
    grade_json_check_as(out, body, len, op_from_path, opt, check_format);
}

int cli_check(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: convd check [--format FORMAT] [FILE]\n"
                   "\n"
                   "Grades one check request (JSON) from FILE, or standard input when FILE is\n"
                   "absent or '-': {\"problem\": ..., \"submission\": {\"dx\": ..., ...},\n"
                   "\"format\": \"convd\" | \"gradescope\" | \"prairielearn\" | \"html\"}, or\n"
                   "{\"cases\": [...]}. --format overrides the request's format (html: a page\n"
                   "with a heatmap of each wrong tensor). Writes the verdict to standard output.\n"
                   "Exit status: 0 for any verdict, 2 for a request that cannot be graded\n"
                   "(error JSON on standard output), 1 for an internal failure. Formats and\n"
                   "options: docs/GRADING.md.\n");
            return 0;
        }
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            check_format = argv[++i];
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "convd check: unknown option '%s' (see convd check --help)\n", argv[i]);
            return 2;
        }
        if (path) {
            fprintf(stderr, "convd check: one FILE at most\n");
            return 2;
        }
        path = argv[i];
    }
    return run_file(check_as, "check", path);
}

// A whole number for option `name`, or a message and false.
static bool whole_arg(uint64_t *out, const char *name, const char *text) {
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || n > (1ull << 53)) {
        fprintf(stderr, "convd problem: %s takes a whole number from 0 to 2^53\n", name);
        return false;
    }
    *out = n;
    return true;
}

int cli_problem(int argc, char **argv) {
    const char *path = NULL, *suite = NULL;
    uint64_t seed = 0, index = 0;
    bool has_index = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            printf("usage: convd problem [FILE]\n"
                   "       convd problem --suite NAME [--seed N] [--index I]\n"
                   "\n"
                   "Generates problems with explicit tensors, bit-identical everywhere: from a\n"
                   "generator spec (JSON in FILE or on standard input: {\"seed\", \"op\",\n"
                   "\"x_shape\", \"w_shape\", \"bias\", \"stride\", \"padding\", ...}; \"op\" is\n"
                   "conv1d, conv2d (default), conv3d or conv_transpose1d/2d/3d) or from a suite\n"
                   "(\"cs231n\", \"cs231n_uneven\", \"full\" or \"family\", 10 problems each;\n"
                   "--index picks one). Writes\n"
                   "{\"problems\": [{\"name\", \"spec\", \"problem\"}, ...]}; give a problem's\n"
                   "\"spec\" back to convd check. Exit status as convd check's.\n");
            return 0;
        }
        if (strcmp(arg, "--suite") == 0 && i + 1 < argc) {
            suite = argv[++i];
        } else if (strcmp(arg, "--seed") == 0 && i + 1 < argc) {
            if (!whole_arg(&seed, arg, argv[++i])) return 2;
        } else if (strcmp(arg, "--index") == 0 && i + 1 < argc) {
            if (!whole_arg(&index, arg, argv[++i])) return 2;
            has_index = true;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "convd problem: unknown option '%s' (see convd problem --help)\n",
                    arg);
            return 2;
        } else if (path) {
            fprintf(stderr, "convd problem: one FILE at most\n");
            return 2;
        } else {
            path = arg;
        }
    }
    if (!suite && (has_index || seed)) {
        fprintf(stderr, "convd problem: --seed and --index go with --suite\n");
        return 2;
    }
    if (!suite) return run_file(grade_json_problem, "problem", path);
    if (path) {
        fprintf(stderr, "convd problem: give a FILE or --suite, not both\n");
        return 2;
    }
    api_buf body = {0};
    api_buf_puts(&body, "{\"suite\":");
    api_buf_json_string(&body, suite);
    api_buf_printf(&body, ",\"seed\":%" PRIu64, seed);
    if (has_index) api_buf_printf(&body, ",\"index\":%" PRIu64, index);
    api_buf_puts(&body, "}");
    if (body.failed) {
        api_buf_free(&body);
        return 1;
    }
    const int status = run_body(grade_json_problem, body.data, body.len);
    api_buf_free(&body);
    return status;
}
