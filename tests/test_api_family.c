// conv1d, conv3d, conv_transpose1d/2d/3d and padding modes through the v1 JSON door in-process
// (codec_run_json): random layers forward and backward in both dtypes and every rank against
// naive references (conv1d and padding modes: core/conv_ref.h, on a 2-d geometry with H = 1 or
// an input padded here; conv3d: tests/harness/ref_conv3d.h; conv_transpose1d/2d:
// tests/harness/ref_transpose.h; conv_transpose3d: its definition on ref_conv3d), shapes in the
// rank sent, and every refusal with its code and path. The golden cases made by PyTorch go
// through the doors with the others (tests/harness/api_harness.c).
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_buf.h"
#include "api/codec/codec.h"
#include "core/conv_ref.h"
#include "server/blas_boot.h"
#include "tests/harness/ref_conv3d.h"
#include "tests/harness/ref_transpose.h"
#include "tests/testlib.h"

enum { TRIALS = 300 };

static uint64_t seed = 0x15;

static cJSON *run(const char *body, int *status) {
    api_response r = {0};
    codec_run_json(&r, body, strlen(body), NULL, NULL);
    *status = r.status;
    cJSON *parsed = r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;
    free(r.body);
    return parsed;
}

static const char *error_field(const cJSON *resp, const char *field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "error"),
                                                      field);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void expect_error(const char *body, int status, const char *code, const char *path,
                         const char *in_message) {
    int got;
    cJSON *resp = run(body, &got);
    const char *message = error_field(resp, "message");
    CHECK(resp && got == status && strcmp(error_field(resp, "code"), code) == 0 &&
              strcmp(error_field(resp, "path"), path) == 0 && strstr(message, in_message),
          "%.160s: want %d %s at '%s' saying '%s', got %d %s at '%s' (%s)", body, status, code,
          path, in_message, got, error_field(resp, "code"), error_field(resp, "path"), message);
    cJSON_Delete(resp);
}

// Random values (float32-exact) written into the body as {"shape", "data"}.
static double *put_tensor(api_buf *body, const char *name, const int64_t *shape, int rank,
                          uint64_t *rng) {
    int64_t n = 1;
    api_buf_printf(body, ", \"%s\": {\"shape\": [", name);
    for (int i = 0; i < rank; i++) {
        api_buf_printf(body, "%s%lld", i ? ", " : "", (long long)shape[i]);
        n *= shape[i];
    }
    api_buf_puts(body, "], \"data\": [");
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        api_buf_printf(body, "%s%.17g", i ? "," : "", v[i] = (float)t_rand_uniform(rng, -1, 1));
    api_buf_puts(body, "]}");
    return v;
}

static double *abs_copy(const double *v, int64_t n) {
    if (!v) return NULL;
    double *a = malloc((size_t)n * sizeof *a);
    for (int64_t i = 0; i < n; i++) a[i] = fabs(v[i]);
    return a;
}

// Output `name` of the response against want (within tol * scale per element) with shape
// `shape`; returns a failure description or NULL.
static const char *compare(const cJSON *resp, const char *name, const double *want,
                           const double *scale, const int64_t *shape, int rank, double tol) {
    static char why[256];
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(resp, name);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(t, "data");
    if (cJSON_GetArraySize(s) != rank) return snprintf(why, sizeof why, "%s: rank", name), why;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (cJSON_GetArrayItem(s, i)->valuedouble != (double)shape[i])
            return snprintf(why, sizeof why, "%s: shape[%d] is %g, want %lld", name, i,
                            cJSON_GetArrayItem(s, i)->valuedouble, (long long)shape[i]),
                   why;
        n *= shape[i];
    }
    if (cJSON_GetArraySize(d) != n) return snprintf(why, sizeof why, "%s: count", name), why;
    int64_t i = 0;
    for (const cJSON *e = d->child; e; e = e->next, i++)
        if (!(fabs(e->valuedouble - want[i]) <= tol * scale[i] + 1e-300))
            return snprintf(why, sizeof why, "%s[%lld]: got %.17g, want %.17g", name,
                            (long long)i, e->valuedouble, want[i]),
                   why;
    return NULL;
}

static const char *send_both(const char *body, const char *family, double *const want[4],
                             double *const scale[4], const int64_t *y_shape,
                             const int64_t *x_shape, int x_rank, const int64_t *w_shape,
                             int w_rank, int64_t f, double tol);

