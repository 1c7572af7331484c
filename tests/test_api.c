// codec_run_json in-process: the golden cases (body op or URL op), outputs and ranks as the spec
// says, numbers through the whole pipeline bit for bit, non-finite results, limits, error
// bodies, and the lifter's corner cases. core's naive reference (conv_ref) judges the
// geometry mapping on random layers with asymmetric padding.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_buf.h"
#include "api/api_errors.h"
#include "api/codec/codec.h"
#include "core/conv_ref.h"
#include "server/blas_boot.h"
#include "tests/harness/api_harness.h"
#include "tests/testlib.h"

static uint64_t seed = 0xa91;

#if defined(__SANITIZE_ADDRESS__)
enum { SCALE = 5 }; // the sanitized build checks the same things on fewer mutations
#else
enum { SCALE = 1 };
#endif

// One request in-process: the parsed response (NULL if it is not JSON) and its status.
static cJSON *run(const char *body, const char *op_from_path, const api_options *opt, int *status) {
    api_response r = {0};
    codec_run_json(&r, body, strlen(body), op_from_path, opt);
    *status = r.status;
    CHECK(r.content_type && strcmp(r.content_type, "application/json") == 0,
          "content type of %.80s", body);
    cJSON *parsed = r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;
    free(r.body);
    return parsed;
}

static const char *error_field(const cJSON *resp, const char *field) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, field);
    return cJSON_IsString(v) ? v->valuestring : "";
}

// Expects a failure with this status, code and path.
static void expect_error(const char *body, const char *op_from_path, const api_options *opt,
                         int status, const char *code, const char *path) {
    int got;
    cJSON *resp = run(body, op_from_path, opt, &got);
    CHECK(resp && got == status && strcmp(error_field(resp, "code"), code) == 0 &&
              strcmp(error_field(resp, "path"), path) == 0 && *error_field(resp, "message"),
          "%.120s: want %d %s at '%s', got %d %s at '%s' (%s)", body, status, code, path, got,
          error_field(resp, "code"), error_field(resp, "path"), error_field(resp, "message"));
    cJSON_Delete(resp);
}

// The flat data of output `name` as doubles (n numbers expected), or false.
static bool output_data(const cJSON *resp, const char *name, double *out, int n) {
    const cJSON *data =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, name), "data");
    if (cJSON_GetArraySize(data) != n) return false;
    int i = 0;
    for (const cJSON *e = data->child; e; e = e->next) {
        if (!cJSON_IsNumber(e)) return false;
        out[i++] = e->valuedouble;
    }
    return true;
}

static char *door_in_process(const char *body, int *status, void *ctx) {
    api_response r = {0};
    codec_run_json(&r, body, strlen(body), *(const char **)ctx, NULL);
    *status = r.status;
    return r.body;
}

static void test_golden(void) {
    const char *no_path = NULL;
    ah_golden_through(door_in_process, &no_path, 200, true, NULL);
    // The same cases with the op in the URL only, as the HTTP front door sends them.
    const char *path_op = NULL;
    ah_golden_through(door_in_process, &path_op, 200, false, &path_op);
}

static void test_op_from_path(void) {
    const char *fwd = "{\"x\": [[1, 2], [3, 4]], \"w\": [[2]]}";
    int status;
    cJSON *resp = run(fwd, "conv2d.forward", NULL, &status);
    double y[4];
    CHECK(status == 200 && output_data(resp, "y", y, 4) && y[0] == 2 && y[3] == 8,
          "op from the URL runs the body");
    cJSON_Delete(resp);
    const char *both = "{\"op\": \"conv2d.forward\", \"x\": [[1, 2], [3, 4]], \"w\": [[2]]}";
    resp = run(both, "conv2d.forward", NULL, &status);
    CHECK(status == 200, "a body op matching the URL is fine");
    cJSON_Delete(resp);
    expect_error(both, "conv2d.backward", NULL, 422, "op_mismatch", "op");
    expect_error(fwd, NULL, NULL, 422, "missing_field", "op");
}

