// The grading front door's JSON (api/grade/grade_json.h): problems generated and read back, right
// answers (from the naive reference, core/conv_ref.h) passing in every problem form, mistaken
// ones diagnosed, every op of the family (its right answers from the v1 door, its students'
// unfinished answers), the three output formats with the fields their platforms read, and bad
// requests answered with the spec's error JSON and the right code and path, never a crash or
// a 500 (every prefix of a valid request is tried).
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_buf.h"
#include "api/codec/codec.h"
#include "api/codec/codec_json.h"
#include "api/grade/grade.h"
#include "api/grade/grade_json.h"
#include "api/grade/grade_render.h"
#include "core/conv_ref.h"
#include "server/blas_boot.h"
#include "tests/testlib.h"

typedef void (*door_fn)(api_response *, const char *, size_t, const char *, const api_options *);

// Calls a door; returns the parsed body (NULL when it is not JSON) and *status.
static cJSON *call(door_fn door, const char *body, int *status) {
    api_response r = {0};
    door(&r, body, strlen(body), NULL, NULL);
    *status = r.status;
    cJSON *doc = r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;
    free(r.body);
    return doc;
}

static const char *str_at(const cJSON *obj, const char *name) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : "";
}

static double num_at(const cJSON *obj, const char *name) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(item) ? item->valuedouble : NAN;
}

// Checks that a request fails with `code`, HTTP `status` and error path `path`.
static void expect_error(door_fn door, const char *body, int status, const char *code,
                         const char *path) {
    int got = 0;
    cJSON *doc = call(door, body, &got);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(doc, "error");
    CHECK(got == status && strcmp(str_at(err, "code"), code) == 0 &&
              strcmp(str_at(err, "path"), path) == 0 && strlen(str_at(err, "message")) > 20,
          "%.80s: got %d %s at \"%s\" (%s), want %d %s at \"%s\"", body, got, str_at(err, "code"),
          str_at(err, "path"), str_at(err, "message"), status, code, path);
    cJSON_Delete(doc);
}

// A tensor from a {"shape", "data"} object into a heap array of doubles; *n gets its size.
static double *tensor_values(const cJSON *t, int64_t *n) {
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
    *n = cJSON_GetArraySize(data);
    double *out = calloc((size_t)(*n > 0 ? *n : 1), sizeof *out);
    int64_t i = 0;
    for (const cJSON *e = data ? data->child : NULL; e; e = e->next) out[i++] = e->valuedouble;
    return out;
}

static void put_tensor(api_buf *b, const char *name, const grade_shape *s, const double *v) {
    api_buf_printf(b, "\"%s\":{\"shape\":[", name);
    for (int i = 0; i < s->rank; i++) api_buf_printf(b, "%s%" PRId64, i ? "," : "", s->dim[i]);
    api_buf_puts(b, "],\"data\":");
    codec_json_put_numbers(b, v, grade_shape_numel(s), CONV_FLOAT64);
    api_buf_puts(b, "}");
}

// One problem of `convd problem`, with its layer and the right answers from conv_ref.
typedef struct {
    cJSON *entry; // {"name", "spec", "problem"} (owned by the parsed document)
    grade_layer layer;
    double *x, *w, *b, *dy, *right[GRADE_NTENSORS];
    grade_shape shape[GRADE_NTENSORS];
} served;

static void served_free(served *s) {
    free(s->x), free(s->w), free(s->b), free(s->dy);
    for (int t = 0; t < GRADE_NTENSORS; t++) free(s->right[t]);
}

static int64_t int_in(const cJSON *list, int i) {
    return (int64_t)cJSON_GetArrayItem(list, i)->valuedouble;
}

// Reads a served problem's explicit tensors and geometry (4-D problems) and computes the
// right answers with the naive reference.
static bool served_read(served *s, cJSON *entry) {
    memset(s, 0, sizeof *s);
    s->entry = entry;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(entry, "problem");
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(p, "x");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(p, "w");
    const cJSON *xs = cJSON_GetObjectItemCaseSensitive(x, "shape");
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(w, "shape");
    const cJSON *stride = cJSON_GetObjectItemCaseSensitive(p, "stride");
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(p, "padding");
    const cJSON *dil = cJSON_GetObjectItemCaseSensitive(p, "dilation");
    if (cJSON_GetArraySize(xs) != 4 || cJSON_GetArraySize(ws) != 4) return false;
    conv_geom *g = &s->layer.g;
    *g = (conv_geom){.n = int_in(xs, 0), .c = int_in(xs, 1), .h = int_in(xs, 2),
                     .w = int_in(xs, 3), .f = int_in(ws, 0), .kh = int_in(ws, 2),
                     .kw = int_in(ws, 3), .groups = (int64_t)num_at(p, "groups"),
                     .stride_h = int_in(stride, 0), .stride_w = int_in(stride, 1),
                     .dilation_h = int_in(dil, 0), .dilation_w = int_in(dil, 1),
                     .pad_top = int_in(pad, 0), .pad_bottom = int_in(pad, 1),
                     .pad_left = int_in(pad, 2), .pad_right = int_in(pad, 3)};
    s->layer.dtype = CONV_FLOAT64;
    s->layer.rank = 4;
    s->layer.spatial = 2;
    int64_t n;
    s->x = tensor_values(x, &n);
    s->w = tensor_values(w, &n);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(p, "b");
    s->layer.bias = b != NULL;
    if (b) s->b = tensor_values(b, &n);
    s->dy = tensor_values(cJSON_GetObjectItemCaseSensitive(p, "dy"), &n);
    if (n != conv_numel_y(g)) return false;
    for (int t = 0; t < GRADE_NTENSORS; t++) {
        grade_expected_shape(&s->shape[t], &s->layer, (grade_tensor)t);
        s->right[t] = calloc((size_t)grade_shape_numel(&s->shape[t]), sizeof(double));
    }
    conv_ref_forward(s->right[GRADE_Y], s->x, s->w, s->b, g);
    conv_ref_backward_data(s->right[GRADE_DX], s->dy, s->w, g);
    conv_ref_backward_weights(s->right[GRADE_DW], s->dy, s->x, g);
    conv_ref_backward_bias(s->right[GRADE_DB], s->dy, g);
    return true;
}

// The problem's spec (generated form) or its explicit v1 fields, as JSON text.
static char *problem_text(const served *s, bool explicit_form) {
    return cJSON_PrintUnformatted(
        cJSON_GetObjectItemCaseSensitive(s->entry, explicit_form ? "problem" : "spec"));
}

// "problem": ..., "submission": {each tensor of `which` from values[t]} (no braces around).
static void put_case(api_buf *b, const served *s, bool explicit_form, unsigned which,
                     double *const values[GRADE_NTENSORS]) {
    char *problem = problem_text(s, explicit_form);
    api_buf_printf(b, "\"problem\":%s,\"submission\":{", problem);
    free(problem);
    bool first = true;
    for (int t = 0; t < GRADE_NTENSORS; t++) {
        if (!(which & (1u << t))) continue;
        if (!first) api_buf_puts(b, ",");
        put_tensor(b, grade_tensor_name((grade_tensor)t), &s->shape[t], values[t]);
        first = false;
    }
    api_buf_puts(b, "}");
}

// A whole check request for one case, with `extra` fields appended.
static char *check_body(const served *s, bool explicit_form, unsigned which,
                        double *const values[GRADE_NTENSORS], const char *extra) {
    api_buf b = {0};
    api_buf_puts(&b, "{");
    put_case(&b, s, explicit_form, which, values);
    api_buf_printf(&b, "%s}", extra);
    size_t len;
    return api_buf_take(&b, &len);
}

