// PyTorch's acceptance and refusal over thousands of random layers per op: every line of
// tests/golden/sweep/<op>.jsonl (made by tests/golden/make_sweep.py with PyTorch: shapes,
// parameters and PyTorch's verdict, no tensor data) is sent through the v1 JSON door in-process
// (codec_run_json) with values made here. Where PyTorch accepts, convd must answer 200 with y
// of PyTorch's shape (backward: dx, dw, db of x's, w's and b's) holding the values of the naive
// 3-d reference (tests/harness/ref_conv3d.h: 1-d and 2-d layers are 3-d ones with unit leading
// axes; a padding_mode pads x here; a transposed layer is its adjoint conv's gradient map).
// Where PyTorch refuses, convd must answer 422 with a code and a message; never 500, never 200.
//
// The documented differences (docs/API.md, "Where convd differs from PyTorch") are rules here,
// applied before PyTorch's verdict:
//   - an empty tensor (a size 0) is refused, invalid_shape (PyTorch takes N = 0 or C = 0);
//   - a negative padding is refused, invalid_value (PyTorch refuses it in zeros mode; with
//     reflect, replicate or circular, and through F.pad for the four sides, it crops x);
//   - a dilation beyond 2^31-1 on an axis of several taps is refused, invalid_value (PyTorch
//     answers it where "same" padding leaves an output).
// The references of what PyTorch cannot spell (four-sided padding, conv2d's [H, W] x, unbatched
// x, lists with a padding_mode) are the generator's: its verdicts are already theirs.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_buf.h"
#include "api/codec/codec.h"
#include "server/blas_boot.h"
#include "tests/harness/ref_conv3d.h"
#include "tests/testlib.h"

enum { MAX_DIMS = 8, SHOWN = 8 };

// One line of a sweep file, read: the fields are the line's items (NULL when null).
typedef struct {
    int64_t x[MAX_DIMS], w[MAX_DIMS], b[MAX_DIMS], dy[MAX_DIMS], y[MAX_DIMS];
    int xr, wr, br, dyr, yr; // ranks; br, dyr 0 when absent; yr -1 when PyTorch refuses
    const cJSON *stride, *padding, *dilation, *groups, *output_padding, *padding_mode;
} sweep_case;

typedef struct {
    const char *op;
    int spatial;
    bool transposed, backward;
} sweep_op;

static int read_shape(int64_t *shape, const cJSON *item) {
    if (!cJSON_IsArray(item)) return -1;
    int rank = 0;
    for (const cJSON *e = item->child; e && rank < MAX_DIMS; e = e->next)
        shape[rank++] = (int64_t)e->valuedouble;
    return rank;
}

static const cJSON *or_null(const cJSON *item) {
    return cJSON_IsNull(item) ? NULL : item;
}

static bool read_case(sweep_case *c, const cJSON *line) {
    if (cJSON_GetArraySize(line) != 11) return false;
    const cJSON *f[11];
    int i = 0;
    for (const cJSON *e = line->child; e; e = e->next) f[i++] = e;
    c->xr = read_shape(c->x, f[0]);
    c->wr = read_shape(c->w, f[1]);
    c->br = or_null(f[2]) ? read_shape(c->b, f[2]) : 0;
    c->stride = or_null(f[3]);
    c->padding = or_null(f[4]);
    c->dilation = or_null(f[5]);
    c->groups = or_null(f[6]);
    c->output_padding = or_null(f[7]);
    c->padding_mode = or_null(f[8]);
    c->dyr = or_null(f[9]) ? read_shape(c->dy, f[9]) : 0;
    c->yr = or_null(f[10]) ? read_shape(c->y, f[10]) : -1;
    return c->xr > 0 && c->wr > 0;
}

static int64_t numel(const int64_t *shape, int rank) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    return n;
}

static bool has_zero(const int64_t *shape, int rank) {
    for (int i = 0; i < rank; i++)
        if (shape[i] == 0) return true;
    return false;
}