// conv1d: x [N,C,L] or [C,L], w [F,C/G,k], parameters as one integer or a list of one,
// padding sometimes "same"/"valid"; y, dx, dw, db against conv_ref with H = kh = 1.
static void test_conv1d(void) {
    int bad = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
        conv_dtype dt = trial % 2 ? CONV_FLOAT64 : CONV_FLOAT32;
        conv_geom g = {.h = 1, .kh = 1, .stride_h = 1, .dilation_h = 1};
        g.groups = t_rand_int(&seed, 1, 3);
        g.n = t_rand_int(&seed, 1, 3);
        g.c = g.groups * t_rand_int(&seed, 1, 2);
        g.f = g.groups * t_rand_int(&seed, 1, 2);
        g.w = t_rand_int(&seed, 1, 12);
        g.kw = t_rand_int(&seed, 1, 4);
        g.stride_w = t_rand_int(&seed, 1, 3);
        g.dilation_w = t_rand_int(&seed, 1, 2);
        int pad_kind = (int)t_rand_int(&seed, 0, 3); // 0 int, 1 [p], 2 "same", 3 "valid"
        if (pad_kind == 2) g.stride_w = 1;
        if (pad_kind == 2) conv_pad_same(g.kw, g.dilation_w, &g.pad_left, &g.pad_right);
        else if (pad_kind < 2) g.pad_left = g.pad_right = t_rand_int(&seed, 0, 2);
        int64_t lo = conv_ref_out_size(g.w, g.kw, g.stride_w, g.dilation_w, g.pad_left,
                                       g.pad_right);
        if (lo < 1) continue;
        bool batched = t_rand_int(&seed, 0, 1), bias = t_rand_int(&seed, 0, 1);
        api_buf body = {0};
        char pad[32];
        if (pad_kind >= 2) snprintf(pad, sizeof pad, "\"%s\"", pad_kind == 2 ? "same" : "valid");
        else snprintf(pad, sizeof pad, pad_kind ? "[%lld]" : "%lld", (long long)g.pad_left);
        api_buf_printf(&body,
                       "{\"op\": \"conv1d.backward\", \"dtype\": \"%s\", \"groups\": %lld, "
                       "\"stride\": %s%lld%s, \"dilation\": [%lld], \"padding\": %s",
                       dt == CONV_FLOAT64 ? "float64" : "float32", (long long)g.groups,
                       trial % 3 ? "" : "[", (long long)g.stride_w, trial % 3 ? "" : "]",
                       (long long)g.dilation_w, pad);
        int64_t xs[3] = {g.n, g.c, g.w}, ws[3] = {g.f, g.c / g.groups, g.kw},
                ys[3] = {g.n, g.f, lo};
        int xr = batched ? 3 : 2;
        if (!batched) g.n = 1;
        double *x = put_tensor(&body, "x", xs + 3 - xr, xr, &seed);
        double *w = put_tensor(&body, "w", ws, 3, &seed);
        double *b = bias ? put_tensor(&body, "b", &g.f, 1, &seed) : NULL;
        double *dy = put_tensor(&body, "dy", ys + 3 - xr, xr, &seed);
        api_buf_puts(&body, ", \"outputs\": [\"dx\", \"dw\", \"db\"]}");
        int64_t nx = g.n * g.c * g.w, nw = g.f * (g.c / g.groups) * g.kw, ny = g.n * g.f * lo;
        double *want[4], *scale[4];
        int64_t counts[4] = {ny, nx, nw, g.f};
        for (int k = 0; k < 4; k++) {
            want[k] = malloc((size_t)counts[k] * sizeof(double));
            scale[k] = malloc((size_t)counts[k] * sizeof(double));
        }
        double *ax = abs_copy(x, nx), *aw = abs_copy(w, nw), *ab = abs_copy(b, g.f),
               *ady = abs_copy(dy, ny);
        conv_ref_forward(want[0], x, w, b, &g);
        conv_ref_forward(scale[0], ax, aw, ab, &g);
        conv_ref_backward_data(want[1], dy, w, &g);
        conv_ref_backward_data(scale[1], ady, aw, &g);
        conv_ref_backward_weights(want[2], dy, x, &g);
        conv_ref_backward_weights(scale[2], ady, ax, &g);
        conv_ref_backward_bias(want[3], dy, &g);
        conv_ref_backward_bias(scale[3], ady, &g);
        const char *why = send_both(body.data, "conv1d", want, scale, ys + 3 - xr, xs + 3 - xr,
                                    xr, ws, 3, g.f, dt == CONV_FLOAT64 ? 1e-12 : 1e-5);
        if (why && bad++ < 5) CHECK(false, "conv1d trial %d: %s: %.300s", trial, why, body.data);
        for (int k = 0; k < 4; k++) {
            free(want[k]);
            free(scale[k]);
        }
        free(x), free(w), free(b), free(dy), free(ax), free(aw), free(ab), free(ady);
        api_buf_free(&body);
    }
    CHECK(bad == 0, "conv1d: %d of %d trials off the reference", bad, TRIALS);
}

// conv_transpose2d (x [N,C,H,W] or [C,H,W], w [C,F/G,kh,kw]) and conv_transpose1d (x [N,C,L] or
// [C,L], w [C,F/G,k]), output_padding below the stride; y, dx, dw, db against ref_transpose.
static void test_conv_transpose(void) {
    int bad = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
        conv_dtype dt = trial % 2 ? CONV_FLOAT64 : CONV_FLOAT32;
        bool one_d = trial % 3 == 0; // conv_transpose1d: the reference's layer with one row
        ref_tgeom t = {.groups = t_rand_int(&seed, 1, 2)};
        t.n = t_rand_int(&seed, 1, 2);
        t.c = t.groups * t_rand_int(&seed, 1, 2);
        t.f = t.groups * t_rand_int(&seed, 1, 2);
        t.h = t_rand_int(&seed, 1, 5);
        t.w = t_rand_int(&seed, 1, 5);
        t.kh = t_rand_int(&seed, 1, 4);
        t.kw = t_rand_int(&seed, 1, 4);
        for (int a = 0; a < 2; a++) {
            t.stride[a] = t_rand_int(&seed, 1, 3);
            t.dilation[a] = t_rand_int(&seed, 1, 2);
            // PyTorch's limit: below the stride or the dilation (the second on an extended x).
            int64_t most = t.stride[a] > t.dilation[a] ? t.stride[a] : t.dilation[a];
            t.output_padding[a] = t_rand_int(&seed, 0, most - 1);
            t.padding[2 * a] = t.padding[2 * a + 1] = t_rand_int(&seed, 0, 2);
        }
        if (one_d) {
            t.h = t.kh = t.stride[0] = t.dilation[0] = 1;
            t.output_padding[0] = t.padding[0] = t.padding[1] = 0;
        }
        if (ref_t_out_h(&t) < 1 || ref_t_out_w(&t) < 1) continue;
        bool batched = t_rand_int(&seed, 0, 1), bias = t_rand_int(&seed, 0, 1);
        if (!batched) t.n = 1;
        int full = one_d ? 3 : 4, xr = batched ? full : full - 1;
        const char *family = one_d ? "conv_transpose1d" : "conv_transpose2d";
        api_buf body = {0};
        if (one_d)
            api_buf_printf(&body,
                           "{\"op\": \"%s.backward\", \"dtype\": \"%s\", \"groups\": %lld, "
                           "\"stride\": %lld, \"dilation\": [%lld], \"padding\": %lld, "
                           "\"output_padding\": [%lld]",
                           family, dt == CONV_FLOAT64 ? "float64" : "float32", (long long)t.groups,
                           (long long)t.stride[1], (long long)t.dilation[1],
                           (long long)t.padding[2], (long long)t.output_padding[1]);
        else
            api_buf_printf(&body,
                           "{\"op\": \"%s.backward\", \"dtype\": \"%s\", \"groups\": %lld, "
                           "\"stride\": [%lld, %lld], \"dilation\": [%lld, %lld], \"padding\": "
                           "[%lld, %lld], \"output_padding\": [%lld, %lld]",
                           family, dt == CONV_FLOAT64 ? "float64" : "float32", (long long)t.groups,
                           (long long)t.stride[0], (long long)t.stride[1],
                           (long long)t.dilation[0], (long long)t.dilation[1],
                           (long long)t.padding[0], (long long)t.padding[2],
                           (long long)t.output_padding[0], (long long)t.output_padding[1]);
        // Shapes in the family's rank: conv_transpose1d drops the H axis.
        int64_t xs[4] = {t.n, t.c, t.h, t.w}, ws[4] = {t.c, t.f / t.groups, t.kh, t.kw},
                ys[4] = {t.n, t.f, ref_t_out_h(&t), ref_t_out_w(&t)};
        if (one_d) xs[2] = xs[3], ws[2] = ws[3], ys[2] = ys[3];
        double *x = put_tensor(&body, "x", xs + full - xr, xr, &seed);
        double *w = put_tensor(&body, "w", ws, full, &seed);
        double *b = bias ? put_tensor(&body, "b", &t.f, 1, &seed) : NULL;
        double *dy = put_tensor(&body, "dy", ys + full - xr, xr, &seed);
        api_buf_puts(&body, ", \"outputs\": [\"dx\", \"dw\", \"db\"]}");
        int64_t counts[4] = {ref_t_numel_y(&t), ref_t_numel_x(&t), ref_t_numel_w(&t), t.f};
        double *want[4], *scale[4];
        for (int k = 0; k < 4; k++) {
            want[k] = malloc((size_t)counts[k] * sizeof(double));
            scale[k] = malloc((size_t)counts[k] * sizeof(double));
        }
        double *ax = abs_copy(x, counts[1]), *aw = abs_copy(w, counts[2]),
               *ab = abs_copy(b, t.f), *ady = abs_copy(dy, counts[0]);
        ref_t_forward(want[0], x, w, b, &t);
        ref_t_forward(scale[0], ax, aw, ab, &t);
        ref_t_backward_data(want[1], dy, w, &t);
        ref_t_backward_data(scale[1], ady, aw, &t);
        ref_t_backward_weights(want[2], dy, x, &t);
        ref_t_backward_weights(scale[2], ady, ax, &t);
        ref_t_backward_bias(want[3], dy, &t);
        ref_t_backward_bias(scale[3], ady, &t);
        const char *why = send_both(body.data, family, want, scale, ys + full - xr, xs + full - xr,
                                    xr, ws, full, t.f, dt == CONV_FLOAT64 ? 1e-12 : 1e-5);
        if (why && bad++ < 5) CHECK(false, "%s trial %d: %s: %.300s", family, trial, why, body.data);
        for (int k = 0; k < 4; k++) {
            free(want[k]);
            free(scale[k]);
        }
        free(x), free(w), free(b), free(dy), free(ax), free(aw), free(ab), free(ady);
        api_buf_free(&body);
    }
    CHECK(bad == 0, "conv_transpose1d/2d: %d of %d trials off the reference", bad, TRIALS);
}