static cJSON *suite_problems(const char *suite, int seed) {
    char body[96];
    snprintf(body, sizeof body, "{\"suite\":\"%s\",\"seed\":%d}", suite, seed);
    int status;
    cJSON *doc = call(grade_json_problem, body, &status);
    CHECK(status == 200 && doc, "problem %s: status %d", body, status);
    return doc;
}

// Problems: every value on the 1/64 grid in [-1, 1), shapes as the spec says, bit-identical
// on a second call, and one index picks one problem.
static void test_problems(void) {
    cJSON *doc = suite_problems("full", 9);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "problems");
    CHECK(cJSON_GetArraySize(list) == 10, "full suite served %d problems", cJSON_GetArraySize(list));
    int off_grid = 0, bad = 0, index = 0;
    for (const cJSON *e = list ? list->child : NULL; e; e = e->next, index++) {
        served s;
        if (!served_read(&s, (cJSON *)e)) {
            bad++;
            continue;
        }
        const int64_t counts[4] = {conv_numel_x(&s.layer.g), conv_numel_w(&s.layer.g),
                                   s.layer.bias ? s.layer.g.f : 0, conv_numel_y(&s.layer.g)};
        const double *vals[4] = {s.x, s.w, s.b, s.dy};
        for (int t = 0; t < 4; t++)
            for (int64_t i = 0; i < counts[t]; i++)
                if (vals[t][i] * 64 != (double)(int64_t)(vals[t][i] * 64) || vals[t][i] < -1 ||
                    vals[t][i] >= 1)
                    off_grid++;
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(e, "spec");
        if (strcmp(str_at(spec, "name"), str_at(e, "name")) != 0 ||
            num_at(spec, "seed") != 9 + index) // problem i of a suite has seed + i
            bad++;
        served_free(&s);
    }
    CHECK(bad == 0 && off_grid == 0, "%d problems unreadable, %d values off the grid", bad,
          off_grid);
    cJSON *again = suite_problems("full", 9);
    CHECK(cJSON_Compare(doc, again, true), "the same suite and seed served different problems");
    cJSON_Delete(again);
    int status;
    cJSON *one = call(grade_json_problem, "{\"suite\":\"full\",\"seed\":9,\"index\":4}", &status);
    const cJSON *only = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(one, "problems"), 0);
    CHECK(status == 200 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(one, "problems")) == 1 &&
              cJSON_Compare(only, cJSON_GetArrayItem(list, 4), true),
          "index 4 is not the suite's fifth problem");
    cJSON_Delete(one);
    cJSON_Delete(doc);
    // a spec gives the problem its spec describes, in its rank
    cJSON *spec = call(grade_json_problem,
                       "{\"seed\":3,\"x_shape\":[5,6],\"w_shape\":[2,3],\"stride\":[1,2],"
                       "\"padding\":\"valid\",\"bias\":false,\"dtype\":\"float32\"}",
                       &status);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(spec, "problems"), 0), "problem");
    const cJSON *dy_shape =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "dy"), "shape");
    CHECK(status == 200 && strcmp(str_at(p, "dtype"), "float32") == 0 &&
              !cJSON_GetObjectItemCaseSensitive(p, "b") && cJSON_GetArraySize(dy_shape) == 2 &&
              int_in(dy_shape, 0) == 4 && int_in(dy_shape, 1) == 2,
          "rank-2 spec: status %d", status);
    cJSON_Delete(spec);
}

static const cJSON *tensor_verdict(const cJSON *doc, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "tensors"), name);
}

// Right answers pass in both problem forms with every tensor; a mistaken dx is diagnosed.
static void test_check_convd(void) {
    cJSON *doc = suite_problems("cs231n", 2);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "problems");
    int wrong_verdicts = 0, checked = 0;
    for (const cJSON *e = list ? list->child : NULL; e; e = e->next) {
        served s;
        if (!served_read(&s, (cJSON *)e)) continue;
        for (int form = 0; form < 2; form++) {
            char *body = check_body(&s, form == 1, 0xF, s.right, "");
            int status;
            cJSON *v = call(grade_json_check, body, &status);
            bool ok = status == 200 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "passed")) &&
                      num_at(v, "score") == 4 && num_at(v, "max_score") == 4;
            for (int t = 0; t < GRADE_NTENSORS; t++) {
                const cJSON *tv = tensor_verdict(v, grade_tensor_name((grade_tensor)t));
                ok = ok && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tv, "diagnosis")) == 0 &&
                     num_at(tv, "mismatches") == 0;
            }
            wrong_verdicts += !ok;
            checked++;
            cJSON_Delete(v);
            free(body);
        }
        served_free(&s);
    }
    CHECK(checked == 20 && wrong_verdicts == 0, "%d of %d right submissions judged wrongly",
          wrong_verdicts, checked);

    // the textbook mistake: dx scattered through the kernel rotated by 180 degrees
    served s;
    served_read(&s, cJSON_GetArrayItem(list, 0));
    grade_problem p;
    grade_problem_adopt(&p, &s.layer, s.x, s.w, s.b, s.dy);
    s.x = s.w = s.b = s.dy = NULL;
    grade_candidates c = {0};
    grade_candidates_build(&c, &p, GRADE_DX);
    const grade_candidate *unflipped = NULL;
    for (size_t i = 0; i < c.count; i++)
        if (strcmp(grade_mutants[c.items[i].mutant].id, "kernel_not_flipped_in_dx") == 0)
            unflipped = &c.items[i];
    double *values[GRADE_NTENSORS] = {NULL, unflipped ? unflipped->data : s.right[GRADE_DX],
                                      s.right[GRADE_DW], s.right[GRADE_DB]};
    char *body = check_body(&s, false, 0xE, values, ",\"format\":\"convd\"");
    int status;
    cJSON *v = call(grade_json_check, body, &status);
    const cJSON *dx = tensor_verdict(v, "dx");
    const cJSON *diag = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dx, "diagnosis"), 0);
    const cJSON *worst = cJSON_GetObjectItemCaseSensitive(dx, "worst");
    const cJSON *index = cJSON_GetObjectItemCaseSensitive(worst, "index");
    CHECK(status == 200 && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "passed")) &&
              num_at(v, "score") == 2 && num_at(v, "max_score") == 3 &&
              strcmp(str_at(diag, "id"), "kernel_not_flipped_in_dx") == 0 &&
              strstr(str_at(diag, "hint"), "180 degrees") && strlen(str_at(diag, "evidence")) > 10 &&
              cJSON_GetArraySize(index) == 4 && cJSON_GetObjectItemCaseSensitive(index, "h") &&
              !tensor_verdict(v, "y"),
          "unflipped dx: status %d score %g id %s", status, num_at(v, "score"), str_at(diag, "id"));
    cJSON_Delete(v);
    free(body);

    // float32 answers for a float64 problem: right, with a warning; given tolerances are final
    for (int64_t i = 0; i < grade_shape_numel(&s.shape[GRADE_DW]); i++)
        s.right[GRADE_DW][i] = (double)(float)(s.right[GRADE_DW][i] * (1 + 1e-6));
    body = check_body(&s, false, 1u << GRADE_DW, s.right, "");
    v = call(grade_json_check, body, &status);
    const cJSON *dw = tensor_verdict(v, "dw");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(dw, "passed")) &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(dw, "warnings")) == 1,
          "float32-close dw: passed %d", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(dw, "passed")));
    cJSON_Delete(v);
    free(body);
    body = check_body(&s, false, 1u << GRADE_DW, s.right,
                      ",\"tolerance\":{\"atol\":1e-12,\"rtol\":0},\"points\":{\"dw\":2.5}");
    v = call(grade_json_check, body, &status);
    dw = tensor_verdict(v, "dw");
    CHECK(status == 200 && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(dw, "passed")) &&
              num_at(v, "max_score") == 2.5 &&
              num_at(cJSON_GetObjectItemCaseSensitive(dw, "tolerance"), "atol") == 1e-12,
          "given tolerance: status %d max_score %g", status, num_at(v, "max_score"));
    cJSON_Delete(v);
    free(body);
    grade_candidates_free(&c);
    grade_problem_free(&p);
    served_free(&s);
    cJSON_Delete(doc);
}