// Random values k/64 (exact in both dtypes, at most 6 digits: %g prints them exactly) written
// into the body as {"shape", "data"}; returns the values, owned by the caller.
static double *put_tensor(api_buf *body, const char *name, const int64_t *shape, int rank,
                          uint64_t *rng) {
    int64_t n = numel(shape, rank);
    api_buf_printf(body, ",\"%s\":{\"shape\":[", name);
    for (int i = 0; i < rank; i++)
        api_buf_printf(body, "%s%lld", i ? "," : "", (long long)shape[i]);
    api_buf_puts(body, "],\"data\":[");
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        api_buf_printf(body, "%s%g", i ? "," : "", v[i] = (double)t_rand_int(rng, -64, 64) / 64);
    api_buf_puts(body, "]}");
    return v;
}

static void put_param(api_buf *body, const char *name, const cJSON *item) {
    if (!item) return;
    char *text = cJSON_PrintUnformatted(item);
    api_buf_printf(body, ",\"%s\":%s", name, text);
    free(text);
}

// The layer in the reference's terms: every op as a 3-d one (leading unit axes), parameters
// per axis as PyTorch reads them (an integer or a list of one fills every axis).
typedef struct {
    int64_t n, c, f, groups;    // conv: x's channels c, filters f; transposed: x has c = w[0]
    int64_t in[3], k[3], stride[3], dilation[3], lo[3], hi[3], out_pad[3];
    int mode;                   // 0 zeros, 1 reflect, 2 replicate, 3 circular
} layer;

static void axis_param(int64_t out[3], const cJSON *item, int spatial, int64_t fallback) {
    for (int a = 0; a < 3; a++) out[a] = fallback;
    if (!item) return;
    int n = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : 1;
    for (int a = 0; a < spatial; a++) {
        const cJSON *v = cJSON_IsArray(item) ? cJSON_GetArrayItem(item, n == 1 ? 0 : a) : item;
        out[3 - spatial + a] = (int64_t)v->valuedouble;
    }
}

static layer read_layer(const sweep_case *c, const sweep_op *op) {
    layer L = {0};
    int s = op->spatial;
    bool plain = c->xr == 2 && s == 2; // conv2d's [H, W] x, [kh, kw] w
    bool batched = c->xr == s + 2;
    L.n = batched ? c->x[0] : 1;
    L.c = plain ? 1 : c->x[batched ? 1 : 0];
    L.groups = c->groups ? (int64_t)c->groups->valuedouble : 1;
    L.f = plain ? 1 : op->transposed ? c->w[1] * L.groups : c->w[0];
    for (int a = 0; a < 3; a++) {
        bool real = a >= 3 - s;
        L.in[a] = real ? c->x[c->xr - 3 + a] : 1;
        L.k[a] = real ? c->w[c->wr - 3 + a] : 1;
    }
    axis_param(L.stride, c->stride, s, 1);
    axis_param(L.dilation, c->dilation, s, 1);
    axis_param(L.out_pad, c->output_padding, s, 0);
    const cJSON *p = c->padding;
    if (cJSON_IsString(p)) {
        for (int a = 0; a < 3; a++) { // "same": d*(k-1) split, the smaller half first
            int64_t total = strcmp(p->valuestring, "same") == 0 ? L.dilation[a] * (L.k[a] - 1) : 0;
            L.lo[a] = total / 2;
            L.hi[a] = total - L.lo[a];
        }
    } else if (cJSON_GetArraySize(p) == 4 && s == 2) { // [top, bottom, left, right]
        for (int i = 0; i < 4; i++)
            (i % 2 ? L.hi : L.lo)[1 + i / 2] = (int64_t)cJSON_GetArrayItem(p, i)->valuedouble;
    } else {
        axis_param(L.lo, p, s, 0);
        memcpy(L.hi, L.lo, sizeof L.hi);
    }
    static const char *const modes[] = {"zeros", "reflect", "replicate", "circular"};
    for (int m = 0; m < 4; m++)
        if (c->padding_mode && strcmp(c->padding_mode->valuestring, modes[m]) == 0) L.mode = m;
    return L;
}