// Which outputs come back: all by default, db only with b, a subset when named.
static void test_outputs(void) {
    const struct {
        const char *extra;
        const char *present, *absent;
    } cases[] = {
        {"", "dx dw", "db y"},
        {", \"b\": [0.5]", "dx dw db", "y"},
        {", \"outputs\": [\"dw\"]", "dw", "dx db y"},
        {", \"b\": [0.5], \"outputs\": [\"db\", \"dx\"]", "dx db", "dw y"},
        {", \"outputs\": [\"db\"]", "db", "dx dw y"}, // db without b: the gradient of a zero bias
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"op\": \"conv2d.backward\", \"dtype\": \"float64\", \"x\": [[1, 2], [3, 4]], "
                 "\"w\": [[2]], \"dy\": [[1, 10], [100, 1000]]%s}",
                 cases[i].extra);
        int status;
        cJSON *resp = run(body, NULL, NULL, &status);
        CHECK(status == 200, "outputs case %zu: %d", i, status);
        char names[64];
        snprintf(names, sizeof names, "%s", cases[i].present);
        for (char *t = strtok(names, " "); t; t = strtok(NULL, " "))
            CHECK(cJSON_HasObjectItem(resp, t), "outputs case %zu: %s should be present", i, t);
        snprintf(names, sizeof names, "%s", cases[i].absent);
        for (char *t = strtok(names, " "); t; t = strtok(NULL, " "))
            CHECK(!cJSON_HasObjectItem(resp, t), "outputs case %zu: %s should be absent", i, t);
        double db[1];
        if (strstr(cases[i].present, "db"))
            CHECK(output_data(resp, "db", db, 1) && db[0] == 1111, "db is the sum of dy");
        cJSON_Delete(resp);
    }
}

// The request's rank is the response's: [C,H,W] gives [F,Ho,Wo] with the same numbers as the
// batch of one; [H,W] gives [Ho,Wo].
static void test_ranks(void) {
    const char *batch = "{\"op\": \"conv2d.backward\", \"dtype\": \"float64\", "
                        "\"x\": [[[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [1, 0, 1]]]], "
                        "\"w\": [[[[1, -1]], [[2, 0.5]]], [[[0, 1]], [[1, 1]]]], \"b\": [1, 2], "
                        "\"dy\": [[[[1, 2], [3, 4]], [[5, 6], [7, 8]]]]}";
    const char *single = "{\"op\": \"conv2d.backward\", \"dtype\": \"float64\", "
                         "\"x\": [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [1, 0, 1]]], "
                         "\"w\": [[[[1, -1]], [[2, 0.5]]], [[[0, 1]], [[1, 1]]]], \"b\": [1, 2], "
                         "\"dy\": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]}";
    int s1, s2;
    cJSON *r1 = run(batch, NULL, NULL, &s1), *r2 = run(single, NULL, NULL, &s2);
    CHECK(s1 == 200 && s2 == 200, "rank 4 and 3 requests run");
    const char *names[] = {"dx", "dw", "db"};
    const char *shapes3[] = {"[2,2,3]", "[2,2,1,2]", "[2]"};
    for (int i = 0; i < 3; i++) {
        double a[16], b[16];
        int n = i == 0 ? 12 : i == 1 ? 8 : 2;
        CHECK(output_data(r1, names[i], a, n) && output_data(r2, names[i], b, n) &&
                  memcmp(a, b, (size_t)n * sizeof *a) == 0,
              "%s of [C,H,W] equals that of [1,C,H,W]", names[i]);
        char *shape = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(r2, names[i]), "shape"));
        CHECK(shape && strcmp(shape, shapes3[i]) == 0, "%s shape %s, want %s", names[i],
              shape ? shape : "", shapes3[i]);
        free(shape);
    }
    cJSON_Delete(r1);
    cJSON_Delete(r2);
    const char *forward3 = "{\"op\": \"conv2d.forward\", \"x\": [[[1, 2, 3], [4, 5, 6]]], "
                           "\"w\": [[[[1, 1]]], [[[2, 0]]]]}";
    cJSON *r3 = run(forward3, NULL, NULL, &s1);
    double y[8];
    const double want[8] = {3, 5, 9, 11, 2, 4, 8, 10};
    char *shape = cJSON_PrintUnformatted(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r3, "y"), "shape"));
    CHECK(s1 == 200 && shape && strcmp(shape, "[2,2,2]") == 0 && output_data(r3, "y", y, 8) &&
              memcmp(y, want, sizeof y) == 0,
          "rank-3 forward gives [F, Ho, Wo]: %s", shape ? shape : "");
    free(shape);
    cJSON_Delete(r3);
}

