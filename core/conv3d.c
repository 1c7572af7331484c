#include "core/conv3d.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int64_t conv3d_out_d(const conv3d_geom *g) {
    return conv_out_size(g->d, g->kd, g->stride[0], g->dilation[0], g->padding[0], g->padding[1]);
}

void conv3d_plane_geom(conv_geom *g2, const conv3d_geom *g) {
    *g2 = (conv_geom){
        .n = g->n * conv3d_out_d(g), .c = g->kd * g->c, .h = g->h, .w = g->w,
        .f = g->f, .kh = g->kh, .kw = g->kw, .groups = g->groups,
        .stride_h = g->stride[1], .stride_w = g->stride[2],
        .dilation_h = g->dilation[1], .dilation_w = g->dilation[2],
        .pad_top = g->padding[2], .pad_bottom = g->padding[3],
        .pad_left = g->padding[4], .pad_right = g->padding[5],
    };
}

static conv_status fail(conv_error *err, conv_status status, const char *field, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

static conv_status fail(conv_error *err, conv_status status, const char *field, const char *fmt,
                        ...) {
    if (err) {
        err->field = field;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

conv_status conv3d_geom_check(const conv3d_geom *g, conv_dtype dt, conv_error *err) {
    const struct {
        const char *field, *what;
        int64_t value, min;
    } depth[] = {
        {"d", "the depth D of x", g->d, 1},
        {"kd", "the kernel depth kd", g->kd, 1},
        {"stride_d", "the depth stride", g->stride[0], 1},
        {"dilation_d", "the depth dilation", g->dilation[0], 1},
        {"pad_front", "the front padding", g->padding[0], 0},
        {"pad_back", "the back padding", g->padding[1], 0},
    };
    for (size_t i = 0; i < sizeof depth / sizeof *depth; i++) {
        if (depth[i].value < depth[i].min)
            return fail(err, CONV_EINVAL, depth[i].field, "%s is %lld; it must be at least %lld",
                        depth[i].what, (long long)depth[i].value, (long long)depth[i].min);
        if (depth[i].value > INT_MAX)
            return fail(err, CONV_EOVERFLOW, depth[i].field, "%s is %lld; at most %d is supported",
                        depth[i].what, (long long)depth[i].value, INT_MAX);
    }
    if (g->groups >= 1 && (g->c % g->groups || g->f % g->groups))
        return fail(err, CONV_EINVAL, "groups",
                    "groups=%lld must divide both the %lld input channels of x and the %lld "
                    "filters of w",
                    (long long)g->groups, (long long)g->c, (long long)g->f);
    if (conv3d_out_d(g) < 1)
        return fail(err, CONV_EINVAL, "output_d",
                    "along the depth the kernel spans %lld (size %lld, dilation %lld) but the "
                    "padded input has only %lld (D=%lld + padding %lld+%lld), so the output "
                    "would be empty",
                    (long long)(g->dilation[0] * (g->kd - 1) + 1), (long long)g->kd,
                    (long long)g->dilation[0],
                    (long long)(g->d + g->padding[0] + g->padding[1]), (long long)g->d,
                    (long long)g->padding[0], (long long)g->padding[1]);
    // Products below stay exact: each factor is at most INT_MAX, and conv_geom_check bounds
    // the stacked tensors (the 2-D layer's x and y) to 2^48 bytes.
    int64_t n2, c2;
    if (g->n < 1 || g->c < 1 || __builtin_mul_overflow(g->n, conv3d_out_d(g), &n2) ||
        __builtin_mul_overflow(g->kd, g->c, &c2)) {
        conv_geom g2 = {.n = g->n, .c = g->c, .h = g->h, .w = g->w, .f = g->f, .kh = g->kh,
                        .kw = g->kw, .groups = g->groups};
        if (conv_geom_check(&g2, dt, err) != CONV_OK) return CONV_EINVAL;
        return fail(err, CONV_EOVERFLOW, "d", "the layer is too large");
    }
    conv_geom g2;
    conv3d_plane_geom(&g2, g);
    return conv_geom_check(&g2, dt, err);
}

// The stacked tensors' sizes in bytes, each rounded up to 64 (the order they sit in).
typedef struct {
    size_t xs, ws, ys;
} stack_sizes;

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

static stack_sizes stacks(const conv3d_geom *g, conv_dtype dt) {
    conv_geom g2;
    conv3d_plane_geom(&g2, g);
    size_t elt = conv_dtype_size(dt);
    return (stack_sizes){round64((size_t)conv_numel_x(&g2) * elt),
                         round64((size_t)conv_numel_w(&g2) * elt),
                         round64((size_t)conv_numel_y(&g2) * elt)};
}

size_t conv3d_workspace_size(const conv3d_geom *g, conv_dtype dt, int threads, size_t cap) {
    conv_geom g2;
    conv3d_plane_geom(&g2, g);
    stack_sizes s = stacks(g, dt);
    return s.xs + s.ws + s.ys + conv_workspace_size(&g2, dt, threads, cap);
}

// The workspace split: the stacks first (64-byte aligned when the workspace is), the 2-D
// passes' scratch after.
typedef struct {
    char *xs, *ws, *ys;
    conv_exec ex2;
    conv_geom g2;
} stack_space;

static conv_status carve(stack_space *sp, const conv3d_geom *g, conv_dtype dt,
                         const conv_exec *ex, conv_error *err) {
    conv_status st = conv3d_geom_check(g, dt, err);
    if (st != CONV_OK) return st;
    conv3d_plane_geom(&sp->g2, g);
    stack_sizes s = stacks(g, dt);
    size_t need = s.xs + s.ws + s.ys;
    if (!ex || ex->workspace_bytes < need)
        return fail(err, CONV_EWORKSPACE, "workspace",
                    "the workspace has %zu bytes; the stacked depth taps need %zu",
                    ex ? ex->workspace_bytes : (size_t)0, need);
    sp->xs = ex->workspace;
    sp->ws = sp->xs + s.xs;
    sp->ys = sp->ws + s.ws;
    sp->ex2 = *ex; // threads, isa and algorithm as asked
    sp->ex2.workspace = sp->ys + s.ys;
    sp->ex2.workspace_bytes = ex->workspace_bytes - need;
    return CONV_OK;
}

// Xs from x: every (image, output depth, tap, channel) plane of H*W elements, zero where the
// tap falls in the depth padding.
static void stack_x(char *xs, const char *x, const conv3d_geom *g, size_t elt) {
    const int64_t od_count = conv3d_out_d(g), cg = g->c / g->groups, plane = g->h * g->w;
    const size_t bytes = (size_t)plane * elt;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t od = 0; od < od_count; od++)
            for (int64_t grp = 0; grp < g->groups; grp++)
                for (int64_t a = 0; a < g->kd; a++) {
                    const int64_t id = od * g->stride[0] + a * g->dilation[0] - g->padding[0];
                    for (int64_t ch = 0; ch < cg; ch++) {
                        const int64_t at =
                            (((n * od_count + od) * g->groups + grp) * g->kd + a) * cg + ch;
                        char *to = xs + (size_t)at * bytes;
                        if (id < 0 || id >= g->d) {
                            memset(to, 0, bytes);
                            continue;
                        }
                        const int64_t c = grp * cg + ch;
                        memcpy(to, x + (size_t)(((n * g->c + c) * g->d + id) * plane) * elt, bytes);
                    }
                }
}

// dx from dXs (the adjoint of stack_x): dx = 0, then every stacked plane added back to the
// input plane it was copied from.
#define UNSTACK_X(T)                                                                              \
    static void unstack_x_##T(T *dx, const T *dxs, const conv3d_geom *g) {                       \
        const int64_t od_count = conv3d_out_d(g), cg = g->c / g->groups, plane = g->h * g->w;    \
        memset(dx, 0, (size_t)(g->n * g->c * g->d * plane) * sizeof *dx);                        \
        for (int64_t n = 0; n < g->n; n++)                                                        \
            for (int64_t od = 0; od < od_count; od++)                                             \
                for (int64_t grp = 0; grp < g->groups; grp++)                                     \
                    for (int64_t a = 0; a < g->kd; a++) {                                         \
                        const int64_t id = od * g->stride[0] + a * g->dilation[0] - g->padding[0]; \
                        if (id < 0 || id >= g->d) continue;                                       \
                        for (int64_t ch = 0; ch < cg; ch++) {                                     \
                            const int64_t at =                                                    \
                                (((n * od_count + od) * g->groups + grp) * g->kd + a) * cg + ch;  \
                            const T *from = dxs + at * plane;                                     \
                            T *to = dx + ((n * g->c + grp * cg + ch) * g->d + id) * plane;        \
                            for (int64_t i = 0; i < plane; i++) to[i] += from[i];                 \
                        }                                                                         \
                    }                                                                             \
    }
UNSTACK_X(float)
UNSTACK_X(double)
#undef UNSTACK_X

// Ws from w (to_stack) or w from Ws: planes of kh*kw, [f, ch, a] <-> [f, a*C/G + ch].
static void restack_w(char *ws, char *w, const conv3d_geom *g, size_t elt, bool to_stack) {
    const int64_t cg = g->c / g->groups;
    const size_t bytes = (size_t)(g->kh * g->kw) * elt;
    for (int64_t f = 0; f < g->f; f++)
        for (int64_t ch = 0; ch < cg; ch++)
            for (int64_t a = 0; a < g->kd; a++) {
                char *stacked = ws + (size_t)((f * g->kd + a) * cg + ch) * bytes;
                char *plain = w + (size_t)((f * cg + ch) * g->kd + a) * bytes;
                if (to_stack)
                    memcpy(stacked, plain, bytes);
                else
                    memcpy(plain, stacked, bytes);
            }
}

// Ys from y (to_stack) or y from Ys: planes of Ho*Wo, [n, f, od] <-> [n*Do + od, f].
static void restack_y(char *ys, char *y, const conv3d_geom *g, const conv_geom *g2, size_t elt,
                      bool to_stack) {
    const int64_t od_count = conv3d_out_d(g);
    const size_t bytes = (size_t)(conv_out_h(g2) * conv_out_w(g2)) * elt;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t f = 0; f < g->f; f++)
            for (int64_t od = 0; od < od_count; od++) {
                char *stacked = ys + (size_t)((n * od_count + od) * g->f + f) * bytes;
                char *plain = y + (size_t)((n * g->f + f) * od_count + od) * bytes;
                if (to_stack)
                    memcpy(stacked, plain, bytes);
                else
                    memcpy(plain, stacked, bytes);
            }
}