// The input index a padded index p reads along an axis of n with low pad lo, or -1 for a zero
// (numpy.pad's reflect, edge and wrap; written apart from core/conv_pad.c).
static int64_t pad_source(int64_t p, int64_t n, int64_t lo, int mode) {
    int64_t i = p - lo;
    if (mode == 0) return i < 0 || i >= n ? -1 : i;
    if (mode == 2) return i < 0 ? 0 : i >= n ? n - 1 : i;
    while (i < 0 || i >= n)
        i = mode == 3 ? (i < 0 ? i + n : i - n) : (i < 0 ? -i : 2 * (n - 1) - i);
    return i;
}

// x (planes, in) and xp (planes, in + lo + hi): xp = pad(x) when !fold, else x += the cells of
// xp each copies (the adjoint; x must hold zeros).
static void pad_planes(double *x, double *xp, int64_t planes, const layer *L, bool fold) {
    int64_t pd[3];
    for (int a = 0; a < 3; a++) pd[a] = L->in[a] + L->lo[a] + L->hi[a];
    for (int64_t q = 0; q < planes; q++)
        for (int64_t i = 0; i < pd[0]; i++)
            for (int64_t j = 0; j < pd[1]; j++)
                for (int64_t k = 0; k < pd[2]; k++) {
                    int64_t si = pad_source(i, L->in[0], L->lo[0], L->mode),
                            sj = pad_source(j, L->in[1], L->lo[1], L->mode),
                            sk = pad_source(k, L->in[2], L->lo[2], L->mode);
                    double *cell = &xp[((q * pd[0] + i) * pd[1] + j) * pd[2] + k];
                    bool inside = si >= 0 && sj >= 0 && sk >= 0;
                    double *src = inside ? &x[((q * L->in[0] + si) * L->in[1] + sj) * L->in[2] + sk]
                                         : NULL;
                    if (!fold) *cell = src ? *src : 0;
                    else if (src) *src += *cell;
                }
}