// Sends the backward body, then the same as the forward (op renamed, dy and outputs cut), and
// compares every output with the reference answers want[y, dx, dw, db]; NULL when all match.
static const char *send_both(const char *body, const char *family, double *const want[4],
                             double *const scale[4], const int64_t *y_shape,
                             const int64_t *x_shape, int x_rank, const int64_t *w_shape,
                             int w_rank, int64_t f, double tol) {
    int status;
    cJSON *resp = run(body, &status);
    const char *why = status != 200 ? "status" : NULL;
    if (!why) why = compare(resp, "dx", want[1], scale[1], x_shape, x_rank, tol);
    if (!why) why = compare(resp, "dw", want[2], scale[2], w_shape, w_rank, tol);
    if (!why) why = compare(resp, "db", want[3], scale[3], &f, 1, tol);
    cJSON_Delete(resp);
    if (why) return why;
    char backward[48], forward[48];
    snprintf(backward, sizeof backward, "\"%s.backward\"", family);
    snprintf(forward, sizeof forward, "\"%s.forward\"", family);
    api_buf fwd = {0};
    const char *op_at = strstr(body, backward), *dy_at = strstr(body, ", \"dy\"");
    api_buf_put(&fwd, body, (size_t)(op_at - body));
    api_buf_puts(&fwd, forward);
    api_buf_put(&fwd, op_at + strlen(backward), (size_t)(dy_at - op_at - strlen(backward)));
    api_buf_puts(&fwd, "}");
    resp = run(fwd.data, &status);
    why = status != 200 ? "forward status"
                        : compare(resp, "y", want[0], scale[0], y_shape, x_rank, tol);
    cJSON_Delete(resp);
    api_buf_free(&fwd);
    return why;
}