// Whatever a client sends, it gets the very same values back through a 1x1 identity kernel:
// parsing and printing lose nothing, in both dtypes, over every exponent range.
static void test_numbers_round_trip(void) {
    enum { N = 5000 }; // past the lifter's first growth step (4096)
    for (int dt = 0; dt < 2; dt++) {
        api_buf body = {0};
        static double sent[N];
        api_buf_printf(&body,
                       "{\"op\": \"conv2d.forward\", \"dtype\": \"%s\", \"w\": [[1]], "
                       "\"x\": {\"shape\": [50, 100], \"data\": [",
                       dt ? "float64" : "float32");
        for (int i = 0; i < N; i++) {
            double v = t_rand_uniform(&seed, -1, 1) *
                       pow(10, (double)t_rand_int(&seed, dt ? -300 : -37, dt ? 300 : 37));
            if (i % 97 == 0) v = dt ? 4.9e-324 * (double)t_rand_int(&seed, 1, 1000) : 1.4e-45f;
            if (!dt) v = (float)v;
            sent[i] = v;
            api_buf_printf(&body, "%s%.17g", i ? (i % 7 ? ", " : ",\n\t") : "", v);
        }
        api_buf_puts(&body, "]}}");
        int status;
        cJSON *resp = run(body.data, NULL, NULL, &status);
        static double back[N];
        bool same = status == 200 && output_data(resp, "y", back, N);
        int first_bad = -1;
        // float32 comes back as its shortest decimal: equal once read as a float again.
        for (int i = 0; same && i < N; i++)
            if ((dt ? back[i] != sent[i] : (float)back[i] != (float)sent[i]) ||
                signbit(back[i]) != signbit(sent[i])) {
                same = false;
                first_bad = i;
            }
        CHECK(same, "%s values come back unchanged (first difference at %d: %.17g vs %.17g)",
              dt ? "float64" : "float32", first_bad, first_bad >= 0 ? back[first_bad] : 0,
              first_bad >= 0 ? sent[first_bad] : 0);
        cJSON_Delete(resp);
        api_buf_free(&body);
    }
}

// A float32 overflow in the arithmetic is not an error: the response stays JSON, with null
// where the values are not finite, and meta says so.
static void test_non_finite_result(void) {
    const char *body = "{\"op\": \"conv2d.forward\", \"x\": [[3e38, 1]], \"w\": [[10]]}";
    int status;
    cJSON *resp = run(body, NULL, NULL, &status);
    const cJSON *data =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "y"), "data");
    const cJSON *warnings = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(resp, "meta"), "warnings");
    CHECK(status == 200 && cJSON_IsNull(cJSON_GetArrayItem(data, 0)) &&
              cJSON_GetArrayItem(data, 1)->valuedouble == 10 && cJSON_GetArraySize(warnings) == 1 &&
              strstr(cJSON_GetArrayItem(warnings, 0)->valuestring, "y has 1 non-finite"),
          "overflow printed as null with a warning");
    cJSON_Delete(resp);
    resp = run("{\"op\": \"conv2d.forward\", \"x\": [[3, 1]], \"w\": [[10]]}", NULL, NULL, &status);
    CHECK(!cJSON_HasObjectItem(cJSON_GetObjectItemCaseSensitive(resp, "meta"), "warnings"),
          "no warnings when all is finite");
    cJSON_Delete(resp);
}