static bool has_keys(const cJSON *obj, const char *const *keys, int n) {
    for (int i = 0; i < n; i++)
        if (!cJSON_GetObjectItemCaseSensitive(obj, keys[i])) return false;
    return true;
}

// A batch of every problem of a suite, half of them with dw not summed over the batch: the
// platform formats carry one test per problem and tensor, with the fields they read.
static void test_formats(void) {
    cJSON *doc = suite_problems("cs231n", 5);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "problems");
    api_buf cases = {0};
    int i = 0;
    for (const cJSON *e = list ? list->child : NULL; e; e = e->next, i++) {
        served s;
        if (!served_read(&s, (cJSON *)e)) continue;
        if (i % 2) { // dw of the last image only
            const conv_geom *g = &s.layer.g;
            conv_geom one = *g;
            one.n = 1;
            conv_ref_backward_weights(s.right[GRADE_DW], s.dy + (g->n - 1) * conv_numel_y(&one),
                                      s.x + (g->n - 1) * conv_numel_x(&one), &one);
        }
        api_buf_printf(&cases, "%s{\"name\":\"p%d\",", i ? "," : "", i);
        put_case(&cases, &s, false, 0xE, s.right);
        api_buf_puts(&cases, "}");
        served_free(&s);
    }
    api_buf req = {0};
    const char *formats[] = {"convd", "gradescope", "prairielearn"};
    for (int f = 0; f < 3; f++) {
        req.len = 0;
        api_buf_printf(&req,
                       "{\"format\":\"%s\",\"require\":[\"dx\",\"dw\",\"db\"],\"cases\":[%s]}",
                       formats[f], cases.data);
        int status;
        cJSON *v = call(grade_json_check, req.data, &status);
        CHECK(status == 200 && v, "%s batch: status %d", formats[f], status);
        if (f == 0) {
            const cJSON *mistakes = cJSON_GetObjectItemCaseSensitive(v, "mistakes");
            const cJSON *first_case = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(v, "cases"), 1);
            CHECK(num_at(v, "score") == 25 && num_at(v, "max_score") == 30 &&
                      strcmp(str_at(cJSON_GetArrayItem(mistakes, 0), "id"), "not_summed_over_batch") == 0 &&
                      num_at(cJSON_GetArrayItem(mistakes, 0), "cases") == 5 &&
                      strcmp(str_at(first_case, "name"), "p1") == 0,
                  "convd batch: score %g/%g, first mistake %s", num_at(v, "score"),
                  num_at(v, "max_score"), str_at(cJSON_GetArrayItem(mistakes, 0), "id"));
        } else if (f == 1) {
            static const char *const test_keys[] = {"name", "score", "max_score", "status",
                                                    "output", "output_format", "tags",
                                                    "visibility", "extra_data"};
            const cJSON *tests = cJSON_GetObjectItemCaseSensitive(v, "tests");
            int bad = 0, failed = 0;
            for (const cJSON *t = tests ? tests->child : NULL; t; t = t->next) {
                bad += !has_keys(t, test_keys, 9);
                if (strcmp(str_at(t, "status"), "failed") == 0) {
                    failed++;
                    bad += !strstr(str_at(t, "output"), "`not_summed_over_batch`") ||
                           !strstr(str_at(t, "name"), ": dw");
                }
            }
            CHECK(cJSON_GetArraySize(tests) == 30 && bad == 0 && failed == 5 &&
                      num_at(v, "score") == 25 && strstr(str_at(v, "output"), "Score 25"),
                  "gradescope: %d tests, %d malformed, %d failed, score %g",
                  cJSON_GetArraySize(tests), bad, failed, num_at(v, "score"));
        } else {
            static const char *const test_keys[] = {"name", "description", "points",
                                                    "max_points", "message", "output"};
            const cJSON *tests = cJSON_GetObjectItemCaseSensitive(v, "tests");
            int bad = 0;
            for (const cJSON *t = tests ? tests->child : NULL; t; t = t->next)
                bad += !has_keys(t, test_keys, 6);
            CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "gradable")) &&
                      fabs(num_at(v, "score") - 25.0 / 30) < 1e-12 && bad == 0 &&
                      cJSON_GetArraySize(tests) == 30 &&
                      strstr(str_at(v, "message"), "not_summed_over_batch"),
                  "prairielearn: score %g, %d malformed tests", num_at(v, "score"), bad);
        }
        cJSON_Delete(v);
    }
    api_buf_free(&req);
    api_buf_free(&cases);
    cJSON_Delete(doc);
}

// PrairieLearn's 1 MB: the most cases, every tensor wrong, still under it.
static void test_prairielearn_size(void) {
    api_buf req = {0};
    api_buf_puts(&req, "{\"format\":\"prairielearn\",\"require\":[\"y\",\"dx\",\"dw\",\"db\"],"
                       "\"cases\":[");
    for (int i = 0; i < GRADE_MAX_CASES; i++)
        api_buf_printf(&req, "%s{\"problem\":{\"suite\":\"full\",\"seed\":%d,\"index\":%d},"
                             "\"submission\":{\"error\":\"ZeroDivisionError: division by zero "
                             "in conv_backward_naive, line %d\"}}",
                       i ? "," : "", i, i % 10, i);
    api_buf_puts(&req, "]}");
    api_response r = {0};
    grade_json_check(&r, req.data, req.len, NULL, NULL);
    cJSON *v = r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;
    CHECK(r.status == 200 && v && r.len <= GRADE_PRAIRIELEARN_MAX_BYTES &&
              num_at(v, "score") == 0 &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v, "tests")) == 4 * GRADE_MAX_CASES,
          "256 failing cases: status %d, %zu bytes", r.status, r.len);
    cJSON_Delete(v);
    free(r.body);
    api_buf_free(&req);
}