// conv3d: x [N,C,D,H,W] or [C,D,H,W], w [F,C/G,kd,kh,kw], parameters one integer or one per
// axis, padding sometimes "same"; y, dx, dw, db against ref_conv3d.
static void test_conv3d(void) {
    int bad = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
        conv_dtype dt = trial % 2 ? CONV_FLOAT64 : CONV_FLOAT32;
        conv3d_geom g = {.groups = t_rand_int(&seed, 1, 2)};
        g.n = t_rand_int(&seed, 1, 2);
        g.c = g.groups * t_rand_int(&seed, 1, 2);
        g.f = g.groups * t_rand_int(&seed, 1, 2);
        g.d = t_rand_int(&seed, 1, 4);
        g.h = t_rand_int(&seed, 1, 4);
        g.w = t_rand_int(&seed, 1, 4);
        g.kd = t_rand_int(&seed, 1, 3);
        g.kh = t_rand_int(&seed, 1, 3);
        g.kw = t_rand_int(&seed, 1, 3);
        bool same = t_rand_int(&seed, 0, 4) == 0;
        for (int a = 0; a < 3; a++) {
            g.stride[a] = same ? 1 : t_rand_int(&seed, 1, 2);
            g.dilation[a] = t_rand_int(&seed, 1, 2);
            g.padding[2 * a] = g.padding[2 * a + 1] = t_rand_int(&seed, 0, 1);
        }
        const int64_t k[3] = {g.kd, g.kh, g.kw};
        if (same)
            for (int a = 0; a < 3; a++)
                conv_pad_same(k[a], g.dilation[a], &g.padding[2 * a], &g.padding[2 * a + 1]);
        if (ref3_out(&g, 0) < 1 || ref3_out(&g, 1) < 1 || ref3_out(&g, 2) < 1) continue;
        bool batched = t_rand_int(&seed, 0, 1), bias = t_rand_int(&seed, 0, 1);
        if (!batched) g.n = 1;
        int xr = batched ? 5 : 4;
        api_buf body = {0};
        char pad[48];
        if (same) snprintf(pad, sizeof pad, "\"same\"");
        else snprintf(pad, sizeof pad, "[%lld, %lld, %lld]", (long long)g.padding[0],
                      (long long)g.padding[2], (long long)g.padding[4]);
        api_buf_printf(&body,
                       "{\"op\": \"conv3d.backward\", \"dtype\": \"%s\", \"groups\": %lld, "
                       "\"stride\": [%lld, %lld, %lld], \"dilation\": [%lld, %lld, %lld], "
                       "\"padding\": %s",
                       dt == CONV_FLOAT64 ? "float64" : "float32", (long long)g.groups,
                       (long long)g.stride[0], (long long)g.stride[1], (long long)g.stride[2],
                       (long long)g.dilation[0], (long long)g.dilation[1],
                       (long long)g.dilation[2], pad);
        int64_t xs[5] = {g.n, g.c, g.d, g.h, g.w}, ws[5] = {g.f, g.c / g.groups, g.kd, g.kh, g.kw},
                ys[5] = {g.n, g.f, ref3_out(&g, 0), ref3_out(&g, 1), ref3_out(&g, 2)};
        double *x = put_tensor(&body, "x", xs + 5 - xr, xr, &seed);
        double *w = put_tensor(&body, "w", ws, 5, &seed);
        double *b = bias ? put_tensor(&body, "b", &g.f, 1, &seed) : NULL;
        double *dy = put_tensor(&body, "dy", ys + 5 - xr, xr, &seed);
        api_buf_puts(&body, ", \"outputs\": [\"dx\", \"dw\", \"db\"]}");
        int64_t counts[4] = {ref3_numel_y(&g), ref3_numel_x(&g), ref3_numel_w(&g), g.f};
        double *want[4], *scale[4];
        for (int i = 0; i < 4; i++) {
            want[i] = malloc((size_t)counts[i] * sizeof(double));
            scale[i] = malloc((size_t)counts[i] * sizeof(double));
        }
        double *ax = abs_copy(x, counts[1]), *aw = abs_copy(w, counts[2]),
               *ab = abs_copy(b, g.f), *ady = abs_copy(dy, counts[0]);
        ref3_forward(want[0], x, w, b, &g);
        ref3_forward(scale[0], ax, aw, ab, &g);
        ref3_backward_data(want[1], dy, w, &g);
        ref3_backward_data(scale[1], ady, aw, &g);
        ref3_backward_weights(want[2], dy, x, &g);
        ref3_backward_weights(scale[2], ady, ax, &g);
        ref3_backward_bias(want[3], dy, &g);
        ref3_backward_bias(scale[3], ady, &g);
        const char *why = send_both(body.data, "conv3d", want, scale, ys + 5 - xr, xs + 5 - xr,
                                    xr, ws, 5, g.f, dt == CONV_FLOAT64 ? 1e-12 : 1e-5);
        if (why && bad++ < 5) CHECK(false, "conv3d trial %d: %s: %.300s", trial, why, body.data);
        for (int i = 0; i < 4; i++) {
            free(want[i]);
            free(scale[i]);
        }
        free(x), free(w), free(b), free(dy), free(ax), free(aw), free(ab), free(ady);
        api_buf_free(&body);
    }
    CHECK(bad == 0, "conv3d: %d of %d trials off the reference", bad, TRIALS);
}

// numpy.pad's rule for one axis (reflect without repeating the edge, replicate, wrap), written
// apart from core/conv_pad.c.
static int64_t pad_source(int64_t p, int64_t n, int64_t lo, int mode) {
    int64_t i = p - lo;
    if (mode == 2) return i < 0 ? 0 : i >= n ? n - 1 : i; // replicate
    while (i < 0 || i >= n)
        i = mode == 3 ? (i < 0 ? i + n : i - n) : (i < 0 ? -i : 2 * (n - 1) - i);
    return i;
}