// The reference's answers out[y, dx, dw, db] for inputs x, w, b, dy (b, dy may be NULL).
// conv: the unpadded conv of x padded here; transposed: the adjoint conv a (input of the
// transposed y's size), whose output may pass x's size when output_padding is not below the
// stride: x is then extended with zeros and dx cut back.
static void reference(double *out[4], const double *x, const double *w, const double *b,
                      const double *dy, const layer *L, bool transposed) {
    conv3d_geom g = {.n = L->n, .groups = L->groups, .kd = L->k[0], .kh = L->k[1], .kw = L->k[2]};
    memcpy(g.stride, L->stride, sizeof g.stride);
    memcpy(g.dilation, L->dilation, sizeof g.dilation);
    if (!transposed) {
        g.c = L->c, g.f = L->f;
        g.d = L->in[0] + L->lo[0] + L->hi[0];
        g.h = L->in[1] + L->lo[1] + L->hi[1];
        g.w = L->in[2] + L->lo[2] + L->hi[2];
        int64_t planes = L->n * L->c;
        double *xp = calloc((size_t)ref3_numel_x(&g), sizeof *xp);
        pad_planes((double *)x, xp, planes, L, false);
        ref3_forward(out[0], xp, w, b, &g);
        if (dy) {
            double *dxp = calloc((size_t)ref3_numel_x(&g), sizeof *dxp);
            ref3_backward_data(dxp, dy, w, &g);
            memset(out[1], 0, (size_t)(planes * L->in[0] * L->in[1] * L->in[2]) * sizeof(double));
            pad_planes(out[1], dxp, planes, L, true);
            ref3_backward_weights(out[2], dy, xp, &g);
            if (b) ref3_backward_bias(out[3], dy, &g);
            free(dxp);
        }
        free(xp);
        return;
    }
    g.c = L->f, g.f = L->c; // the adjoint conv maps y (F channels) to x (C channels)
    for (int a = 0; a < 3; a++) {
        g.padding[2 * a] = g.padding[2 * a + 1] = L->lo[a];
        int64_t size = (L->in[a] - 1) * L->stride[a] - 2 * L->lo[a] +
                       L->dilation[a] * (L->k[a] - 1) + L->out_pad[a] + 1;
        if (a == 0) g.d = size;
        else if (a == 1) g.h = size;
        else g.w = size;
    }
    // x extended to the adjoint's output size (zeros beyond x).
    int64_t ext[3] = {ref3_out(&g, 0), ref3_out(&g, 1), ref3_out(&g, 2)};
    int64_t planes = L->n * L->c, ny = ref3_numel_x(&g);
    double *xe = calloc((size_t)ref3_numel_y(&g), sizeof *xe);
    for (int64_t q = 0; q < planes; q++)
        for (int64_t i = 0; i < L->in[0]; i++)
            for (int64_t j = 0; j < L->in[1]; j++)
                memcpy(&xe[((q * ext[0] + i) * ext[1] + j) * ext[2]],
                       &x[((q * L->in[0] + i) * L->in[1] + j) * L->in[2]],
                       (size_t)L->in[2] * sizeof *x);
    ref3_backward_data(out[0], xe, w, &g);
    int64_t per = ny / (L->n * L->f);
    for (int64_t i = 0; b && i < ny; i++) out[0][i] += b[(i / per) % L->f];
    if (dy) {
        double *dxe = malloc((size_t)ref3_numel_y(&g) * sizeof *dxe);
        ref3_forward(dxe, dy, w, NULL, &g);
        for (int64_t q = 0; q < planes; q++)
            for (int64_t i = 0; i < L->in[0]; i++)
                for (int64_t j = 0; j < L->in[1]; j++)
                    memcpy(&out[1][((q * L->in[0] + i) * L->in[1] + j) * L->in[2]],
                           &dxe[((q * ext[0] + i) * ext[1] + j) * ext[2]],
                           (size_t)L->in[2] * sizeof *dxe);
        ref3_backward_weights(out[2], xe, dy, &g);
        for (int64_t f = 0; b && f < L->f; f++) {
            out[3][f] = 0;
            for (int64_t i = 0; i < ny; i++)
                if ((i / per) % L->f == f) out[3][f] += dy[i];
        }
        free(dxe);
    }
    free(xe);
}

static double *abs_copy(const double *v, int64_t n) {
    if (!v) return NULL;
    double *a = malloc((size_t)(n > 0 ? n : 1) * sizeof *a);
    for (int64_t i = 0; i < n; i++) a[i] = fabs(v[i]);
    return a;
}

// Output `name` of the response: its shape against want_shape and its values within
// tol * scale each; a failure description or NULL.
static const char *compare(const cJSON *resp, const char *name, const int64_t *want_shape,
                           int rank, const double *want, const double *scale, double tol) {
    static char why[256];
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(resp, name);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
    int64_t shape[MAX_DIMS];
    int got = read_shape(shape, cJSON_GetObjectItemCaseSensitive(t, "shape"));
    bool same = got == rank && cJSON_GetArraySize(data) == numel(want_shape, rank);
    for (int i = 0; same && i < rank; i++) same = shape[i] == want_shape[i];
    if (!same) return snprintf(why, sizeof why, "%s: not of PyTorch's shape", name), why;
    int64_t i = 0;
    for (const cJSON *e = data->child; e; e = e->next, i++)
        if (!(fabs(e->valuedouble - want[i]) <= tol * scale[i] + 1e-300))
            return snprintf(why, sizeof why, "%s[%lld]: got %.17g, the reference %.17g", name,
                            (long long)i, e->valuedouble, want[i]),
                   why;
    return NULL;
}

// Whether a dilation beyond 2^31-1 falls on an axis of more than one tap (given one per axis,
// or one for all).
static bool dilation_beyond_int32(const sweep_case *c, const sweep_op *op) {
    const cJSON *d = c->dilation;
    int n = cJSON_IsArray(d) ? cJSON_GetArraySize(d) : 1, s = op->spatial;
    if (!d || (n != 1 && n != s) || c->wr < s) return false;
    for (int a = 0; a < s; a++) {
        const cJSON *v = cJSON_IsArray(d) ? cJSON_GetArrayItem(d, n == 1 ? 0 : a) : d;
        if (v->valuedouble > 2147483647.0 && c->w[c->wr - s + a] > 1) return true;
    }
    return false;
}

