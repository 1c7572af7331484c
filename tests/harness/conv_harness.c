#include "tests/harness/conv_harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *conv_pass_name(conv_pass p) {
    switch (p) {
    case PASS_FORWARD: return "forward";
    case PASS_DATA: return "backward_data";
    case PASS_WEIGHTS: return "backward_weights";
    case PASS_BIAS: return "backward_bias";
    default: return "?";
    }
}

double conv_tolerance(conv_dtype dt) { return dt == CONV_FLOAT64 ? 1e-12 : 1e-5; }

void *conv_xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        abort();
    }
    return p;
}

void conv_random_geom(conv_geom *g, bool *bias, conv_geom_class cls, uint64_t *rng) {
    memset(g, 0, sizeof *g);
    if (cls == GEOM_RANDOM) {
        static const conv_geom_class pick[10] = {
            GEOM_SAME, GEOM_SAME, GEOM_1X1, GEOM_DEPTHWISE, GEOM_KERNEL_OVER_INPUT,
            GEOM_GENERAL, GEOM_GENERAL, GEOM_GENERAL, GEOM_GENERAL, GEOM_GENERAL};
        cls = pick[t_rand_int(rng, 0, 9)];
    }
    g->n = t_rand_int(rng, 1, 4);
    g->h = t_rand_int(rng, 1, 9);
    g->w = t_rand_int(rng, 1, 9);
    g->kh = t_rand_int(rng, 1, 4);
    g->kw = t_rand_int(rng, 1, 4);
    g->stride_h = t_rand_int(rng, 1, 3);
    g->stride_w = t_rand_int(rng, 1, 3);
    g->dilation_h = t_rand_int(rng, 0, 2) ? 1 : t_rand_int(rng, 2, 3);
    g->dilation_w = t_rand_int(rng, 0, 2) ? 1 : t_rand_int(rng, 2, 3);
    const int64_t groups_pick = t_rand_int(rng, 0, 3);
    g->groups = groups_pick < 2 ? 1 : t_rand_int(rng, 2, 3);
    g->c = g->groups * t_rand_int(rng, 1, 3);
    g->f = g->groups * t_rand_int(rng, 1, 3);
    switch (t_rand_int(rng, 0, 2)) {
    case 0: // symmetric, [ph, pw]
        g->pad_top = g->pad_bottom = t_rand_int(rng, 0, 2);
        g->pad_left = g->pad_right = t_rand_int(rng, 0, 2);
        break;
    case 1: // per side
        g->pad_top = t_rand_int(rng, 0, 3);
        g->pad_bottom = t_rand_int(rng, 0, 3);
        g->pad_left = t_rand_int(rng, 0, 3);
        g->pad_right = t_rand_int(rng, 0, 3);
        break;
    default: break; // "valid"
    }
    switch (cls) {
    case GEOM_SAME: // stride 1, any kernel (even ones pad more at the end)
        g->stride_h = g->stride_w = 1;
        conv_pad_same(g->kh, g->dilation_h, &g->pad_top, &g->pad_bottom);
        conv_pad_same(g->kw, g->dilation_w, &g->pad_left, &g->pad_right);
        break;
    case GEOM_1X1: // the plain GEMM case exactly, or one of the things that must leave it
        g->kh = g->kw = 1;
        g->stride_h = g->stride_w = 1;
        switch (t_rand_int(rng, 0, 3)) {
        case 0: // plain (dilation is irrelevant to a 1x1 kernel and stays random)
            g->pad_top = g->pad_bottom = g->pad_left = g->pad_right = 0;
            break;
        case 1: g->stride_h = g->stride_w = 2; break;
        case 2: { // stride 1 with padding on one side only
            int64_t *sides[] = {&g->pad_top, &g->pad_bottom, &g->pad_left, &g->pad_right};
            for (int i = 0; i < 4; i++) *sides[i] = 0;
            *sides[t_rand_int(rng, 0, 3)] = t_rand_int(rng, 1, 2);
            break;
        }
        default: // strided along one axis only, unpadded
            g->pad_top = g->pad_bottom = g->pad_left = g->pad_right = 0;
            *(t_rand_int(rng, 0, 1) ? &g->stride_h : &g->stride_w) = 2;
            break;
        }
        break;
    case GEOM_DEPTHWISE:
        g->groups = g->c = t_rand_int(rng, 1, 4);
        g->f = g->c * t_rand_int(rng, 1, 2);
        break;
    case GEOM_KERNEL_OVER_INPUT: // the padding below makes it fit
        g->h = t_rand_int(rng, 1, 3);
        g->w = t_rand_int(rng, 1, 3);
        g->kh = t_rand_int(rng, 3, 5);
        g->kw = t_rand_int(rng, 3, 5);
        break;
    default: break;
    }
    // Pad at the far end until the dilated kernel fits: how kernels larger than the input (and
    // small inputs of other classes) become valid, with asymmetric padding.
    while (conv_ref_out_size(g->h, g->kh, g->stride_h, g->dilation_h, g->pad_top,
                             g->pad_bottom) < 1)
        g->pad_bottom++;
    while (conv_ref_out_size(g->w, g->kw, g->stride_w, g->dilation_w, g->pad_left,
                             g->pad_right) < 1)
        g->pad_right++;
    *bias = t_rand_int(rng, 0, 2) != 0;
}