static void test_meta(void) {
    int status;
    cJSON *resp = run("{\"op\": \"conv2d.forward\", \"dtype\": \"float64\", \"padding\": "
                      "\"same\", \"x\": [[1, 2, 3], [4, 5, 6]], \"w\": [[1, 1], [1, 1]]}",
                      NULL, NULL, &status);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(resp, "meta");
    char *padding = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(meta, "padding"));
    CHECK(status == 200 &&
              strcmp(cJSON_GetObjectItemCaseSensitive(meta, "op")->valuestring, "conv2d.forward") ==
                  0 &&
              strcmp(cJSON_GetObjectItemCaseSensitive(meta, "dtype")->valuestring, "float64") ==
                  0 &&
              cJSON_GetObjectItemCaseSensitive(meta, "elapsed_ms")->valuedouble >= 0 &&
              cJSON_GetObjectItemCaseSensitive(meta, "flops")->valuedouble == 2 * 6 * 4 &&
              padding && strcmp(padding, "[0,1,0,1]") == 0,
          "meta: op, dtype, elapsed_ms, flops, the padding \"same\" became (%s)",
          padding ? padding : "");
    free(padding);
    cJSON_Delete(resp);
    // meta.algorithm says what ran: direct for a 2x2 kernel under "auto"; Winograd where it is
    // asked for on a 3x3 stride-1 layer (dilated too), with the reference's answer all the same.
    // With the identity diagonal as w, padded by 1: x[r-1][c-1] + x[r][c] + x[r+1][c+1]; under
    // dilation 2, padded by 2: x[r-2][c-2] + x[r][c] + x[r+2][c+2].
    const char *bodies[][3] = {
        {"{\"op\": \"conv2d.forward\", \"x\": [[1, 2], [3, 4]], \"w\": [[1, 1], [1, 1]]}",
         "direct", "[10]"},
        {"{\"op\": \"conv2d.forward\", \"algorithm\": \"winograd\", \"padding\": 1, \"x\": "
         "[[1, 2, 3], [4, 5, 6], [7, 8, 9]], \"w\": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}",
         "winograd", "[6,8,3,12,15,8,7,12,14]"},
        {"{\"op\": \"conv2d.forward\", \"algorithm\": \"direct\", \"padding\": 1, \"x\": "
         "[[1, 2, 3], [4, 5, 6], [7, 8, 9]], \"w\": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}",
         "direct", "[6,8,3,12,15,8,7,12,14]"},
        {"{\"op\": \"conv2d.forward\", \"algorithm\": \"winograd\", \"padding\": 2, "
         "\"dilation\": 2, \"x\": [[1, 2, 3], [4, 5, 6], [7, 8, 9]], \"w\": [[1, 0, 0], [0, 1, "
         "0], [0, 0, 1]]}",
         "winograd", "[10,2,3,4,5,6,7,8,10]"},
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        resp = run(bodies[i][0], NULL, NULL, &status);
        const cJSON *algo = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(resp, "meta"), "algorithm");
        char *y = cJSON_PrintUnformatted(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "y"), "data"));
        CHECK(status == 200 && cJSON_IsString(algo) &&
                  strcmp(algo->valuestring, bodies[i][1]) == 0 && y &&
                  strcmp(y, bodies[i][2]) == 0,
              "meta.algorithm is %s, y %s (%s)", bodies[i][1], bodies[i][2], y ? y : "");
        free(y);
        cJSON_Delete(resp);
    }
}