conv_status conv3d_forward(void *y, const void *x, const void *w, const void *b,
                           const conv3d_geom *g, conv_dtype dt, const conv_exec *ex,
                           conv_error *err) {
    stack_space sp;
    conv_status st = carve(&sp, g, dt, ex, err);
    if (st != CONV_OK) return st;
    size_t elt = conv_dtype_size(dt);
    stack_x(sp.xs, x, g, elt);
    restack_w(sp.ws, (char *)w, g, elt, true); // reads w only
    st = conv2d_forward(sp.ys, sp.xs, sp.ws, b, &sp.g2, dt, &sp.ex2, err);
    if (st == CONV_OK) restack_y(sp.ys, y, g, &sp.g2, elt, false);
    return st;
}

conv_status conv3d_backward_data(void *dx, const void *dy, const void *w, const conv3d_geom *g,
                                 conv_dtype dt, const conv_exec *ex, conv_error *err) {
    stack_space sp;
    conv_status st = carve(&sp, g, dt, ex, err);
    if (st != CONV_OK) return st;
    size_t elt = conv_dtype_size(dt);
    restack_y(sp.ys, (char *)dy, g, &sp.g2, elt, true); // reads dy only
    restack_w(sp.ws, (char *)w, g, elt, true);
    st = conv2d_backward_data(sp.xs, sp.ys, sp.ws, &sp.g2, dt, &sp.ex2, err);
    if (st != CONV_OK) return st;
    if (dt == CONV_FLOAT64)
        unstack_x_double(dx, (const double *)sp.xs, g);
    else
        unstack_x_float(dx, (const float *)sp.xs, g);
    return CONV_OK;
}

