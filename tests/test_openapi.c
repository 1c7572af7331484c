// api/openapi.yaml: linted by Redocly's CLI (from the npm registry, pinned in tools/; installed
// there with `npm ci` on the first run) with its recommended rules, warnings as errors; and
// every route of the server's route table documented with its method (the v2 models' routes
// under /v2/models/{model}, each model in that parameter's enum).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/blas_boot.h"
#include "server/http_routes.h"
#include "tests/testlib.h"

static const char redocly[] = "tools/node_modules/.bin/redocly";

static void test_lint(void) {
    t_tools_installed(redocly);
    // No telemetry, no update check: the lint is the only thing that should talk here.
    int rc = t_shell("REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true timeout 300 "
                   "tools/node_modules/.bin/redocly lint --config tools/redocly.yaml "
                   "api/openapi.yaml 2>&1");
    CHECK(rc == 0, "redocly lint api/openapi.yaml: exit %d", rc);
}

// The document's text for `path`: from its "  /path:" line to the next path (or components).
static const char *path_section(const char *yaml, const char *path, size_t *len) {
    char key[600];
    snprintf(key, sizeof key, "\n  %s:\n", path);
    const char *at = strstr(yaml, key);
    if (!at) return NULL;
    at += strlen(key);
    const char *end = at;
    while ((end = strstr(end, "\n  ")) && end[3] == ' ') end++; // lines indented deeper
    *len = end ? (size_t)(end - at) : strlen(at);
    return at;
}

static void test_routes_documented(void) {
    char *yaml = t_read_file("api/openapi.yaml", NULL);
    if (!CHECK(yaml != NULL, "api/openapi.yaml readable")) return;
    for (size_t i = 0; i < http_n_routes; i++) {
        const http_route *r = &http_routes[i];
        char path[512];
        snprintf(path, sizeof path, "%s", r->path);
        // A v2 model's routes are /v2/models/{model}..., the model named in the Model enum.
        if (strncmp(path, "/v2/models/", 11) == 0) {
            char model[128];
            snprintf(model, sizeof model, "%.*s", (int)strcspn(path + 11, "/"), path + 11);
            const char *models = strstr(yaml, "\n    Model:\n");
            const char *end = models ? strstr(models + 1, "\n\n") : NULL;
            models = models ? strstr(models, "enum: [") : NULL;
            char *listed = models && end ? strstr(models, model) : NULL;
            CHECK(listed && listed < end && (listed[-1] == ' ' || listed[-1] == '[') &&
                      (listed[strlen(model)] == ',' || listed[strlen(model)] == ']'),
                  "the v2 model %s is in the Model parameter's enum", model);
            char rest[128];
            snprintf(rest, sizeof rest, "%s", r->path + 11 + strlen(model));
            snprintf(path, sizeof path, "/v2/models/{model}%s", rest);
        }
        size_t len = 0;
        const char *section = path_section(yaml, path, &len);
        const char *method = r->methods & HTTP_POST ? "\n    post:" : "\n    get:";
        char *text = section ? strndup(section - 1, len + 1) : NULL;
        CHECK(text && strstr(text, method), "%s %s is in api/openapi.yaml (as %s)",
              r->methods & HTTP_POST ? "POST" : "GET", r->path, path);
        free(text);
    }
    free(yaml);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    test_routes_documented();
    test_lint();
    return t_finish("test_openapi");
}
