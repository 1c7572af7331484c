#include "tests/harness/api_harness.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double ah_rel_error(const th_tensor *a, const th_tensor *b) {
    double worst = 0;
    for (size_t i = 0; i < a->n; i++)
        worst = fmax(worst, fabs(a->data[i] - b->data[i]) /
                                fmax(1e-8, fabs(a->data[i]) + fabs(b->data[i])));
    return worst;
}

// Whether `got` (any v1 tensor form) matches `want`: same shape, and within the dtype's bound.
static bool ah_tensor_matches(const cJSON *got, const cJSON *want, bool float64, char *why,
                              size_t cap) {
    if (!float64) return th_tensor_close(got, want, 1e-5, why, cap);
    th_tensor g, w;
    bool ok = th_tensor_read(got, &g) && th_tensor_read(want, &w) && g.rank == w.rank &&
              memcmp(g.shape, w.shape, sizeof g.shape) == 0 && g.n == w.n;
    if (!ok) snprintf(why, cap, "shape or form differs");
    if (ok) {
        double rel = ah_rel_error(&g, &w);
        ok = rel <= 1e-10;
        snprintf(why, cap, "relative error %.3g", rel);
    }
    free(g.data);
    free(w.data);
    return ok;
}

// Checks a success response: exactly `names` (and meta) are present, each matching expected.
static void ah_check_response(const char *label, const char *text, const cJSON *expected,
                              const char *const *names, int count, bool float64) {
    cJSON *resp = text ? cJSON_Parse(text) : NULL;
    if (!CHECK(resp != NULL, "%s: the response is not JSON: %.200s", label, text ? text : ""))
        return;
    int fields = cJSON_GetArraySize(resp);
    CHECK(fields == count + 1 && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(resp, "meta")),
          "%s: %d fields in the response, want %d outputs and meta", label, fields, count);
    for (int i = 0; i < count; i++) {
        const cJSON *got = cJSON_GetObjectItemCaseSensitive(resp, names[i]);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(expected, names[i]);
        char why[128] = "missing";
        CHECK(got && want && ah_tensor_matches(got, want, float64, why, sizeof why), "%s: %s: %s",
              label, names[i], why);
    }
    cJSON_Delete(resp);
}

// Replaces every tensor of a request by its nested-array form.
static void ah_nest_tensors(cJSON *request) {
    static const char *const tensors[] = {"x", "w", "b", "dy"};
    for (int i = 0; i < 4; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(request, tensors[i]);
        if (t) cJSON_ReplaceItemInObjectCaseSensitive(request, tensors[i], th_nested(t));
    }
}

// The golden cases of one directory through `door` (see ah_golden_through); returns how many.
static int golden_dir_through(const char *dir_path, ah_door door, void *ctx, int ok_status,
                              bool with_op, const char **op_out) {
    DIR *dir = opendir(dir_path);
    if (!CHECK(dir != NULL, "golden directory %s", dir_path)) return 0;
    int cases = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir_path, e->d_name);
        char *text = t_read_file(path, NULL);
        cJSON *golden = text ? cJSON_Parse(text) : NULL;
        free(text);
        const cJSON *request = cJSON_GetObjectItemCaseSensitive(golden, "request");
        const cJSON *expected = cJSON_GetObjectItemCaseSensitive(golden, "expected");
        if (!CHECK(request && expected, "%s is a golden case", path)) {
            cJSON_Delete(golden);
            continue;
        }
        cases++;
        bool float64 = th_tolerance(request) < 1e-6;
        const cJSON *family = cJSON_GetObjectItemCaseSensitive(golden, "family");
        for (int variant = 0; variant < 4; variant++) {
            bool backward = variant & 1, nested = variant & 2;
            cJSON *req = cJSON_Duplicate(request, true);
            static char op[64]; // outlives the call through op_out
            snprintf(op, sizeof op, "%s.%s", cJSON_IsString(family) ? family->valuestring : "conv2d",
                     backward ? "backward" : "forward");
            cJSON_DeleteItemFromObjectCaseSensitive(req, "op");
            if (with_op) cJSON_AddStringToObject(req, "op", op);
            if (op_out) *op_out = op;
            if (!backward) cJSON_DeleteItemFromObjectCaseSensitive(req, "dy");
            if (nested) ah_nest_tensors(req);
            char *body = cJSON_PrintUnformatted(req);
            int status = -1;
            char *resp = door(body, &status, ctx);
            char label[256];
            snprintf(label, sizeof label, "%s %s %s", e->d_name, op, nested ? "nested" : "object");
            if (CHECK(status == ok_status, "%s: status %d: %.300s", label, status,
                      resp ? resp : "")) {
                const char *outputs[3];
                int count = 0;
                if (!backward)
                    outputs[count++] = "y";
                else
                    for (int k = 0; k < 3; k++) {
                        const char *name = (const char *[]){"dx", "dw", "db"}[k];
                        if (cJSON_GetObjectItemCaseSensitive(expected, name))
                            outputs[count++] = name;
                    }
                ah_check_response(label, resp, expected, outputs, count, float64);
            }
            free(resp);
            free(body);
            cJSON_Delete(req);
        }
        cJSON_Delete(golden);
    }
    closedir(dir);
    return cases;
}

int ah_golden_through(ah_door door, void *ctx, int ok_status, bool with_op, const char **op_out) {
    char family_dir[1024];
    snprintf(family_dir, sizeof family_dir, "%s/family", t_golden_dir());
    int conv2d = golden_dir_through(t_golden_dir(), door, ctx, ok_status, with_op, op_out);
    int family = golden_dir_through(family_dir, door, ctx, ok_status, with_op, op_out);
    CHECK(conv2d >= 15 && family >= 24, "golden cases found: %d conv2d, %d of the other ops",
          conv2d, family);
    return conv2d + family;
}