// Answers a student's NumPy code can produce that the v1 codec refuses: NaN and Infinity
// (Python's json writes them bare), empty arrays (dx_pad[:, :, 0:-0, 0:-0]), and what the code
// raised instead of an answer.
static void test_student_answers(void) {
    const char *spec = "{\"suite\":\"cs231n\",\"seed\":1,\"index\":2}"; // stride 2, pad 0
    char body[1024];
    snprintf(body, sizeof body,
             "{\"problem\":%s,\"submission\":{\"db\":[NaN, 1.0, Infinity, -Infinity, 0.5],"
             "\"dx\":[[[], []], [[], []], [[], []]], \"error\":\"no dw: IndexError\"},"
             "\"require\":[\"dw\"]}",
             spec);
    int status;
    cJSON *v = call(grade_json_check, body, &status);
    const cJSON *db = tensor_verdict(v, "db"), *dx = tensor_verdict(v, "dx"),
                *dw = tensor_verdict(v, "dw");
    const cJSON *nf = cJSON_GetObjectItemCaseSensitive(db, "non_finite");
    const cJSON *worst = cJSON_GetObjectItemCaseSensitive(db, "worst");
    CHECK(status == 200 && num_at(nf, "nan") + num_at(nf, "inf") == 3 &&
              num_at(db, "mismatches") >= 3 && strcmp(str_at(worst, "submitted"), "nan") == 0,
          "NaN db: status %d, non-finite %g, worst %s", status,
          num_at(nf, "nan") + num_at(nf, "inf"), str_at(worst, "submitted"));
    const cJSON *dx_diag = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dx, "diagnosis"), 0);
    CHECK(strcmp(str_at(dx_diag, "id"), "dx_cropped_to_empty") == 0 &&
              !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(dx, "passed")),
          "empty dx diagnosed as %s", str_at(dx_diag, "id"));
    CHECK(!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(dw, "submitted")) &&
              strcmp(str_at(dw, "error"), "no dw: IndexError") == 0 && num_at(v, "max_score") == 3,
          "required dw missing: error \"%s\", max %g", str_at(dw, "error"), num_at(v, "max_score"));
    cJSON_Delete(v);
    // the object form of an empty answer
    snprintf(body, sizeof body,
             "{\"problem\":%s,\"submission\":{\"dx\":{\"shape\":[3,2,0,0],\"data\":[]}}}", spec);
    v = call(grade_json_check, body, &status);
    dx_diag = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tensor_verdict(v, "dx"), "diagnosis"), 0);
    CHECK(status == 200 && strcmp(str_at(dx_diag, "id"), "dx_cropped_to_empty") == 0,
          "empty dx object: status %d, %s", status, str_at(dx_diag, "id"));
    cJSON_Delete(v);
    // huge sizes beside a 0: still no values, and no overflow
    snprintf(body, sizeof body,
             "{\"problem\":%s,\"submission\":{\"dx\":{\"shape\":[1099511627776,"
             "1099511627776,1099511627776,0],\"data\":[]}}}",
             spec);
    v = call(grade_json_check, body, &status);
    CHECK(status == 200 && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "passed")),
          "huge empty dx: status %d", status);
    cJSON_Delete(v);
    // an answer over the server's element limit
    api_options small;
    api_options_default(&small);
    small.max_elements = 4;
    snprintf(body, sizeof body,
             "{\"problem\":{\"x\":[[1,2],[3,4]],\"w\":[[1]]},\"submission\":{\"y\":"
             "[1,2,3,4,5,6]}}");
    api_response r = {0};
    grade_json_check(&r, body, strlen(body), NULL, &small);
    CHECK(r.status == 422 && r.body && strstr(r.body, "too_many_elements") &&
              strstr(r.body, "submission.y"),
          "oversized answer: %d %s", r.status, r.body ? r.body : "");
    free(r.body);
    // what a student's code returns instead of an array: a NaN scalar (NumPy's 0-d array), a
    // bare number; and per-tensor errors with the grader's note
    snprintf(body, sizeof body,
             "{\"problem\":%s,\"submission\":{\"dw\":{\"shape\":[],\"data\":[NaN]},"
             "\"db\":0,\"error\":{\"dx\":\"dx is None\",\"y\":\"out is None\"},"
             "\"note\":\"the reference cache was used\"},\"require\":[\"y\",\"dx\"]}",
             spec);
    v = call(grade_json_check, body, &status);
    dw = tensor_verdict(v, "dw");
    db = tensor_verdict(v, "db");
    const cJSON *dw_shape = cJSON_GetObjectItemCaseSensitive(dw, "shape");
    CHECK(status == 200 && num_at(v, "score") == 0 && num_at(v, "max_score") == 4 &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(dw_shape, "submitted")) == 0 &&
              num_at(cJSON_GetObjectItemCaseSensitive(dw, "non_finite"), "nan") == 1 &&
              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(db, "submitted")) &&
              strcmp(str_at(tensor_verdict(v, "dx"), "error"), "dx is None") == 0 &&
              strcmp(str_at(tensor_verdict(v, "y"), "error"), "out is None") == 0 &&
              strcmp(str_at(v, "note"), "the reference cache was used") == 0,
          "scalar answers: status %d, score %g of %g, note %s", status, num_at(v, "score"),
          num_at(v, "max_score"), str_at(v, "note"));
    cJSON_Delete(v);
}

// ---------------------------------------------------------------------------------------------
// The other families through the doors.

// The v1 door's answer to problem `prob` (explicit tensors, "op" the family or absent for
// conv2d) run as the family's `pass` ("forward" or "backward"); NULL when it fails.
static cJSON *v1_answer(const cJSON *prob, const char *pass) {
    cJSON *req = cJSON_Duplicate(prob, true);
    const char *family = str_at(prob, "op");
    char op[64];
    snprintf(op, sizeof op, "%s.%s", *family ? family : "conv2d", pass);
    cJSON_DeleteItemFromObjectCaseSensitive(req, "op");
    cJSON_AddStringToObject(req, "op", op);
    if (strcmp(pass, "forward") == 0) cJSON_DeleteItemFromObjectCaseSensitive(req, "dy");
    char *text = cJSON_PrintUnformatted(req);
    api_response r = {0};
    codec_run_json(&r, text, strlen(text), NULL, NULL);
    cJSON *out = r.status == 200 && r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;
    free(r.body);
    free(text);
    cJSON_Delete(req);
    return out;
}

// {"problem": problem, "submission": submission, ...more}, graded.
static cJSON *check_with(const cJSON *problem, const cJSON *submission, const char *more,
                         int *status) {
    char *p = cJSON_PrintUnformatted(problem), *s = cJSON_PrintUnformatted(submission);
    api_buf b = {0};
    api_buf_printf(&b, "{\"problem\":%s,\"submission\":%s%s}", p, s, more);
    cJSON *v = call(grade_json_check, b.data, status);
    api_buf_free(&b);
    free(p);
    free(s);
    return v;
}