conv_status conv3d_backward_weights(void *dw, const void *dy, const void *x,
                                    const conv3d_geom *g, conv_dtype dt, const conv_exec *ex,
                                    conv_error *err) {
    stack_space sp;
    conv_status st = carve(&sp, g, dt, ex, err);
    if (st != CONV_OK) return st;
    size_t elt = conv_dtype_size(dt);
    restack_y(sp.ys, (char *)dy, g, &sp.g2, elt, true);
    stack_x(sp.xs, x, g, elt);
    st = conv2d_backward_weights(sp.ws, sp.ys, sp.xs, &sp.g2, dt, &sp.ex2, err);
    if (st == CONV_OK) restack_w(sp.ws, dw, g, elt, false);
    return st;
}

conv_status conv3d_backward_bias(void *db, const void *dy, const conv3d_geom *g, conv_dtype dt,
                                 const conv_exec *ex, conv_error *err) {
    conv_status st = conv3d_geom_check(g, dt, err);
    if (st != CONV_OK) return st;
    // A 1x1 layer whose output is dy itself: (N, F, Do, Ho*Wo) as an image of Do x Ho*Wo.
    conv_geom g2;
    conv3d_plane_geom(&g2, g);
    conv_geom one = {.n = g->n, .c = g->f, .h = conv3d_out_d(g),
                     .w = conv_out_h(&g2) * conv_out_w(&g2), .f = g->f, .kh = 1, .kw = 1,
                     .groups = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1};
    return conv2d_backward_bias(db, dy, &one, dt, ex, err);
}