// What convd must answer for the case: 200, or 422 with `code` when a documented rule refuses
// what PyTorch accepts ("" for any code: PyTorch refuses too, maybe for another fault).
static int expected(const sweep_case *c, const sweep_op *op, const char **code,
                    const char **rule) {
    *code = "";
    *rule = NULL;
    if (has_zero(c->x, c->xr) || has_zero(c->w, c->wr) || (c->br && has_zero(c->b, c->br)) ||
        (c->dyr && has_zero(c->dy, c->dyr))) {
        *code = c->yr >= 0 ? "invalid_shape" : "";
        *rule = "empty tensor";
        return 422;
    }
    const cJSON *p = c->padding;
    bool negative = cJSON_IsNumber(p) && p->valuedouble < 0;
    for (const cJSON *e = cJSON_IsArray(p) ? p->child : NULL; e; e = e->next)
        negative |= e->valuedouble < 0;
    if (negative) {
        *code = c->yr >= 0 ? "invalid_value" : "";
        *rule = "negative padding";
        return 422;
    }
    if (dilation_beyond_int32(c, op)) {
        *code = c->yr >= 0 ? "invalid_value" : "";
        *rule = "dilation beyond 2^31-1 on a kernel of several taps";
        return 422;
    }
    return c->yr >= 0 ? 200 : 422;
}

typedef struct {
    int cases, accepted, refused, mismatches;
    int by_rule; // refused by a rule of convd's where PyTorch accepts
} tally;

// One case through the door; a failure description or NULL.
static const char *run_case(const sweep_case *c, const sweep_op *op, int index, tally *t) {
    static char why[512];
    uint64_t rng = 0x5eed0000u + (uint64_t)index;
    bool f64 = index % 2;
    api_buf body = {0};
    api_buf_printf(&body, "{\"op\":\"%s\",\"dtype\":\"%s\"", op->op, f64 ? "float64" : "float32");
    put_param(&body, "stride", c->stride);
    put_param(&body, "padding", c->padding);
    put_param(&body, "dilation", c->dilation);
    put_param(&body, "groups", c->groups);
    put_param(&body, "output_padding", c->output_padding);
    put_param(&body, "padding_mode", c->padding_mode);
    double *in[4] = {put_tensor(&body, "x", c->x, c->xr, &rng),
                     put_tensor(&body, "w", c->w, c->wr, &rng),
                     c->br ? put_tensor(&body, "b", c->b, c->br, &rng) : NULL,
                     c->dyr ? put_tensor(&body, "dy", c->dy, c->dyr, &rng) : NULL};
    api_buf_puts(&body, "}");
    api_response r = {0};
    codec_run_json(&r, body.data, body.len, NULL, NULL);
    cJSON *resp = r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;
    const char *code, *rule, *fail = NULL;
    int want = expected(c, op, &code, &rule);
    t->by_rule += rule && c->yr >= 0;
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(resp, "error");
    const char *got_code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(error, "code"));
    const char *message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(error, "message"));
    if (r.status != want) {
        snprintf(why, sizeof why, "status %d, want %d (%s): %s %s", r.status, want,
                 rule ? rule : want == 200 ? "PyTorch accepts" : "PyTorch refuses",
                 got_code ? got_code : "", message ? message : "");
        fail = why;
    } else if (want == 422) {
        t->refused++;
        if (!got_code || !*got_code || !message || !*message || (*code && strcmp(code, got_code))) {
            snprintf(why, sizeof why, "refused with code '%s', want %s", got_code ? got_code : "",
                     *code ? code : "a code and a message");
            fail = why;
        }
    } else {
        t->accepted++;
        layer L = read_layer(c, op);
        int64_t counts[4] = {numel(c->y, c->yr), numel(c->x, c->xr), numel(c->w, c->wr),
                             c->br ? numel(c->b, c->br) : 0};
        // in[] is x, w, b, dy: of counts[1], counts[2], counts[3] and counts[0] values.
        double *abs_in[4] = {abs_copy(in[0], counts[1]), abs_copy(in[1], counts[2]),
                             abs_copy(in[2], counts[3]), abs_copy(in[3], counts[0])};
        double *ref[4], *scale[4];
        for (int i = 0; i < 4; i++) {
            ref[i] = calloc((size_t)(counts[i] > 0 ? counts[i] : 1), sizeof(double));
            scale[i] = calloc((size_t)(counts[i] > 0 ? counts[i] : 1), sizeof(double));
        }
        reference(ref, in[0], in[1], in[2], in[3], &L, op->transposed);
        reference(scale, abs_in[0], abs_in[1], abs_in[2], abs_in[3], &L, op->transposed);
        for (int i = 0; i < 4; i++) free(abs_in[i]);
        double tol = f64 ? 1e-12 : 1e-5;
        if (!op->backward) {
            fail = compare(resp, "y", c->y, c->yr, ref[0], scale[0], tol);
        } else {
            fail = compare(resp, "dx", c->x, c->xr, ref[1], scale[1], tol);
            if (!fail) fail = compare(resp, "dw", c->w, c->wr, ref[2], scale[2], tol);
            if (!fail && c->br) fail = compare(resp, "db", c->b, c->br, ref[3], scale[3], tol);
            if (!fail && !c->br && cJSON_GetObjectItemCaseSensitive(resp, "db"))
                fail = "db returned without b";
        }
        for (int i = 0; i < 4; i++) free(ref[i]), free(scale[i]);
    }
    for (int i = 0; i < 4; i++) free(in[i]);
    cJSON_Delete(resp);
    free(r.body);
    api_buf_free(&body);
    return fail;
}