// Every family, from a generator spec naming its op (with padding modes and output_padding):
// the problem comes back with them, right answers computed by the v1 door (held to PyTorch's
// golden cases by the v1 tests) pass from the spec and from the explicit problem, a negated
// dx is diagnosed, and the HTML page draws the 1-d and 3-d tensors.
static void test_family_doors(void) {
    static const char *const specs[] = {
        "{\"op\":\"conv1d\",\"seed\":3,\"x_shape\":[2,3,7],\"w_shape\":[4,3,3],\"padding\":2,"
        "\"padding_mode\":\"reflect\"}",
        "{\"op\":\"conv1d\",\"seed\":8,\"x_shape\":[3,9],\"w_shape\":[2,3,4],\"padding\":\"same\","
        "\"padding_mode\":\"circular\",\"bias\":false}",
        "{\"op\":\"conv3d\",\"seed\":4,\"x_shape\":[2,2,4,5,4],\"w_shape\":[3,2,2,3,2],"
        "\"padding\":1,\"padding_mode\":\"replicate\",\"stride\":[1,2,1]}",
        "{\"op\":\"conv_transpose1d\",\"seed\":5,\"x_shape\":[2,3,5],\"w_shape\":[3,2,4],"
        "\"stride\":2,\"padding\":1}",
        "{\"op\":\"conv_transpose2d\",\"seed\":3,\"x_shape\":[2,4,3,4],\"w_shape\":[4,1,3,3],"
        "\"stride\":2,\"padding\":1,\"output_padding\":1,\"groups\":2}",
        "{\"op\":\"conv_transpose3d\",\"seed\":6,\"x_shape\":[2,2,3,2],\"w_shape\":[2,3,2,2,3],"
        "\"stride\":2,\"output_padding\":[1,0,1],\"dilation\":[1,2,1]}",
        "{\"seed\":3,\"x_shape\":[3,6,5],\"w_shape\":[4,3,3,3],\"padding\":[1,2],"
        "\"padding_mode\":\"reflect\"}",
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        int status;
        cJSON *doc = call(grade_json_problem, specs[i], &status);
        const cJSON *entry = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "problems"), 0);
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(entry, "spec");
        const cJSON *prob = cJSON_GetObjectItemCaseSensitive(entry, "problem");
        cJSON *fwd = prob ? v1_answer(prob, "forward") : NULL;
        cJSON *bwd = prob ? v1_answer(prob, "backward") : NULL;
        CHECK(status == 200 && fwd && bwd, "%s: problem %d, v1 answers %s", specs[i], status,
              fwd && bwd ? "yes" : "no");
        if (!fwd || !bwd) {
            cJSON_Delete(doc);
            cJSON_Delete(fwd);
            cJSON_Delete(bwd);
            continue;
        }
        cJSON *sub = cJSON_CreateObject();
        cJSON_AddItemToObject(sub, "y", cJSON_Duplicate(cJSON_GetObjectItem(fwd, "y"), true));
        static const char *const grads[] = {"dx", "dw", "db"};
        for (int t = 0; t < 3; t++)
            if (cJSON_GetObjectItem(bwd, grads[t]))
                cJSON_AddItemToObject(sub, grads[t],
                                      cJSON_Duplicate(cJSON_GetObjectItem(bwd, grads[t]), true));
        const double tensors = cJSON_GetArraySize(sub);
        for (int form = 0; form < 2; form++) {
            cJSON *v = check_with(form ? prob : spec, sub, "", &status);
            CHECK(status == 200 && cJSON_IsTrue(cJSON_GetObjectItem(v, "passed")) &&
                      num_at(v, "score") == tensors,
                  "%s (%s): right answers score %g of %g", specs[i], form ? "explicit" : "spec",
                  num_at(v, "score"), tensors);
            cJSON_Delete(v);
        }
        cJSON *dx = cJSON_GetObjectItem(cJSON_GetObjectItem(sub, "dx"), "data");
        for (cJSON *e = dx ? dx->child : NULL; e; e = e->next)
            cJSON_SetNumberValue(e, -e->valuedouble);
        cJSON *v = check_with(spec, sub, "", &status);
        const cJSON *diag = cJSON_GetArrayItem(
            cJSON_GetObjectItem(tensor_verdict(v, "dx"), "diagnosis"), 0);
        CHECK(status == 200 && num_at(v, "score") == tensors - 1 &&
                  strcmp(str_at(diag, "id"), "sign_flipped") == 0,
              "%s: negated dx scored %g, diagnosed %s", specs[i], num_at(v, "score"),
              str_at(diag, "id"));
        cJSON_Delete(v);
        char *p = cJSON_PrintUnformatted(spec), *s = cJSON_PrintUnformatted(sub);
        api_buf b = {0};
        api_buf_printf(&b, "{\"problem\":%s,\"submission\":%s,\"format\":\"html\"}", p, s);
        api_response r = {0};
        grade_json_check(&r, b.data, b.len, NULL, NULL);
        CHECK(r.status == 200 && r.body && strstr(r.body, "<svg") &&
                  strstr(r.body, "data-tensor=\"dx\""),
              "%s: html report %d", specs[i], r.status);
        free(r.body);
        api_buf_free(&b);
        free(p);
        free(s);
        cJSON_Delete(sub);
        cJSON_Delete(fwd);
        cJSON_Delete(bwd);
        cJSON_Delete(doc);
    }
    // the family suite, whole
    int status;
    cJSON *doc = call(grade_json_problem, "{\"suite\":\"family\",\"seed\":2}", &status);
    const cJSON *list = cJSON_GetObjectItem(doc, "problems");
    CHECK(status == 200 && cJSON_GetArraySize(list) == 10 &&
              strcmp(str_at(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 9), "spec"), "op"),
                     "conv_transpose3d") == 0,
          "family suite: %d, %d problems", status, cJSON_GetArraySize(list));
    cJSON_Delete(doc);
}

// What students' code returns for a transposed layer before it is finished or when it goes
// wrong: zeros, None (left out, but required), a missing tensor, a wrong shape, a NaN, a bare
// number, an extra axis: each graded with a message (a diagnosis, a count of NaN, the shape),
// never refused or a 500.
static void test_family_student_answers(void) {
    const char *problem = "{\"suite\":\"family\",\"seed\":5,\"index\":7}"; // conv_transpose2d
    int status;
    cJSON *doc = call(grade_json_problem, "{\"suite\":\"family\",\"seed\":5,\"index\":7}", &status);
    const cJSON *prob =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "problems"), 0), "problem");
    cJSON *fwd = v1_answer(prob, "forward");
    const cJSON *y = cJSON_GetObjectItem(fwd, "y");
    const cJSON *yshape = cJSON_GetObjectItem(y, "shape");
    const int64_t n = (int64_t)cJSON_GetArrayItem(yshape, 0)->valuedouble,
                  f = (int64_t)cJSON_GetArrayItem(yshape, 1)->valuedouble,
                  h = (int64_t)cJSON_GetArrayItem(yshape, 2)->valuedouble,
                  w = (int64_t)cJSON_GetArrayItem(yshape, 3)->valuedouble;
    CHECK(status == 200 && fwd &&
              n * f * h * w == cJSON_GetArraySize(cJSON_GetObjectItem(y, "data")),
          "conv_transpose2d problem %d", status);
    // zeros where dw belongs, dx None (left out but required), db missing and required, y with
    // a NaN in it
    cJSON *ydata = cJSON_Duplicate(cJSON_GetObjectItem(y, "data"), true);
    cJSON_ReplaceItemInArray(ydata, 3, cJSON_CreateNumber(NAN));
    char *yd = cJSON_PrintUnformatted(ydata); // NaN prints as null: JSON has none
    char *nan_at = strstr(yd, "null");
    api_buf b = {0};
    api_buf_printf(&b,
                   "{\"problem\":%s,\"submission\":{\"y\":{\"shape\":[%" PRId64 ",%" PRId64
                   ",%" PRId64 ",%" PRId64 "],\"data\":%.*sNaN%s},\"dw\":{\"shape\":[2,3,3,3],"
                   "\"data\":[0",
                   problem, n, f, h, w, (int)(nan_at - yd), yd, nan_at + 4);
    for (int i = 1; i < 54; i++) api_buf_puts(&b, ",0");
    api_buf_puts(&b, "]},\"dx\":null},\"require\":[\"y\",\"dx\",\"dw\",\"db\"]}");
    cJSON *v = call(grade_json_check, b.data, &status);
    api_buf_free(&b);
    const cJSON *vy = tensor_verdict(v, "y"), *vdw = tensor_verdict(v, "dw"),
                *vdx = tensor_verdict(v, "dx"), *vdb = tensor_verdict(v, "db");
    const cJSON *dw_diag = cJSON_GetArrayItem(cJSON_GetObjectItem(vdw, "diagnosis"), 0);
    CHECK(status == 200 && num_at(v, "score") == 0 && num_at(v, "max_score") == 4 &&
              num_at(cJSON_GetObjectItem(vy, "non_finite"), "nan") == 1 &&
              num_at(vy, "mismatches") == 1 &&
              strcmp(str_at(dw_diag, "id"), "unfinished") == 0 &&
              !cJSON_IsTrue(cJSON_GetObjectItem(vdx, "submitted")) &&
              !cJSON_IsTrue(cJSON_GetObjectItem(vdb, "submitted")),
          "unfinished conv_transpose2d: status %d, score %g of %g, dw %s", status,
          num_at(v, "score"), num_at(v, "max_score"), str_at(dw_diag, "id"));
    cJSON_Delete(v);
    // y one row and column short (output_padding forgotten, by its values), y a bare 0, y with
    // an extra axis of size 1
    cJSON *cut = cJSON_CreateArray();
    const cJSON *all = cJSON_GetObjectItem(y, "data");
    for (int64_t i = 0; i < n * f * h * w; i++)
        if ((i / w) % h < h - 1 && i % w < w - 1)
            cJSON_AddItemToArray(
                cut, cJSON_CreateNumber(cJSON_GetArrayItem(all, (int)i)->valuedouble));
    char *cut_text = cJSON_PrintUnformatted(cut), *all_text = cJSON_PrintUnformatted(all);
    api_buf_printf(&b,
                   "{\"cases\":[{\"problem\":%s,\"submission\":{\"y\":{\"shape\":[%" PRId64
                   ",%" PRId64 ",%" PRId64 ",%" PRId64 "],\"data\":%s}}},"
                   "{\"problem\":%s,\"submission\":{\"y\":0}},"
                   "{\"problem\":%s,\"submission\":{\"y\":{\"shape\":[1,%" PRId64 ",%" PRId64
                   ",%" PRId64 ",%" PRId64 "],\"data\":%s}}}]}",
                   problem, n, f, h - 1, w - 1, cut_text, problem, problem, n, f, h, w, all_text);
    v = call(grade_json_check, b.data, &status);
    const cJSON *cases = cJSON_GetObjectItem(v, "cases");
    const char *ids[3];
    for (int i = 0; i < 3; i++) {
        const cJSON *case_y = tensor_verdict(cJSON_GetArrayItem(cases, i), "y");
        ids[i] = str_at(cJSON_GetArrayItem(cJSON_GetObjectItem(case_y, "diagnosis"), 0), "id");
    }
    CHECK(status == 200 && strcmp(ids[0], "output_padding_forgotten") == 0 &&
              strcmp(ids[1], "wrong_shape") == 0 && strcmp(ids[2], "shape_has_extra_axes") == 0,
          "short, scalar, extra-axis y of conv_transpose2d: %d, %s, %s, %s", status, ids[0],
          ids[1], ids[2]);
    cJSON_Delete(v);
    api_buf_free(&b);
    free(cut_text);
    free(all_text);
    cJSON_Delete(cut);
    free(yd);
    cJSON_Delete(ydata);
    cJSON_Delete(fwd);
    cJSON_Delete(doc);
}