// conv2d with padding_mode reflect (1), replicate (2) or circular (3): y against conv_ref on x
// padded here, dx against conv_ref's dx of the padded input summed back onto the cells copied.
static void test_padding_modes(void) {
    static const char *const modes[] = {"zeros", "reflect", "replicate", "circular"};
    int bad = 0, run = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
        int mode = (int)t_rand_int(&seed, 1, 3);
        conv_dtype dt = trial % 2 ? CONV_FLOAT64 : CONV_FLOAT32;
        conv_geom g = {.n = t_rand_int(&seed, 1, 2), .groups = 1, .stride_h = t_rand_int(&seed, 1, 2),
                       .stride_w = t_rand_int(&seed, 1, 2), .dilation_h = 1,
                       .dilation_w = t_rand_int(&seed, 1, 2)};
        g.c = t_rand_int(&seed, 1, 2);
        g.f = t_rand_int(&seed, 1, 2);
        g.h = t_rand_int(&seed, 2, 5);
        g.w = t_rand_int(&seed, 2, 5);
        g.kh = t_rand_int(&seed, 1, 3);
        g.kw = t_rand_int(&seed, 1, 3);
        int64_t ph = t_rand_int(&seed, 0, mode == 1 ? g.h - 1 : g.h);
        int64_t pw = t_rand_int(&seed, 0, mode == 1 ? g.w - 1 : g.w);
        // The padded layer with no padding: what PyTorch runs after F.pad.
        conv_geom gp = g;
        gp.h += 2 * ph;
        gp.w += 2 * pw;
        int64_t ho = conv_ref_out_size(gp.h, g.kh, g.stride_h, 1, 0, 0),
                wo = conv_ref_out_size(gp.w, g.kw, g.stride_w, g.dilation_w, 0, 0);
        if (ho < 1 || wo < 1) continue;
        run++;
        api_buf body = {0};
        api_buf_printf(&body,
                       "{\"op\": \"conv2d.backward\", \"dtype\": \"%s\", \"padding_mode\": \"%s\", "
                       "\"stride\": [%lld, %lld], \"dilation\": [1, %lld], \"padding\": [%lld, %lld]",
                       dt == CONV_FLOAT64 ? "float64" : "float32", modes[mode],
                       (long long)g.stride_h, (long long)g.stride_w, (long long)g.dilation_w,
                       (long long)ph, (long long)pw);
        int64_t xs[4] = {g.n, g.c, g.h, g.w}, ws[4] = {g.f, g.c, g.kh, g.kw},
                ys[4] = {g.n, g.f, ho, wo};
        double *x = put_tensor(&body, "x", xs, 4, &seed);
        double *w = put_tensor(&body, "w", ws, 4, &seed);
        double *b = put_tensor(&body, "b", &g.f, 1, &seed);
        double *dy = put_tensor(&body, "dy", ys, 4, &seed);
        api_buf_puts(&body, ", \"outputs\": [\"dx\", \"dw\", \"db\"]}");
        int64_t nx = g.n * g.c * g.h * g.w, np = g.n * g.c * gp.h * gp.w, nw = g.f * g.c * g.kh * g.kw,
                ny = g.n * g.f * ho * wo;
        double *xp = malloc((size_t)np * sizeof *xp), *dxp = malloc((size_t)np * sizeof *dxp);
        double *want[4], *scale[4];
        int64_t counts[4] = {ny, nx, nw, g.f};
        for (int i = 0; i < 4; i++) {
            want[i] = calloc((size_t)counts[i], sizeof(double));
            scale[i] = calloc((size_t)counts[i], sizeof(double));
        }
        double *ax = abs_copy(x, nx), *aw = abs_copy(w, nw), *ab = abs_copy(b, g.f),
               *ady = abs_copy(dy, ny);
        for (int pass = 0; pass < 2; pass++) { // the answers, then their scales over |inputs|
            const double *xx = pass ? ax : x, *ww = pass ? aw : w, *bb = pass ? ab : b,
                         *dd = pass ? ady : dy;
            double **out = pass ? scale : want;
            for (int64_t q = 0; q < g.n * g.c; q++)
                for (int64_t r = 0; r < gp.h; r++)
                    for (int64_t c = 0; c < gp.w; c++)
                        xp[(q * gp.h + r) * gp.w + c] =
                            xx[(q * g.h + pad_source(r, g.h, ph, mode)) * g.w +
                               pad_source(c, g.w, pw, mode)];
            conv_ref_forward(out[0], xp, ww, bb, &gp);
            conv_ref_backward_weights(out[2], dd, xp, &gp);
            conv_ref_backward_bias(out[3], dd, &gp);
            conv_ref_backward_data(dxp, dd, ww, &gp);
            for (int64_t q = 0; q < g.n * g.c; q++)
                for (int64_t r = 0; r < gp.h; r++)
                    for (int64_t c = 0; c < gp.w; c++)
                        out[1][(q * g.h + pad_source(r, g.h, ph, mode)) * g.w +
                               pad_source(c, g.w, pw, mode)] += dxp[(q * gp.h + r) * gp.w + c];
        }
        const char *why = send_both(body.data, "conv2d", want, scale, ys, xs, 4, ws, 4, g.f,
                                    dt == CONV_FLOAT64 ? 1e-12 : 1e-5);
        if (why && bad++ < 5)
            CHECK(false, "padding_mode trial %d: %s: %.300s", trial, why, body.data);
        for (int i = 0; i < 4; i++) {
            free(want[i]);
            free(scale[i]);
        }
        free(x), free(w), free(b), free(dy), free(xp), free(dxp), free(ax), free(aw), free(ab),
            free(ady);
        api_buf_free(&body);
    }
    CHECK(run > TRIALS / 2 && bad == 0, "padding modes: %d of %d trials off the reference", bad,
          run);
}