// 2*N*F*(C/G)*kh*kw*Ho*Wo, from the reference's own output size.
static double conv_flops_of(const conv_geom *g) {
    return 2.0 * (double)(g->n * g->f * (g->c / g->groups) * g->kh * g->kw) *
           (double)conv_ref_out_size(g->h, g->kh, g->stride_h, g->dilation_h, g->pad_top,
                                     g->pad_bottom) *
           (double)conv_ref_out_size(g->w, g->kw, g->stride_w, g->dilation_w, g->pad_left,
                                     g->pad_right);
}

// Grows a geometry from conv_random_geom() until a pass costs at least `flops`, so that the
// fast path really splits it across threads (it gives each thread a few MFLOP at least).
// Channels grow every other step (a depthwise layer by its channel multiplier F/C, so it stays
// depthwise), the batch (up to 16) and the image (up to 256 pixels) in between, so the cost
// ends just past `flops`; kernel, stride, dilation and padding stay as they were. Returns
// false when the tensors got larger than `max_elements` (layers that do little work per
// element, like 1x1 depthwise ones): draw another geometry then.
static bool conv_grow_geom(conv_geom *g, double flops, int64_t max_elements, uint64_t *rng) {
    for (int turn = 0; conv_flops_of(g) < flops; turn = (turn + 1) % 4) {
        if (turn % 2 == 1) {
            if (g->groups == g->c) g->f += g->c;
            else g->c += g->groups, g->f += g->groups;
        } else if (turn == 0) {
            if (g->n < 16) g->n++;
        } else if (g->h * g->w < 256) {
            *(t_rand_int(rng, 0, 1) ? &g->h : &g->w) += t_rand_int(rng, 1, 3);
        }
    }
    const int64_t ho = conv_ref_out_size(g->h, g->kh, g->stride_h, g->dilation_h, g->pad_top,
                                         g->pad_bottom);
    const int64_t wo = conv_ref_out_size(g->w, g->kw, g->stride_w, g->dilation_w, g->pad_left,
                                         g->pad_right);
    return g->n * g->c * g->h * g->w + g->n * g->f * ho * wo +
               g->f * (g->c / g->groups) * g->kh * g->kw <=
           max_elements;
}

bool conv_random_large_geom(conv_geom *g, bool *bias, conv_geom_class cls,
                            double flops, int64_t max_elements, uint64_t *rng) {
    for (int draw = 0; draw < 1000; draw++) {
        conv_random_geom(g, bias, cls, rng);
        if (conv_grow_geom(g, flops, max_elements, rng)) return true;
    }
    return false;
}

int conv_geom_describe(char *buf, size_t len, const conv_geom *g) {
    return snprintf(buf, len,
                    "N=%lld C=%lld H=%lld W=%lld F=%lld k=%lldx%lld groups=%lld stride=%lldx%lld "
                    "dilation=%lldx%lld pad(t,b,l,r)=%lld,%lld,%lld,%lld",
                    (long long)g->n, (long long)g->c, (long long)g->h, (long long)g->w,
                    (long long)g->f, (long long)g->kh, (long long)g->kw, (long long)g->groups,
                    (long long)g->stride_h, (long long)g->stride_w, (long long)g->dilation_h,
                    (long long)g->dilation_w, (long long)g->pad_top, (long long)g->pad_bottom,
                    (long long)g->pad_left, (long long)g->pad_right);
}

static double *conv_random_tensor(int64_t count, conv_dtype dt, uint64_t *rng) {
    double *t = conv_xmalloc((size_t)count * sizeof *t);
    for (int64_t i = 0; i < count; i++) {
        t[i] = t_rand_uniform(rng, -1.0, 1.0);
        if (dt == CONV_FLOAT32) t[i] = (float)t[i];
    }
    return t;
}