// The layer's parameters reach core as meant, judged by the naive reference on random layers:
// asymmetric padding [top, bottom, left, right], [sh, sw], [dh, dw], groups.
static void test_geometry_against_reference(void) {
    for (int trial = 0; trial < 40; trial++) {
        conv_geom g = {0};
        g.groups = t_rand_int(&seed, 1, 2);
        g.n = t_rand_int(&seed, 1, 2);
        g.c = g.groups * t_rand_int(&seed, 1, 2);
        g.f = g.groups * t_rand_int(&seed, 1, 2);
        g.h = t_rand_int(&seed, 3, 7);
        g.w = t_rand_int(&seed, 3, 7);
        g.kh = t_rand_int(&seed, 1, 3);
        g.kw = t_rand_int(&seed, 1, 3);
        g.stride_h = t_rand_int(&seed, 1, 2);
        g.stride_w = t_rand_int(&seed, 1, 3);
        g.dilation_h = t_rand_int(&seed, 1, 2);
        g.dilation_w = 1;
        g.pad_top = t_rand_int(&seed, 0, 2);
        g.pad_bottom = t_rand_int(&seed, 0, 2);
        g.pad_left = t_rand_int(&seed, 0, 2);
        g.pad_right = t_rand_int(&seed, 0, 2);
        if (conv_ref_out_size(g.h, g.kh, g.stride_h, g.dilation_h, g.pad_top, g.pad_bottom) < 1 ||
            conv_ref_out_size(g.w, g.kw, g.stride_w, g.dilation_w, g.pad_left, g.pad_right) < 1)
            continue;
        int64_t nx = g.n * g.c * g.h * g.w, nw = g.f * (g.c / g.groups) * g.kh * g.kw;
        int64_t ny =
            g.n * g.f *
            conv_ref_out_size(g.h, g.kh, g.stride_h, g.dilation_h, g.pad_top, g.pad_bottom) *
            conv_ref_out_size(g.w, g.kw, g.stride_w, g.dilation_w, g.pad_left, g.pad_right);
        double *x = malloc((size_t)nx * sizeof *x), *w = malloc((size_t)nw * sizeof *w);
        double *want = malloc((size_t)ny * sizeof *want), *got = malloc((size_t)ny * sizeof *got);
        api_buf body = {0};
        api_buf_printf(&body,
                       "{\"op\": \"conv2d.forward\", \"dtype\": \"float64\", \"groups\": %lld, "
                       "\"stride\": [%lld, %lld], \"dilation\": [%lld, %lld], "
                       "\"padding\": [%lld, %lld, %lld, %lld], "
                       "\"x\": {\"shape\": [%lld, %lld, %lld, %lld], \"data\": [",
                       (long long)g.groups, (long long)g.stride_h, (long long)g.stride_w,
                       (long long)g.dilation_h, (long long)g.dilation_w, (long long)g.pad_top,
                       (long long)g.pad_bottom, (long long)g.pad_left, (long long)g.pad_right,
                       (long long)g.n, (long long)g.c, (long long)g.h, (long long)g.w);
        for (int64_t i = 0; i < nx; i++)
            api_buf_printf(&body, "%s%.17g", i ? "," : "", x[i] = t_rand_uniform(&seed, -1, 1));
        api_buf_printf(&body, "]}, \"w\": {\"shape\": [%lld, %lld, %lld, %lld], \"data\": [",
                       (long long)g.f, (long long)(g.c / g.groups), (long long)g.kh,
                       (long long)g.kw);
        for (int64_t i = 0; i < nw; i++)
            api_buf_printf(&body, "%s%.17g", i ? "," : "", w[i] = t_rand_uniform(&seed, -1, 1));
        api_buf_puts(&body, "]}}");
        conv_ref_forward(want, x, w, NULL, &g);
        int status;
        cJSON *resp = run(body.data, NULL, NULL, &status);
        th_tensor a = {.data = got, .n = (size_t)ny}, b = {.data = want, .n = (size_t)ny};
        bool read = output_data(resp, "y", got, (int)ny);
        CHECK(status == 200 && read && ah_rel_error(&a, &b) <= 1e-10,
              "trial %d: y matches conv_ref (status %d, %lld outputs read: %d, error %g): %.300s",
              trial, status, (long long)ny, read, read ? ah_rel_error(&a, &b) : -1.0, body.data);
        cJSON_Delete(resp);
        api_buf_free(&body);
        free(x);
        free(w);
        free(want);
        free(got);
    }
}