// What the text says about shapes and places: a wrong shape no mistake explains gets the
// tensor's shape hint; the "where" line is left out when every pixel lies in one area.
static void test_shape_and_where(void) {
    int status;
    cJSON *v = call(grade_json_check,
                    "{\"problem\":{\"suite\":\"cs231n\",\"index\":0},"
                    "\"submission\":{\"db\":[1, 2, 3]}}", &status);
    const cJSON *diag =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tensor_verdict(v, "db"), "diagnosis"), 0);
    CHECK(status == 200 && strcmp(str_at(diag, "id"), "wrong_shape") == 0 &&
              strstr(str_at(diag, "hint"), "np.sum(dout, axis=(0, 2, 3))") &&
              strstr(str_at(diag, "evidence"), "(3,)") && strstr(str_at(diag, "evidence"), "(4,)"),
          "db of 3 values: %s: %s", str_at(diag, "id"), str_at(diag, "evidence"));
    cJSON_Delete(v);
    // x 2x2, 3x3 kernel, padding 1: every pixel of dx is within the padding width
    static const char *const where_cases[][2] = {
        {"{\"x\":[[1,2],[3,4]],\"w\":[[1,2,3],[4,5,6],[7,8,9]],\"padding\":1,"
         "\"dy\":[[1,1],[1,1]]}", "[[5,5],[5,5]]"},
        {"{\"x\":[[1,2,3,4,5,6],[1,2,3,4,5,6],[1,2,3,4,5,6],[1,2,3,4,5,6],[1,2,3,4,5,6]],"
         "\"w\":[[1,2,3],[4,5,6],[7,8,9]],\"padding\":1,\"dy\":[[1,1,1,1,1,1],[1,1,1,1,1,1],"
         "[1,1,1,1,1,1],[1,1,1,1,1,1],[1,1,1,1,1,1]]}",
         "[[5,5,5,5,5,5],[5,5,5,5,5,5],[5,5,5,5,5,5],[5,5,5,5,5,5],[5,5,5,5,5,5]]"},
    };
    for (int i = 0; i < 2; i++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"problem\":%s,\"submission\":{\"dx\":%s},\"format\":\"gradescope\"}",
                 where_cases[i][0], where_cases[i][1]);
        v = call(grade_json_check, body, &status);
        const char *out = str_at(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(v, "tests"), 0),
                                 "output");
        CHECK(status == 200 && strstr(out, "dx: wrong") && !strstr(out, "- where:") == (i == 0),
              "dx all wrong on a %s image: where line %s", i == 0 ? "2x2" : "5x6",
              strstr(out, "- where:") ? "printed" : "left out");
        cJSON_Delete(v);
    }
}

// Occurrences of `needle` in `hay`.
static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

// The pictures: a page (format html) with a heatmap per wrong tensor, one red cell per wrong
// value with its expected and given values in a <title>, the request's text escaped and no
// external resource; Gradescope's output_format html; PrairieLearn's test images.
static void test_html(void) {
    // x 3x3, w 2x2, dy 2x2: dx has 9 values; two are wrong, one NaN
    const char *body =
        "{\"format\":\"html\",\"name\":\"<script>alert('x')</script> & co\","
        "\"problem\":{\"x\":[[1,2,3],[4,5,6],[7,8,9]],\"w\":[[1,2],[3,4]],\"dy\":[[1,0],[0,1]]},"
        "\"submission\":{\"dx\":[[1,2,0],[3,5,2],[0,3,NaN]],\"db\":[2],"
        "\"error\":{\"y\":\"</pre><img src=x>\"}},\"require\":[\"y\"]}";
    api_response r = {0};
    grade_json_check(&r, body, strlen(body), NULL, NULL);
    const char *page = r.body ? r.body : "(none)";
    // right dx: [[1,2,0],[3,5,2],[0,3,4]]; the submission has 8 right: 1 wrong (NaN)
    CHECK(r.status == 200 && strcmp(r.content_type, "text/html; charset=utf-8") == 0 &&
              strstr(page, "<!DOCTYPE html>") == page && count_of(page, "<svg") == 1 &&
              count_of(page, "class=\"wrong\"") == 1 &&
              strstr(page, "<title>dx[2, 2]: expected 4.0, got nan</title>"),
          "html page: status %d, %d heatmaps, %d wrong cells", r.status, count_of(page, "<svg"),
          count_of(page, "class=\"wrong\""));
    CHECK(!strstr(page, "<script") && !strstr(page, "<img") && !strstr(page, "<link") &&
              !strstr(page, "href=") && !strstr(page, "url(") &&
              strstr(page, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co") &&
              strstr(page, "&lt;/pre&gt;&lt;img src=x&gt;"),
          "html page: the request's text is not escaped, or it links a resource");
    free(r.body);

    // Gradescope's HTML and PrairieLearn's images, on a wrong dx
    const char *cases[] = {"gradescope", "prairielearn"};
    for (int f = 0; f < 2; f++) {
        char req[1024];
        snprintf(req, sizeof req,
                 "{\"format\":\"%s\",\"output_format\":\"html\","
                 "\"problem\":{\"x\":[[1,2,3],[4,5,6],[7,8,9]],\"w\":[[1,2],[3,4]],"
                 "\"dy\":[[1,0],[0,1]]},\"submission\":{\"dx\":[[1,2,0],[3,5,2],[0,3,5]],"
                 "\"db\":[2]}}",
                 cases[f]);
        int status;
        cJSON *v = call(grade_json_check, req, &status);
        const cJSON *tests = cJSON_GetObjectItemCaseSensitive(v, "tests");
        const cJSON *dx = cJSON_GetArrayItem(tests, 0), *db = cJSON_GetArrayItem(tests, 1);
        if (f == 0) {
            CHECK(status == 200 && strcmp(str_at(v, "output_format"), "html") == 0 &&
                      strcmp(str_at(dx, "output_format"), "html") == 0 &&
                      count_of(str_at(dx, "output"), "class=\"wrong\"") == 1 &&
                      !strstr(str_at(db, "output"), "<svg"),
                  "gradescope html: %.300s", str_at(dx, "output"));
        } else {
            const cJSON *img = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dx, "images"), 0);
            CHECK(status == 200 &&
                      strncmp(str_at(img, "url"), "data:image/svg+xml;base64,PHN2Zy", 32) == 0 &&
                      !cJSON_GetObjectItemCaseSensitive(db, "images"),
                  "prairielearn image: %.80s", str_at(img, "url"));
        }
        cJSON_Delete(v);
    }
}