static void *conv_to_dtype(const double *t, int64_t count, conv_dtype dt) {
    if (!t) return NULL;
    void *out = conv_xmalloc((size_t)count * conv_dtype_size(dt));
    for (int64_t i = 0; i < count; i++) {
        if (dt == CONV_FLOAT32) ((float *)out)[i] = (float)t[i];
        else ((double *)out)[i] = t[i];
    }
    return out;
}

double conv_dtype_at(const void *t, int64_t i, conv_dtype dt) {
    return dt == CONV_FLOAT32 ? ((const float *)t)[i] : ((const double *)t)[i];
}

static double *conv_abs_copy(const double *t, int64_t count) {
    if (!t) return NULL;
    double *a = conv_xmalloc((size_t)count * sizeof *a);
    for (int64_t i = 0; i < count; i++) a[i] = fabs(t[i]);
    return a;
}

// Runs the reference of every pass on (x, w, b, dy) into out[PASS_COUNT] (allocated here).
static void conv_ref_all(double *out[PASS_COUNT], const int64_t count[PASS_COUNT],
                         const double *x, const double *w, const double *b,
                         const double *dy, const conv_geom *g) {
    for (int p = 0; p < PASS_COUNT; p++) out[p] = conv_xmalloc((size_t)count[p] * sizeof(double));
    conv_ref_forward(out[PASS_FORWARD], x, w, b, g);
    conv_ref_backward_data(out[PASS_DATA], dy, w, g);
    conv_ref_backward_weights(out[PASS_WEIGHTS], dy, x, g);
    conv_ref_backward_bias(out[PASS_BIAS], dy, g);
}

void conv_case_retype(conv_case *cc, conv_dtype dt) {
    void **copies[] = {&cc->x_dt, &cc->w_dt, &cc->b_dt, &cc->dy_dt};
    const double *values[] = {cc->x, cc->w, cc->b, cc->dy};
    const int64_t counts[] = {cc->count[PASS_DATA], cc->count[PASS_WEIGHTS], cc->g.f,
                              cc->count[PASS_FORWARD]};
    for (int i = 0; i < 4; i++) {
        free(*copies[i]);
        *copies[i] = conv_to_dtype(values[i], counts[i], dt);
    }
    cc->dt = dt;
}

void conv_case_adopt(conv_case *cc, const conv_geom *g, double *x, double *w,
                     double *b, double *dy, conv_dtype dt) {
    memset(cc, 0, sizeof *cc);
    cc->g = *g;
    const int64_t ho = conv_ref_out_size(g->h, g->kh, g->stride_h, g->dilation_h, g->pad_top,
                                         g->pad_bottom);
    const int64_t wo = conv_ref_out_size(g->w, g->kw, g->stride_w, g->dilation_w, g->pad_left,
                                         g->pad_right);
    cc->count[PASS_FORWARD] = g->n * g->f * ho * wo;
    cc->count[PASS_DATA] = g->n * g->c * g->h * g->w;
    cc->count[PASS_WEIGHTS] = g->f * (g->c / g->groups) * g->kh * g->kw;
    cc->count[PASS_BIAS] = g->f;
    cc->x = x;
    cc->w = w;
    cc->b = b;
    cc->dy = dy;
    conv_ref_all(cc->ref, cc->count, cc->x, cc->w, cc->b, cc->dy, g);
    double *ax = conv_abs_copy(cc->x, cc->count[PASS_DATA]);
    double *aw = conv_abs_copy(cc->w, cc->count[PASS_WEIGHTS]);
    double *ab = conv_abs_copy(cc->b, g->f);
    double *ady = conv_abs_copy(cc->dy, cc->count[PASS_FORWARD]);
    conv_ref_all(cc->scale, cc->count, ax, aw, ab, ady, g);
    free(ax);
    free(aw);
    free(ab);
    free(ady);
    conv_case_retype(cc, dt);
}

void conv_case_init(conv_case *cc, const conv_geom *g, bool bias, conv_dtype dt, uint64_t *rng) {
    const int64_t ho = conv_ref_out_size(g->h, g->kh, g->stride_h, g->dilation_h, g->pad_top,
                                         g->pad_bottom);
    const int64_t wo = conv_ref_out_size(g->w, g->kw, g->stride_w, g->dilation_w, g->pad_left,
                                         g->pad_right);
    double *x = conv_random_tensor(g->n * g->c * g->h * g->w, dt, rng);
    double *w = conv_random_tensor(g->f * (g->c / g->groups) * g->kh * g->kw, dt, rng);
    double *b = bias ? conv_random_tensor(g->f, dt, rng) : NULL;
    double *dy = conv_random_tensor(g->n * g->f * ho * wo, dt, rng);
    conv_case_adopt(cc, g, x, w, b, dy, dt);
}