static void test_limits(void) {
    api_options opt;
    api_options_default(&opt);
    CHECK(opt.max_elements > 0 && opt.max_flops > 0 && opt.threads >= 1 && opt.workspace_cap > 0,
          "defaults are set");
    const char *body = "{\"op\": \"conv2d.forward\", \"x\": [[1, 2, 3], [4, 5, 6]], \"w\": [[1]]}";
    opt.max_elements = 5;
    expect_error(body, NULL, &opt, 422, "too_many_elements", "x");
    opt.max_elements = 6;
    int status;
    cJSON_Delete(run(body, NULL, &opt, &status));
    CHECK(status == 200, "a tensor of exactly max_elements is accepted");
    opt.max_flops = 11;
    expect_error(body, NULL, &opt, 422, "too_much_work", "");
    opt.max_flops = 12;
    cJSON_Delete(run(body, NULL, &opt, &status));
    CHECK(status == 200, "exactly max_flops is accepted");
}

// What the lifter must not get wrong: brackets in strings, keys, placeholders that look like
// user arrays, whitespace, error positions in the client's text, deep nesting.
static void test_lifter_corners(void) {
    expect_error("{\"op\": \"conv2d.forward\", \"x\": \"[[1, 2]]\", \"w\": [[1]]}", NULL, NULL, 422,
                 "invalid_type", "x");
    expect_error("{\"op\": \"conv2d.forward\", \"x\": [[1, 2]], \"w\": [[1]], \"[0]\": [3]}", NULL,
                 NULL, 422, "unknown_field", "[0]");
    expect_error("{\"op\": \"conv2d.forward\", \"note\": \"a \\\"[1, 2]\\\" in a string\", "
                 "\"x\": [[1, 2]], \"w\": [[1]]}",
                 NULL, NULL, 422, "unknown_field", "note");
    // cJSON ends a string at \u0000: the op would read as "conv2d.forward" (issue 12).
    expect_error("{\"op\": \"conv2d.forward\\u0000evil\", \"x\": [[1, 2]], \"w\": [[1]]}", NULL,
                 NULL, 400, "invalid_json", "");
    expect_error("{\"op\": \"conv2d.forward\", \"x\": [[1, 2]], \"w\": [[1]], \"a\\u0000\": 1}", NULL,
                 NULL, 400, "invalid_json", "");
    // [0] is a placeholder for the first lifted array, and also what this client sent.
    expect_error("{\"op\": \"conv2d.forward\", \"stride\": [0], \"x\": [[1, 2]], \"w\": [[1]]}",
                 NULL, NULL, 422, "invalid_value", "stride");
    int status;
    cJSON *resp =
        run("\n{ \"op\" :\"conv2d.forward\",\r\n\t\"x\" : [ [ 1 , -0.0 ] ,\n [ 2E0,3e-0 ] ] ,"
            "\"w\":[[ 1.0e+0 ]] , \"stride\" : [ 1 , 1 ] }\n\n",
            NULL, NULL, &status);
    double y[4];
    CHECK(status == 200 && output_data(resp, "y", y, 4) && y[0] == 1 && y[1] == 0 && y[2] == 2 &&
              y[3] == 3,
          "whitespace anywhere JSON allows it");
    cJSON_Delete(resp);
    resp = run("\xEF\xBB\xBF{\"op\": \"conv2d.forward\", \"x\": [[1]], \"w\": [[2]]}", NULL, NULL,
               &status);
    CHECK(status == 200, "a byte order mark is skipped (%d)", status);
    cJSON_Delete(resp);
    resp = run("{\"op\": \"conv2d.forward\",\n\"x\": [[1, 2],\n[3, 4]],\n\"w\": [[1]] \"b\": [1]}",
               NULL, NULL, &status);
    CHECK(status == 400 && strstr(error_field(resp, "message"), "line 4, column 12"),
          "error position in the client's text after a lifted array: %s",
          error_field(resp, "message"));
    cJSON_Delete(resp);
    // cJSON takes any control character for white space; JSON does not, and a one-number array
    // with one in it must not pass for a lifted array (this once read a freed blob).
    const char *controls[] = {"{\"op\": \"conv2d.forward\", \"stride\": [1, 1], \"x\": [[1, 2]], "
                              "\"w\": [[1]], \"b\": [0.2\x1e]}",
                              "{\"op\": \"conv2d.forward\", \"x\": [[1, 2]],\x01 \"w\": [[1]]}",
                              "{\"op\": \"conv2d.forward\", \"x\": [[1, 2]], \"w\": [[1]], "
                              "\"dtype\": \"float\t32\"}"};
    for (size_t i = 0; i < sizeof controls / sizeof *controls; i++) {
        resp = run(controls[i], NULL, NULL, &status);
        CHECK(status == 400 && strstr(error_field(resp, "message"), "control character"),
              "control character %zu: %d %s", i, status, error_field(resp, "message"));
        cJSON_Delete(resp);
    }
    api_buf deep = {0};
    api_buf_puts(&deep, "{\"op\": \"conv2d.forward\", \"w\": [[1]], \"x\": ");
    for (int i = 0; i < 5000; i++) api_buf_puts(&deep, "[");
    for (int i = 0; i < 5000; i++) api_buf_puts(&deep, "]");
    api_buf_puts(&deep, "}");
    resp = run(deep.data, NULL, NULL, &status);
    CHECK(status == 400 || status == 422, "5000 nested arrays: a clean error (%d)", status);
    cJSON_Delete(resp);
    api_buf_free(&deep);
    // A body cut short is said to be (and never read past: the sanitizer build checks).
    const char *cut[] = {"{\"x\": [[1, 2", "{\"x\": [[1, 2]",  "{\"x\": [1e", "{\"x\": [-", "[",
                         "{\"x\": [\"a",   "{\"x\": [[1], \"a"};
    for (size_t i = 0; i < sizeof cut / sizeof *cut; i++) {
        api_response r = {0};
        size_t len = strlen(cut[i]);
        char *exact = malloc(len); // no NUL after the body
        memcpy(exact, cut[i], len);
        codec_run_json(&r, exact, len, "conv2d.forward", NULL);
        CHECK(r.status == 400 && r.body && strstr(r.body, "cut off"), "truncated %s: %d %.200s",
              cut[i], r.status, r.body ? r.body : "");
        free(r.body);
        free(exact);
    }
}