// Requests that cannot be graded: the error JSON with a code and a path into the request.
static void test_errors(void) {
    const char *ok_problem = "{\"suite\":\"cs231n\",\"index\":0}";
    char body[512];
    expect_error(grade_json_check, "{\"problem\":", 400, "invalid_json", "");
    expect_error(grade_json_check, "[1, 2]", 422, "invalid_type", "");
    expect_error(grade_json_check, "{\"submission\":{}}", 422, "missing_field", "problem");
    snprintf(body, sizeof body, "{\"problem\":%s}", ok_problem);
    expect_error(grade_json_check, body, 422, "missing_field", "submission");
    snprintf(body, sizeof body, "{\"problem\":%s,\"submission\":{},\"fromat\":\"x\"}", ok_problem);
    expect_error(grade_json_check, body, 422, "unknown_field", "fromat");
    snprintf(body, sizeof body, "{\"problem\":%s,\"submission\":{},\"format\":\"moodle\"}",
             ok_problem);
    expect_error(grade_json_check, body, 422, "invalid_value", "format");
    snprintf(body, sizeof body, "{\"problem\":%s,\"submission\":{\"dz\":[1]}}", ok_problem);
    expect_error(grade_json_check, body, 422, "unknown_field", "submission.dz");
    snprintf(body, sizeof body, "{\"problem\":%s,\"submission\":{\"error\":{\"dz\":\"x\"}}}",
             ok_problem);
    expect_error(grade_json_check, body, 422, "unknown_field", "submission.error.dz");
    snprintf(body, sizeof body, "{\"problem\":%s,\"submission\":{\"error\":[1]}}", ok_problem);
    expect_error(grade_json_check, body, 422, "invalid_type", "submission.error");
    snprintf(body, sizeof body, "{\"problem\":%s,\"submission\":{\"db\":[[1],[2,3]]}}", ok_problem);
    expect_error(grade_json_check, body, 422, "ragged_array", "submission.db[1]");
    snprintf(body, sizeof body, "{\"problem\":%s,\"submission\":{},\"require\":[\"dq\"]}",
             ok_problem);
    expect_error(grade_json_check, body, 422, "unknown_output", "require[0]");
    snprintf(body, sizeof body, "{\"problem\":%s,\"submission\":{},\"points\":{\"dx\":-1}}",
             ok_problem);
    expect_error(grade_json_check, body, 422, "invalid_value", "points.dx");
    expect_error(grade_json_check,
                 "{\"problem\":{\"suite\":\"cs231n\",\"index\":10},\"submission\":{}}", 422,
                 "invalid_value", "problem.index");
    // seed + index past 2^53 would not survive a client's double (issue 12); 2^53 itself is
    // fine for index 0 only, and a suite's whole list needs room for its last index.
    expect_error(grade_json_check,
                 "{\"problem\":{\"suite\":\"cs231n\",\"seed\":9007199254740992,\"index\":1},"
                 "\"submission\":{}}",
                 422, "invalid_value", "problem.seed");
    expect_error(grade_json_problem, "{\"suite\":\"full\",\"seed\":9007199254740991}", 422,
                 "invalid_value", "seed");
    expect_error(grade_json_check,
                 "{\"problem\":{\"suite\":\"cs231\",\"index\":1},\"submission\":{}}", 422,
                 "invalid_value", "problem.suite");
    expect_error(grade_json_check, "{\"problem\":{\"suite\":\"cs231n\"},\"submission\":{}}", 422,
                 "missing_field", "problem.index");
    // generator specs: v1's validation, pointed at the spec's own fields
    expect_error(grade_json_check,
                 "{\"problem\":{\"seed\":1,\"x_shape\":[2,3,5,5],\"w_shape\":[4,2,3,3]},"
                 "\"submission\":{}}",
                 422, "shape_mismatch", "problem.w_shape[1]");
    expect_error(grade_json_check,
                 "{\"problem\":{\"seed\":1,\"x_shape\":[2,3,5,5]},\"submission\":{}}", 422,
                 "missing_field", "problem.w_shape");
    expect_error(grade_json_check,
                 "{\"problem\":{\"seed\":1,\"x_shape\":[2,3,5,5],\"w_shape\":[4,3,7,3]},"
                 "\"submission\":{}}",
                 422, "kernel_too_large", "problem.w_shape[2]");
    expect_error(grade_json_check,
                 "{\"problem\":{\"seed\":-1,\"x_shape\":[5,5],\"w_shape\":[3,3]},"
                 "\"submission\":{}}",
                 422, "invalid_value", "problem.seed");
    expect_error(grade_json_check,
                 "{\"problem\":{\"seed\":1,\"x_shape\":[5,5],\"w_shape\":[3,3],\"stride\":0},"
                 "\"submission\":{}}",
                 422, "invalid_value", "problem.stride");
    // explicit problems
    expect_error(grade_json_check,
                 "{\"problem\":{\"x\":[[1,2],[3,4]],\"w\":[[1]],\"dy\":[[1,2]]},"
                 "\"submission\":{}}",
                 422, "shape_mismatch", "problem.dy.shape[0]");
    expect_error(grade_json_check,
                 "{\"problem\":{\"x\":[[1,2],[3,4]],\"w\":[[1]]},\"submission\":{\"dx\":[[0,0],[0,0]]}}",
                 422, "missing_field", "problem.dy");
    expect_error(grade_json_check,
                 "{\"problem\":{\"op\":\"conv2d.forward\",\"x\":[[1]],\"w\":[[1]]},\"submission\":{}}",
                 422, "invalid_value", "problem.op");
    expect_error(grade_json_check, "{\"cases\":[],\"format\":\"convd\"}", 422, "invalid_type",
                 "cases");
    expect_error(grade_json_check,
                 "{\"cases\":[{\"problem\":{\"suite\":\"full\",\"index\":1},\"submission\":{}},"
                 "{\"problem\":{\"suite\":\"full\",\"index\":1}}]}",
                 422, "missing_field", "cases[1].submission");
    expect_error(grade_json_problem, "{\"suite\":\"full\",\"index\":99}", 422, "invalid_value",
                 "index");
    expect_error(grade_json_problem, "{\"seed\":1,\"x_shape\":[1,1,9,9],\"w_shape\":[1,2,3,3]}",
                 422, "shape_mismatch", "w_shape[1]");
    expect_error(grade_json_problem, "{\"seed\":1,\"x_shape\":[0,1,9,9],\"w_shape\":[1,1,3,3]}",
                 422, "invalid_shape", "x_shape[0]");
    expect_error(grade_json_problem, "{\"seed\":1,\"x_shape\":[1,1,9,9],\"w_shape\":[1,1,3,3],"
                                   "\"bias\":\"yes\"}",
                 422, "invalid_type", "bias");
    // the families' parameters, refused with the v1 rules and paths into the problem
    expect_error(grade_json_check,
                 "{\"problem\":{\"op\":\"conv4d\",\"seed\":1,\"x_shape\":[1,1,5],"
                 "\"w_shape\":[1,1,3]},\"submission\":{}}",
                 422, "invalid_value", "problem.op");
    expect_error(grade_json_check,
                 "{\"problem\":{\"op\":\"conv_transpose2d\",\"seed\":1,\"x_shape\":[1,1,3,3],"
                 "\"w_shape\":[1,1,3,3],\"padding_mode\":\"reflect\"},\"submission\":{}}",
                 422, "invalid_value", "problem.padding_mode");
    expect_error(grade_json_check,
                 "{\"problem\":{\"op\":\"conv1d\",\"seed\":1,\"x_shape\":[1,1,5],"
                 "\"w_shape\":[1,1,3],\"output_padding\":1},\"submission\":{}}",
                 422, "field_not_allowed", "problem.output_padding");
    expect_error(grade_json_check,
                 "{\"problem\":{\"op\":\"conv1d\",\"seed\":1,\"x_shape\":[1,1,5],"
                 "\"w_shape\":[1,1,3],\"stride\":[1,2]},\"submission\":{}}",
                 422, "invalid_value", "problem.stride");
    expect_error(grade_json_check,
                 "{\"problem\":{\"op\":\"conv1d\",\"seed\":1,\"x_shape\":[1,1,5],"
                 "\"w_shape\":[1,1,3],\"padding\":5,\"padding_mode\":\"reflect\"},"
                 "\"submission\":{}}",
                 422, "invalid_value", "problem.padding");
    // PyTorch takes output_padding 2 with stride 2 and dilation 3; a graded problem does not
    expect_error(grade_json_problem,
                 "{\"op\":\"conv_transpose1d\",\"seed\":1,\"x_shape\":[1,1,5],"
                 "\"w_shape\":[1,1,3],\"stride\":2,\"dilation\":3,\"output_padding\":2}",
                 422, "invalid_value", "output_padding");
    expect_error(grade_json_check,
                 "{\"problem\":{\"op\":\"conv3d\",\"x\":[[[1,2],[3,4]]],\"w\":[[[[[1]]]]]},"
                 "\"submission\":{}}",
                 422, "invalid_shape", "problem.x.shape");
    api_response r = {0};
    grade_json_check(&r, "{}", 2, "conv2d.forward", NULL);
    CHECK(r.status == 422 && r.body && strstr(r.body, "unknown_op"), "wrong op: %d", r.status);
    free(r.body);
}