void conv_case_free(conv_case *cc) {
    free(cc->x);
    free(cc->w);
    free(cc->b);
    free(cc->dy);
    free(cc->x_dt);
    free(cc->w_dt);
    free(cc->b_dt);
    free(cc->dy_dt);
    for (int p = 0; p < PASS_COUNT; p++) {
        free(cc->ref[p]);
        free(cc->scale[p]);
    }
}

conv_status conv_case_fast(const conv_case *cc, conv_pass p, void *out,
                           const conv_exec *ex, conv_error *err) {
    switch (p) {
    case PASS_FORWARD:
        return conv2d_forward(out, cc->x_dt, cc->w_dt, cc->b_dt, &cc->g, cc->dt, ex, err);
    case PASS_DATA: return conv2d_backward_data(out, cc->dy_dt, cc->w_dt, &cc->g, cc->dt, ex, err);
    case PASS_WEIGHTS:
        return conv2d_backward_weights(out, cc->dy_dt, cc->x_dt, &cc->g, cc->dt, ex, err);
    default: return conv2d_backward_bias(out, cc->dy_dt, &cc->g, cc->dt, ex, err);
    }
}

static bool conv_same_values(const void *t_dt, const double *t, int64_t count, conv_dtype dt) {
    for (int64_t i = 0; t && i < count; i++)
        if (conv_dtype_at(t_dt, i, dt) != t[i]) return false;
    return true;
}

void conv_scratch_init(conv_scratch *s, size_t bytes, size_t misalign, int threads) {
    if (posix_memalign(&s->block, 64, bytes + misalign + (bytes + misalign == 0))) abort();
    s->ex = (conv_exec){.workspace = bytes ? (char *)s->block + misalign : NULL,
                        .workspace_bytes = bytes,
                        .threads = threads};
}

void conv_scratch_free(conv_scratch *s) { free(s->block); }

bool conv_case_check(const conv_case *cc, conv_pass p, const conv_exec *ex,
                     char *why, size_t why_len, double *worst) {
    const int64_t count = cc->count[p];
    const size_t elem = conv_dtype_size(cc->dt);
    void *out = conv_xmalloc((size_t)count * elem);
    for (int64_t i = 0; i < count; i++) {
        if (cc->dt == CONV_FLOAT32) ((float *)out)[i] = NAN;
        else ((double *)out)[i] = NAN;
    }
    conv_error err = {0};
    const conv_status st = conv_case_fast(cc, p, out, ex, &err);
    bool ok = st == CONV_OK;
    if (!ok)
        snprintf(why, why_len, "%s: status %d (%s: %s)", conv_pass_name(p), (int)st,
                 err.field ? err.field : "-", err.message);
    const double tol = conv_tolerance(cc->dt);
    double largest = 0;
    for (int64_t i = 0; cc->tile_scale && i < count; i++)
        if (cc->scale[p][i] > largest) largest = cc->scale[p][i];
    for (int64_t i = 0; ok && i < count; i++) {
        const double got = conv_dtype_at(out, i, cc->dt), want = cc->ref[p][i];
        const double diff = fabs(got - want);
        const double scale = cc->tile_scale ? largest : cc->scale[p][i];
        if (!(diff <= tol * scale)) {
            snprintf(why, why_len, "%s[%lld]: got %.17g, want %.17g (|diff| %.3g, scale %.3g)",
                     conv_pass_name(p), (long long)i, got, want, diff, scale);
            ok = false;
        } else if (worst && scale > 0 && diff / scale > *worst) {
            *worst = diff / scale;
        }
    }
    if (ok && !(conv_same_values(cc->x_dt, cc->x, cc->count[PASS_DATA], cc->dt) &&
                conv_same_values(cc->w_dt, cc->w, cc->count[PASS_WEIGHTS], cc->dt) &&
                conv_same_values(cc->b_dt, cc->b, cc->g.f, cc->dt) &&
                conv_same_values(cc->dy_dt, cc->dy, cc->count[PASS_FORWARD], cc->dt))) {
        snprintf(why, why_len, "%s modified its inputs", conv_pass_name(p));
        ok = false;
    }
    free(out);
    return ok;
}