static void test_error_bodies(void) {
    api_response r = {0};
    api_error_refuse(&r, API_E_BODY_TOO_LARGE, "", "over %d bytes", 10);
    cJSON *resp = r.body ? cJSON_Parse(r.body) : NULL;
    CHECK(r.status == 413 && resp && strcmp(error_field(resp, "code"), "body_too_large") == 0 &&
              !cJSON_HasObjectItem(cJSON_GetObjectItemCaseSensitive(resp, "error"), "path"),
          "api_error_refuse: status from the code, no empty path");
    cJSON_Delete(resp);
    free(r.body);
    for (int c = 0; c < API_E_COUNT; c++) {
        int status = api_code_status((api_code)c);
        const char *name = api_code_name((api_code)c);
        bool snake = *name != '\0';
        for (const char *p = name; *p; p++) snake &= (*p >= 'a' && *p <= 'z') || *p == '_';
        CHECK(snake && status >= 400 && status < 600, "code %d: %s %d", c, name, status);
    }
    api_buf b = {0};
    api_buf_json_string(&b, "q\"b\\s\n\x01 \xc3\xa9 \xff \xe2\x82");
    CHECK(b.data &&
              strcmp(b.data, "\"q\\\"b\\\\s\\u000a\\u0001 \xc3\xa9 \\ufffd \\ufffd\\ufffd\"") == 0,
          "JSON strings escaped, bad UTF-8 replaced: %s", b.data ? b.data : "");
    api_buf_free(&b);
    char quoted[16];
    CHECK(strcmp(api_quote(quoted, sizeof quoted, "a\x01very long field name"),
                 "a?very long ...") == 0,
          "api_quote cuts and cleans: %s", quoted);
}