// conv_transpose3d: x [N,C,D,H,W] or [C,D,H,W], w [C,F/G,kd,kh,kw]. The reference is the
// definition: the transposed layer is the gradient map of the conv3d layer whose input has the
// transposed output's size (PyTorch's formula, computed here), so y = ref3_backward_data(x),
// dx = ref3_forward(dy), dw = ref3_backward_weights(x, dy), db = dy summed.
static void test_conv_transpose3d(void) {
    int bad = 0;
    for (int trial = 0; trial < TRIALS / 2; trial++) {
        conv_dtype dt = trial % 2 ? CONV_FLOAT64 : CONV_FLOAT32;
        int64_t groups = t_rand_int(&seed, 1, 2), n = t_rand_int(&seed, 1, 2);
        int64_t ci = groups * t_rand_int(&seed, 1, 2), co = groups * t_rand_int(&seed, 1, 2);
        conv3d_geom a = {.n = n, .c = co, .f = ci, .groups = groups};
        int64_t in[3], k[3], op[3];
        for (int i = 0; i < 3; i++) {
            in[i] = t_rand_int(&seed, 1, 3);
            k[i] = t_rand_int(&seed, 1, 3);
            a.stride[i] = t_rand_int(&seed, 1, 2);
            a.dilation[i] = t_rand_int(&seed, 1, 2);
            a.padding[2 * i] = a.padding[2 * i + 1] = t_rand_int(&seed, 0, 1);
            op[i] = t_rand_int(&seed, 0, a.stride[i] - 1); // the sizes ref3 gives back
        }
        a.kd = k[0], a.kh = k[1], a.kw = k[2];
        int64_t out[3];
        for (int i = 0; i < 3; i++)
            out[i] = (in[i] - 1) * a.stride[i] - 2 * a.padding[2 * i] + a.dilation[i] * (k[i] - 1) +
                     op[i] + 1;
        if (out[0] < 1 || out[1] < 1 || out[2] < 1) continue;
        a.d = out[0], a.h = out[1], a.w = out[2];
        bool batched = t_rand_int(&seed, 0, 1), bias = t_rand_int(&seed, 0, 1);
        if (!batched) a.n = n = 1;
        int xr = batched ? 5 : 4;
        api_buf body = {0};
        api_buf_printf(&body,
                       "{\"op\": \"conv_transpose3d.backward\", \"dtype\": \"%s\", \"groups\": "
                       "%lld, \"stride\": [%lld, %lld, %lld], \"dilation\": [%lld, %lld, %lld], "
                       "\"padding\": [%lld, %lld, %lld], \"output_padding\": [%lld, %lld, %lld]",
                       dt == CONV_FLOAT64 ? "float64" : "float32", (long long)groups,
                       (long long)a.stride[0], (long long)a.stride[1], (long long)a.stride[2],
                       (long long)a.dilation[0], (long long)a.dilation[1],
                       (long long)a.dilation[2], (long long)a.padding[0], (long long)a.padding[2],
                       (long long)a.padding[4], (long long)op[0], (long long)op[1],
                       (long long)op[2]);
        int64_t xs[5] = {n, ci, in[0], in[1], in[2]}, ws[5] = {ci, co / groups, k[0], k[1], k[2]},
                ys[5] = {n, co, out[0], out[1], out[2]};
        double *x = put_tensor(&body, "x", xs + 5 - xr, xr, &seed);
        double *w = put_tensor(&body, "w", ws, 5, &seed);
        double *b = bias ? put_tensor(&body, "b", &co, 1, &seed) : NULL;
        double *dy = put_tensor(&body, "dy", ys + 5 - xr, xr, &seed);
        api_buf_puts(&body, ", \"outputs\": [\"dx\", \"dw\", \"db\"]}");
        // The adjoint layer's x is the transposed y, its y the transposed x.
        int64_t counts[4] = {ref3_numel_x(&a), ref3_numel_y(&a), ref3_numel_w(&a), co};
        double *want[4], *scale[4];
        for (int i = 0; i < 4; i++) {
            want[i] = malloc((size_t)counts[i] * sizeof(double));
            scale[i] = malloc((size_t)counts[i] * sizeof(double));
        }
        double *ax = abs_copy(x, counts[1]), *aw = abs_copy(w, counts[2]),
               *ab = abs_copy(b, co), *ady = abs_copy(dy, counts[0]);
        for (int pass = 0; pass < 2; pass++) {
            const double *xx = pass ? ax : x, *ww = pass ? aw : w, *bb = pass ? ab : b,
                         *dd = pass ? ady : dy;
            double **o = pass ? scale : want;
            ref3_backward_data(o[0], xx, ww, &a);
            const int64_t per = counts[0] / (n * co);
            for (int64_t i = 0; bb && i < counts[0]; i++) o[0][i] += bb[(i / per) % co];
            ref3_forward(o[1], dd, ww, NULL, &a);
            ref3_backward_weights(o[2], xx, dd, &a);
            for (int64_t f = 0; f < co; f++) {
                o[3][f] = 0;
                for (int64_t m = 0; m < n; m++)
                    for (int64_t i = 0; i < per; i++) o[3][f] += dd[(m * co + f) * per + i];
            }
        }
        const char *why = send_both(body.data, "conv_transpose3d", want, scale, ys + 5 - xr,
                                    xs + 5 - xr, xr, ws, 5, co, dt == CONV_FLOAT64 ? 1e-12 : 1e-5);
        if (why && bad++ < 5)
            CHECK(false, "conv_transpose3d trial %d: %s: %.300s", trial, why, body.data);
        for (int i = 0; i < 4; i++) {
            free(want[i]);
            free(scale[i]);
        }
        free(x), free(w), free(b), free(dy), free(ax), free(aw), free(ab), free(ady);
        api_buf_free(&body);
    }
    CHECK(bad == 0, "conv_transpose3d: %d trials off the reference", bad);
}