static void sweep(const sweep_op *op) {
    char path[512];
    snprintf(path, sizeof path, "%s/sweep/%s.jsonl", t_golden_dir(), op->op);
    char *text = t_read_file(path, NULL);
    if (!CHECK(text != NULL, "cannot read %s (tests/golden/make_sweep.py makes it)", path)) return;
    tally t = {0};
    int index = 0;
    for (char *line = text, *end; *line; line = end + (*end != '\0'), index++) {
        end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        cJSON *parsed = cJSON_ParseWithLength(line, (size_t)(end - line));
        sweep_case c;
        if (!CHECK(parsed && read_case(&c, parsed), "%s line %d is not a sweep case", path,
                   index + 1)) {
            cJSON_Delete(parsed);
            continue;
        }
        t.cases++;
        const char *why = run_case(&c, op, index, &t);
        if (why && t.mismatches++ < SHOWN)
            CHECK(false, "%s line %d: %s: %.*s", op->op, index + 1, why, (int)(end - line), line);
        cJSON_Delete(parsed);
    }
    free(text);
    printf("%s: %d configurations: %d accepted (shapes and values checked), %d refused (%d of "
           "them accepted by PyTorch: convd's own rules), %d mismatches\n",
           op->op, t.cases, t.accepted, t.refused, t.by_rule, t.mismatches);
    CHECK(t.cases >= 1000 && t.mismatches == 0, "%s: %d of %d configurations off PyTorch",
          op->op, t.mismatches, t.cases);
}

int main(int argc, char **argv) {
    (void)argc;
    blas_boot(argv);
    static const char *const families[] = {"conv1d",           "conv2d",           "conv3d",
                                           "conv_transpose1d", "conv_transpose2d",
                                           "conv_transpose3d"};
    for (int i = 0; i < 6; i++)
        for (int backward = 0; backward < 2; backward++) {
            char name[48];
            snprintf(name, sizeof name, "%s.%s", families[i], backward ? "backward" : "forward");
            sweep_op op = {.op = name, .spatial = families[i][strlen(families[i]) - 2] - '0',
                           .transposed = strncmp(families[i], "conv_transpose", 14) == 0,
                           .backward = backward};
            sweep(&op);
        }
    return t_finish("test_api_sweep");
}