// A spec whose grading (four passes) is over max_flops is refused before its problem is
// generated (issue 12: after ~3 s of computing it; 256 such cases ran 107 s).
static void test_work_refused_first(void) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    int status;
    cJSON *doc = call(grade_json_check,
                      "{\"problem\":{\"seed\":1,\"x_shape\":[1,128,256,256],"
                      "\"w_shape\":[128,128,3,3]},\"submission\":{}}",
                      &status);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    double cpu = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    const cJSON *code = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "error"), "code");
    CHECK(status == 422 && cJSON_IsString(code) && strcmp(code->valuestring, "too_much_work") == 0 &&
              cpu < 0.5,
          "a 1.9e10-FLOP layer graded in 4 passes: %d after %.2f s of CPU", status, cpu);
    cJSON_Delete(doc);
}

// A submission's error text cannot close Gradescope's code block and write markdown of its
// own (issue 12): the fence is longer than any run of backticks in the text.
static void test_error_fenced(void) {
    int status;
    cJSON *doc = call(grade_json_check,
                      "{\"format\":\"gradescope\",\"problem\":{\"x\":[[1,2],[3,4]],\"w\":[[1]],"
                      "\"dy\":[[1,2],[3,4]]},\"submission\":{\"error\":\"boom\\n```\\n# "
                      "Full marks\\n````\"},\"require\":[\"dx\"]}",
                      &status);
    const cJSON *tests = cJSON_GetObjectItemCaseSensitive(doc, "tests");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tests, 0), "output");
    const char *text = cJSON_IsString(out) ? out->valuestring : "";
    const char *open = strstr(text, "`````\nboom\n```\n# Full marks\n````\n`````");
    CHECK(status == 200 && open, "the error in a 5-backtick fence: %d %s", status, text);
    cJSON_Delete(doc);
}

// Every prefix of a valid request, and the request with each byte replaced: an answer (the
// error JSON or a verdict), never a crash, a leak (under ASan) or a 500.
static void test_no_crash(void) {
    static const char *const bodies[] = {
        "{\"format\":\"gradescope\",\"cases\":[{\"name\":\"a\",\"problem\":{\"seed\":4,"
        "\"x_shape\":[2,1,4,5],\"w_shape\":[3,1,2,2],\"stride\":[2,1],\"padding\":[1,0,0,1]},"
        "\"submission\":{\"db\":[1,2,NaN],\"dx\":{\"shape\":[2,1,0,0],\"data\":[]}}},"
        "{\"problem\":{\"x\":[[1,2],[3,4]],\"w\":[[1]],\"dy\":[[1,2],[3,4]]},"
        "\"submission\":{\"dw\":[[0.5]],\"error\":\"boom\"}}],\"tolerance\":{\"atol\":1e-3}}",
        // the other families: a transposed spec with output_padding, an explicit 3-d problem
        // with reflect padding
        "{\"cases\":[{\"problem\":{\"op\":\"conv_transpose1d\",\"seed\":2,\"x_shape\":[2,2,4],"
        "\"w_shape\":[2,1,3],\"stride\":2,\"padding\":1,\"output_padding\":1},"
        "\"submission\":{\"y\":[[[1,2]]],\"db\":[0,NaN]}},{\"problem\":{\"op\":\"conv3d\","
        "\"x\":[[[[1,2],[3,4]]]],\"w\":[[[[[1]]]]],\"padding\":[0,1,1],"
        "\"padding_mode\":\"reflect\",\"dy\":[[[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4]]]]},"
        "\"submission\":{\"dx\":0,\"y\":[[[[1]]]]}}],\"format\":\"html\"}",
    };
    int bad = 0, answered = 0;
    for (size_t b = 0; b < sizeof bodies / sizeof *bodies; b++) {
        const char *body = bodies[b];
        const size_t len = strlen(body);
        char *copy = malloc(len + 1);
        const char replacements[] = {'0', '"', '}', ']', '-', 'x'};
        for (size_t cut = 0; cut <= len; cut++) {
            api_response r = {0};
            grade_json_check(&r, body, cut, NULL, NULL);
            bad += !r.body || r.status == 500;
            answered += r.status == 200;
            free(r.body);
        }
        for (size_t i = 0; i < len; i++)
            for (size_t k = 0; k < sizeof replacements; k++) {
                memcpy(copy, body, len + 1);
                copy[i] = replacements[k];
                api_response r = {0};
                grade_json_check(&r, copy, len, NULL, NULL);
                bad += !r.body || r.status == 500;
                answered += r.status == 200;
                free(r.body);
            }
        free(copy);
    }
    CHECK(bad == 0 && answered > 0, "%d of the damaged requests got no answer or a 500 (%d "
          "graded)", bad, answered);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    test_problems();
    test_check_convd();
    test_formats();
    test_prairielearn_size();
    test_student_answers();
    test_family_doors();
    test_family_student_answers();
    test_shape_and_where();
    test_html();
    test_errors();
    test_error_fenced();
    test_work_refused_first();
    test_no_crash();
    return t_finish("test_grade_json");
}