// Nothing a client sends crashes, leaks or earns a 500: mutated requests (bytes flipped,
// deleted, duplicated, tokens spliced in, cut short) get a 200 or a 400/422 with a JSON body.
// The sanitized build turns any memory error into a failure.
static void test_mutations(void) {
    static const char *const seeds[] = {
        "{\"op\": \"conv2d.backward\", \"dtype\": \"float64\", \"padding\": [1, 0, 2, 1], "
        "\"stride\": [1, 2], \"x\": [[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]], \"w\": [[[[1, -1], "
        "[0.5, 2]]]], \"b\": [0.25], \"dy\": [[[[1, 2], [3, 4], [5, 6]]]], \"outputs\": [\"dx\", "
        "\"db\"]}",
        "{\"op\": \"conv2d.forward\", \"x\": {\"shape\": [1, 2, 2, 2], \"data\": [1e-3, -2.5E2, 3, "
        "4, 5, 6, 7, 8]}, \"w\": {\"shape\": [2, 2, 1, 1], \"data\": [1, 2, 3, 4]}, \"groups\": 1, "
        "\"dilation\": 1, \"padding\": \"same\"}",
    };
    static const char *const splices[] = {"[", "]", "{", "}", ",", "\"", ":", "NaN", "-", "1e999",
                                           "null", "[[", "]]", "0", "\\", "\"x\"", " ", "01", "true"};
    int bad = 0;
    for (int i = 0; i < 20000 / SCALE; i++) {
        const char *seed_text = seeds[i % 2];
        size_t n = strlen(seed_text);
        char body[1024];
        memcpy(body, seed_text, n + 1);
        for (int m = 0, count = (int)t_rand_int(&seed, 1, 4); m < count; m++) {
            size_t at = (size_t)t_rand_int(&seed, 0, (int64_t)n - 1);
            switch (t_rand_int(&seed, 0, 3)) {
            case 0: // flip a byte to any value
                body[at] = (char)t_rand_int(&seed, 1, 255);
                break;
            case 1: // delete a run
                memmove(body + at, body + at + 1, n - at);
                n--;
                break;
            case 2: { // splice a token in
                const char *tok = splices[t_rand_int(&seed, 0, sizeof splices / sizeof *splices - 1)];
                size_t k = strlen(tok);
                if (n + k >= sizeof body) break;
                memmove(body + at + k, body + at, n - at + 1);
                memcpy(body + at, tok, k);
                n += k;
                break;
            }
            default: // cut short
                body[at] = '\0';
                n = at;
            }
            if (n == 0) break;
        }
        api_response r = {0};
        codec_run_json(&r, body, n, NULL, NULL);
        cJSON *parsed = r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;
        bool ok = parsed && (r.status == 200 || r.status == 400 || r.status == 422);
        if (!ok && bad++ < 5)
            CHECK(false, "mutated request got %d %.200s for %.300s", r.status, r.body ? r.body : "",
                  body);
        cJSON_Delete(parsed);
        free(r.body);
    }
    CHECK(bad == 0, "%d of %d mutated requests got no clean answer", bad, 20000 / SCALE);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    test_golden();
    test_op_from_path();
    test_outputs();
    test_ranks();
    test_numbers_round_trip();
    test_non_finite_result();
    test_meta();
    test_geometry_against_reference();
    test_limits();
    test_lifter_corners();
    test_error_bodies();
    test_mutations();
    return t_finish("test_api");
}