// Every rule of the new families refused with its code and path, never a 500.
static void test_refusals(void) {
    const char *c1 = "{\"op\": \"conv1d.forward\", \"x\": [[1, 2, 3, 4]], \"w\": [[[1, 1]]]";
    expect_error("{\"op\": \"conv_transpose1d.forward\", \"x\": [[1, 2]], \"w\": [[[1, 1]]], "
                 "\"stride\": [2, 2]}",
                 422, "invalid_value", "stride", "conv_transpose1d has 1 spatial axis");
    expect_error("{\"op\": \"conv_transpose1d.forward\", \"x\": [[1, 2]], \"w\": [[[1, 1]]], "
                 "\"padding\": 2}",
                 422, "invalid_value", "padding", "width would be");
    expect_error("{\"op\": \"conv_transpose1d.forward\", \"x\": [[1, 2]], \"w\": [[1, 1]]}",
                 422, "shape_mismatch", "w.shape", "3-D [C, F/groups, k]");
    const char *t2 = "{\"op\": \"conv_transpose2d.forward\", \"x\": [[[1, 2], [3, 4]]], "
                     "\"w\": [[[[1, 1], [1, 1]]]]";
    char body[512];
#define WITH(base, extra) (snprintf(body, sizeof body, "%s%s}", base, extra), body)
    expect_error(WITH(c1, ", \"stride\": [1, 2]"), 422, "invalid_value", "stride",
                 "conv1d has 1 spatial axis");
    expect_error(WITH(c1, ", \"dilation\": [1, 1]"), 422, "invalid_value", "dilation",
                 "1 spatial axis");
    expect_error(WITH(c1, ", \"padding\": [1, 1, 1, 1]"), 422, "invalid_value", "padding",
                 "1 spatial axis");
    expect_error(WITH(c1, ", \"output_padding\": 1"), 422, "field_not_allowed", "output_padding",
                 "transposed");
    expect_error(WITH(c1, ", \"padding\": \"same\", \"stride\": 2"), 422, "invalid_value",
                 "padding", "stride 1");
    expect_error("{\"op\": \"conv1d.forward\", \"x\": [1, 2, 3], \"w\": [[[1]]]}", 422,
                 "invalid_shape", "x.shape", "[N, C, L] or [C, L]");
    expect_error("{\"op\": \"conv1d.forward\", \"x\": [[1, 2, 3]], \"w\": [[1]]}", 422,
                 "shape_mismatch", "w.shape", "[F, C/groups, k]");
    expect_error("{\"op\": \"conv1d.forward\", \"x\": [[1, 2, 3]], \"w\": [[[1, 1, 1, 1]]]}", 422,
                 "kernel_too_large", "w.shape[2]", "");
    expect_error("{\"op\": \"conv1d.forward\", \"x\": [[1, 2, 3]], \"w\": [[[1], [1]]]}", 422,
                 "shape_mismatch", "w.shape[1]", "");
    expect_error("{\"op\": \"conv1d.forward\", \"x\": [[1, 2, 3]], \"w\": [[[1]]], \"b\": [1, 2]}",
                 422, "shape_mismatch", "b.shape[0]", "");
    expect_error(WITH(c1, ", \"stride\": 0"), 422, "invalid_value", "stride", "");
    // Messages name the layer in the op's own axes, not the 2-d layer it runs as.
    expect_error("{\"op\": \"conv_transpose1d.forward\", \"x\": [[1, 2], [3, 4]], "
                 "\"w\": [[[1, 1]]]}",
                 422, "shape_mismatch", "w.shape[0]", "w is 3-D [C, F/groups, k]");
    expect_error("{\"op\": \"conv_transpose1d.backward\", \"x\": [[1, 2]], \"w\": [[[1, 1]]], "
                 "\"stride\": 3, \"dy\": [[1, 2]]}",
                 422, "shape_mismatch", "dy.shape[1]", "(with stride [3] and padding [0, 0])");
    expect_error("{\"op\": \"conv3d.backward\", \"x\": [[[[1, 2]], [[3, 4]]]], "
                 "\"w\": [[[[[1]]]]], \"stride\": [2, 1, 1], \"padding\": [1, 0, 0], "
                 "\"dy\": [[[[1, 2]]]]}",
                 422, "shape_mismatch", "dy.shape[1]",
                 "(with stride [2, 1, 1] and padding [1, 1, 0, 0, 0, 0])");
    expect_error(WITH(t2, ", \"stride\": [1, 2, 3]"), 422, "invalid_value", "stride",
                 "");
    expect_error(WITH(t2, ", \"padding\": [1, 1, 1, 1]"), 422, "invalid_value", "padding",
                 "2 spatial axes");
    expect_error(WITH(t2, ", \"padding\": \"same\""), 422, "invalid_value", "padding",
                 "transposed");
    expect_error(WITH(t2, ", \"output_padding\": [0, 1, 1]"), 422, "invalid_value",
                 "output_padding", "");
    expect_error(WITH(t2, ", \"output_padding\": [0, 1]"), 422, "invalid_value",
                 "output_padding[1]", "smaller than the stride (1) or the dilation (1)");
    // output_padding below the dilation but not the stride: y grows by it (PyTorch's rule).
    int st;
    cJSON *grown = run("{\"op\": \"conv_transpose2d.forward\", \"x\": [[[1, 2], [3, 4]]], "
                       "\"w\": [[[[1, 1], [1, 1]]]], \"output_padding\": 1, \"dilation\": 2}",
                       &st);
    const cJSON *shape =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(grown, "y"), "shape");
    CHECK(st == 200 && cJSON_GetArraySize(shape) == 3 &&
              cJSON_GetArrayItem(shape, 1)->valuedouble == 5,
          "output_padding 1 with stride 1 and dilation 2: status %d", st);
    cJSON_Delete(grown);
    expect_error(WITH(t2, ", \"output_padding\": -1, \"stride\": 2"), 422, "invalid_value",
                 "output_padding", "0 or more");
    expect_error(WITH(t2, ", \"padding\": [0, 2]"), 422, "invalid_value", "padding[1]",
                 "width would be");
    expect_error("{\"op\": \"conv_transpose2d.forward\", \"x\": [[1, 2], [3, 4]], \"w\": "
                 "[[[[1]]]]}",
                 422, "invalid_shape", "x.shape", "[N, C, H, W] or [C, H, W]");
    expect_error("{\"op\": \"conv_transpose2d.forward\", \"x\": [[[1, 2], [3, 4]]], \"w\": "
                 "[[[[1]]], [[[1]]]]}",
                 422, "shape_mismatch", "w.shape[0]", "[C, F/groups, kh, kw]");
    expect_error("{\"op\": \"conv_transpose2d.forward\", \"x\": [[[1, 2]], [[3, 4]], [[5, 6]]], "
                 "\"w\": [[[[1]]], [[[1]]], [[[1]]]], \"groups\": 2}",
                 422, "invalid_value", "groups", "");
    expect_error("{\"op\": \"conv_transpose2d.forward\", \"x\": [[[1, 2], [3, 4]]], \"w\": "
                 "[[[[1]], [[1]]]], \"b\": [1]}",
                 422, "shape_mismatch", "b.shape[0]", "F=2");
    expect_error(WITH(t2, ", \"stride\": 3000000000"), 422, "invalid_value", "stride", "");
    expect_error(WITH(t2, ", \"stride\": -1"), 422, "invalid_value", "stride", "");
    expect_error(WITH(t2, ", \"padding\": [-1, 0]"), 422, "invalid_value", "padding[0]", "");
    expect_error(WITH(t2, ", \"dilation\": [1, 0]"), 422, "invalid_value", "dilation[1]", "");
    const char *c3 = "{\"op\": \"conv3d.forward\", \"x\": {\"shape\": [1, 2, 3, 3], \"data\": "
                     "[1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9]}, \"w\": "
                     "{\"shape\": [1, 1, 2, 2, 2], \"data\": [1, 1, 1, 1, 1, 1, 1, 1]}";
    expect_error(WITH(c3, ", \"stride\": [1, 2]"), 422, "invalid_value", "stride",
                 "conv3d has 3 spatial axes");
    expect_error(WITH(c3, ", \"padding\": [1, 1, 1, 1]"), 422, "invalid_value", "padding",
                 "3 spatial axes");
    expect_error(WITH(c3, ", \"dilation\": [1, 0, 1]"), 422, "invalid_value", "dilation[1]",
                 "");
    expect_error(WITH(c3, ", \"dilation\": [0, 1, 1]"), 422, "invalid_value", "dilation[0]",
                 "depth dilation");
    expect_error(WITH(c3, ", \"padding\": [0, 0, -1]"), 422, "invalid_value", "padding[2]",
                 "");
    expect_error(WITH(c3, ", \"dilation\": [3, 1, 1]"), 422, "kernel_too_large", "w.shape[2]",
                 "along the depth");
    expect_error(WITH(c3, ", \"padding\": \"same\", \"stride\": [1, 1, 2]"), 422,
                 "invalid_value", "padding", "stride 1");
    expect_error(WITH(c3, ", \"groups\": 2"), 422, "invalid_value", "groups", "");
    expect_error(WITH(c3, ", \"output_padding\": [0, 0, 0]"), 422, "field_not_allowed",
                 "output_padding", "");
    expect_error("{\"op\": \"conv3d.forward\", \"x\": [[[1, 2], [3, 4]]], \"w\": [[[[[1]]]]]}", 422,
                 "invalid_shape", "x.shape", "[N, C, D, H, W] or [C, D, H, W]");
    expect_error("{\"op\": \"conv3d.forward\", \"x\": [[[[1, 2], [3, 4]]]], \"w\": [[[[1]]]]}", 422,
                 "shape_mismatch", "w.shape", "5-D [F, C/groups, kd, kh, kw]");
    expect_error("{\"op\": \"conv3d.forward\", \"x\": [[[[1, 2], [3, 4]]]], \"w\": [[[[[1]]], "
                 "[[[1]]]]]}",
                 422, "shape_mismatch", "w.shape[1]", "w.shape[1] must be 1");
    api_options small;
    api_options_default(&small);
    small.max_elements = 20;
    api_response r = {0};
    const char *stacked = "{\"op\": \"conv3d.forward\", \"x\": {\"shape\": [1, 1, 4, 2, 2], "
                          "\"data\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}, \"w\": "
                          "{\"shape\": [1, 1, 3, 1, 1], \"data\": [1, 1, 1]}, \"padding\": [1, 0, 0]}";
    codec_run_json(&r, stacked, strlen(stacked), NULL, &small);
    CHECK(r.status == 422 && r.body && strstr(r.body, "too_many_elements") &&
              strstr(r.body, "conv3d works on a copy of x"),
          "conv3d's stacked copy held to max_elements: %d %s", r.status, r.body ? r.body : "");
    free(r.body);
    const char *p2 = "{\"op\": \"conv2d.forward\", \"x\": [[1, 2, 3], [4, 5, 6]], \"w\": [[1]]";
    expect_error(WITH(p2, ", \"padding_mode\": \"mirror\""), 422, "invalid_value", "padding_mode",
                 "\"zeros\", \"reflect\", \"replicate\" or \"circular\"");
    expect_error(WITH(p2, ", \"padding_mode\": 1"), 422, "invalid_type", "padding_mode", "");
    expect_error(WITH(p2, ", \"padding_mode\": \"reflect\", \"padding\": 2"), 422,
                 "invalid_value", "padding", "along the height the padding is 2 and 2 and the "
                 "input has 2");
    expect_error(WITH(p2, ", \"padding_mode\": \"circular\", \"padding\": [0, 4]"), 422,
                 "invalid_value", "padding", "at most");
    expect_error(WITH(c1, ", \"padding_mode\": \"reflect\", \"padding\": 4"), 422,
                 "invalid_value", "padding", "along the width");
    expect_error(WITH(c3, ", \"padding_mode\": \"reflect\", \"padding\": [2, 0, 0]"), 422,
                 "invalid_value", "padding", "along the depth");
    expect_error(WITH(t2, ", \"padding_mode\": \"replicate\""), 422, "invalid_value",
                 "padding_mode", "only \"zeros\"");
    int status;
    cJSON *ok = run("{\"op\": \"conv2d.forward\", \"x\": [[1, 2, 3], [4, 5, 6]], \"w\": [[1]], "
                    "\"padding_mode\": \"replicate\", \"padding\": 9}", &status);
    CHECK(status == 200, "replicate takes any padding: %d", status);
    cJSON_Delete(ok);
    // A stride beyond the padded input takes its first window and a one-tap axis reads no
    // dilation: PyTorch answers both at any size, beyond convd's int32 fields too.
    cJSON *far = run("{\"op\": \"conv2d.forward\", \"x\": [[1, 2, 3], [4, 5, 6]], \"w\": "
                     "[[2, 1]], \"stride\": 1099511627776, \"dilation\": [4294967296, 1]}",
                     &status);
    char *far_y = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(far, "y"));
    CHECK(status == 200 && far_y && strcmp(far_y, "{\"shape\":[1,1],\"data\":[4]}") == 0,
          "stride 2^40, dilation 2^32 on a one-tap axis: %d %s", status, far_y ? far_y : "");
    free(far_y);
    cJSON_Delete(far);
    expect_error(WITH(c1, ", \"dilation\": 2147483648, \"padding\": \"same\""), 422,
                 "invalid_value", "dilation", "2147483647");
    const char *t3 = "{\"op\": \"conv_transpose3d.forward\", \"x\": {\"shape\": [1, 1, 2, 2, 2], "
                     "\"data\": [1, 2, 3, 4, 5, 6, 7, 8]}, \"w\": {\"shape\": [1, 1, 2, 2, 2], "
                     "\"data\": [1, 1, 1, 1, 1, 1, 1, 1]}";
    expect_error(WITH(t3, ", \"output_padding\": [0, 0, 1]"), 422, "invalid_value",
                 "output_padding[2]", "smaller than the stride (1)");
    expect_error(WITH(t3, ", \"padding\": [0, 0, 2]"), 422, "invalid_value", "padding[2]",
                 "width would be");
    expect_error(WITH(t3, ", \"stride\": [1, 1]"), 422, "invalid_value", "stride",
                 "conv_transpose3d has 3 spatial axes");
    expect_error(WITH(t3, ", \"stride\": [1, 0, 1]"), 422, "invalid_value", "stride[1]", "");
    expect_error(WITH(t3, ", \"padding\": \"same\""), 422, "invalid_value", "padding",
                 "transposed");
#undef WITH
}

int main(int argc, char **argv) {
    (void)argc;
    blas_boot(argv);
    test_refusals();
    test_conv1d();
    test_conv_transpose();
    test_conv3d();
    test_conv_transpose3d();
    test_padding_modes();
    return t_finish("test_api_family");
}
