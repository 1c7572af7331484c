#include "core/conv3d.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "core/conv3d_internal.h"
#include "core/conv_internal.h"

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
            return conv_fail(err, CONV_EINVAL, depth[i].field,
                             "%s is %lld; it must be at least %lld", depth[i].what,
                             (long long)depth[i].value, (long long)depth[i].min);
        if (depth[i].value > INT_MAX)
            return conv_fail(err, CONV_EOVERFLOW, depth[i].field,
                             "%s is %lld; at most %d is supported", depth[i].what,
                             (long long)depth[i].value, INT_MAX);
    }
    if (g->groups >= 1 && (g->c % g->groups || g->f % g->groups))
        return conv_fail(err, CONV_EINVAL, "groups",
                         "groups=%lld must divide both the %lld input channels of x and the %lld "
                         "filters of w",
                         (long long)g->groups, (long long)g->c, (long long)g->f);
    if (conv3d_out_d(g) < 1)
        return conv_fail(err, CONV_EINVAL, "output_d",
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
        return conv_fail(err, CONV_EOVERFLOW, "d", "the layer is too large");
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
    size_t size = s.xs + s.ws + s.ys + conv_workspace_size(&g2, dt, threads, cap);
    if (conv3d_winograd_applies(g)) {
        size_t wino = conv3d_winograd_workspace(g, dt, threads);
        if (wino > size) size = wino;
    }
    return size;
}

// Whether the pass runs on the planes (conv3d_winograd.c): where the stacked layer would run
// Winograd, by the caller's algorithm or by auto's choice for it. The workspace is not asked:
// the plane passes need less than the stack. Fails as conv3d_geom_check and
// conv_pick_algorithm do (winograd asked where it does not apply).
static conv_status on_planes(bool *yes, const conv3d_geom *g, conv_dtype dt,
                             const conv_exec *ex, conv_error *err) {
    *yes = false;
    conv_status st = conv3d_geom_check(g, dt, err);
    if (st != CONV_OK || !ex) return st; // without an exec, carve() reports the workspace
    conv_geom g2;
    conv3d_plane_geom(&g2, g);
    conv_algorithm algo;
    st = conv_pick_algorithm(&g2, dt, ex->algorithm, SIZE_MAX, &algo, err);
    *yes = st == CONV_OK && algo == CONV_ALGO_WINOGRAD;
    return st;
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
        return conv_fail(err, CONV_EWORKSPACE, "workspace",
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

// The copies between the 3-D tensors and the stacks are loops over independent items, bound
// by memory rather than arithmetic: they run split over the caller's threads, each worker a
// contiguous range of items.
typedef struct copy_job {
    void (*item)(const struct copy_job *job, int64_t i);
    int64_t items;
    int threads;
    const conv3d_geom *g;
    char *stack;      // Xs or Ys
    char *plain;      // x, dx, y or dy: written by unstack_x and by restack_y from the stack
    bool to_stack;    // restack_y's direction
    conv_dtype dt;
    size_t elt;
} copy_job;

static void copy_worker(void *arg, int worker) {
    const copy_job *job = arg;
    int64_t first, end;
    conv_item_range(job->items, job->threads, worker, &first, &end);
    for (int64_t i = first; i < end; i++) job->item(job, i);
}

static void run_copy(copy_job job, int threads) {
    if (threads > CONV_MAX_THREADS) threads = CONV_MAX_THREADS;
    job.threads = threads < 1 ? 1 : threads > job.items ? (int)job.items : threads;
    conv_run_workers(job.threads, copy_worker, &job);
}

// The stacked plane of (image n, output depth od, group grp, depth tap a, channel ch).
static int64_t stacked_plane(const conv3d_geom *g, int64_t n, int64_t od, int64_t grp, int64_t a,
                             int64_t ch) {
    return (((n * conv3d_out_d(g) + od) * g->groups + grp) * g->kd + a) * (g->c / g->groups) + ch;
}

// Xs from x, one stacked image (n, od) per item: every (group, tap, channel) plane of H*W
// elements, zero where the tap falls in the depth padding.
static void stack_x_item(const copy_job *job, int64_t i) {
    const conv3d_geom *g = job->g;
    const int64_t od_count = conv3d_out_d(g), cg = g->c / g->groups, plane = g->h * g->w;
    const int64_t n = i / od_count, od = i % od_count;
    const size_t bytes = (size_t)plane * job->elt;
    for (int64_t grp = 0; grp < g->groups; grp++)
        for (int64_t a = 0; a < g->kd; a++) {
            const int64_t id = od * g->stride[0] + a * g->dilation[0] - g->padding[0];
            for (int64_t ch = 0; ch < cg; ch++) {
                char *to = job->stack + (size_t)stacked_plane(g, n, od, grp, a, ch) * bytes;
                const int64_t from = (n * g->c + grp * cg + ch) * g->d + id; // x's plane
                if (id < 0 || id >= g->d)
                    memset(to, 0, bytes);
                else
                    memcpy(to, job->plain + (size_t)from * bytes, bytes);
            }
        }
}

static void stack_x(char *xs, const char *x, const conv3d_geom *g, conv_dtype dt, int threads) {
    run_copy((copy_job){.item = stack_x_item, .items = g->n * conv3d_out_d(g), .g = g,
                        .stack = xs, .plain = (char *)x, .dt = dt, .elt = conv_dtype_size(dt)},
             threads); // reads x only
}

// to[j] += from[j], j < count.
static void add_plane(void *to, const void *from, int64_t count, conv_dtype dt) {
    if (dt == CONV_FLOAT64) {
        double *restrict t = to;
        const double *restrict f = from;
        for (int64_t j = 0; j < count; j++) t[j] += f[j];
    } else {
        float *restrict t = to;
        const float *restrict f = from;
        for (int64_t j = 0; j < count; j++) t[j] += f[j];
    }
}

// dx from dXs (the adjoint of stack_x), one input channel (n, c) per item, so that no two
// workers add into the same plane: its D planes zeroed, then every stacked plane copied from
// one of them added back.
static void unstack_x_item(const copy_job *job, int64_t i) {
    const conv3d_geom *g = job->g;
    const int64_t od_count = conv3d_out_d(g), cg = g->c / g->groups, plane = g->h * g->w;
    const int64_t n = i / g->c, c = i % g->c, grp = c / cg, ch = c % cg;
    char *dx_c = job->plain + (size_t)(i * g->d * plane) * job->elt;
    memset(dx_c, 0, (size_t)(g->d * plane) * job->elt);
    for (int64_t od = 0; od < od_count; od++)
        for (int64_t a = 0; a < g->kd; a++) {
            const int64_t id = od * g->stride[0] + a * g->dilation[0] - g->padding[0];
            if (id < 0 || id >= g->d) continue;
            add_plane(dx_c + (size_t)(id * plane) * job->elt,
                      job->stack + (size_t)(stacked_plane(g, n, od, grp, a, ch) * plane) * job->elt,
                      plane, job->dt);
        }
}

static void unstack_x(void *dx, const char *dxs, const conv3d_geom *g, conv_dtype dt,
                      int threads) {
    run_copy((copy_job){.item = unstack_x_item, .items = g->n * g->c, .g = g,
                        .stack = (char *)dxs, .plain = dx, .dt = dt,
                        .elt = conv_dtype_size(dt)},
             threads); // reads dXs only
}

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

// Ys from y (to_stack) or y from Ys, one (n, f) per item: planes of Ho*Wo,
// [n, f, od] <-> [n*Do + od, f].
static void restack_y_item(const copy_job *job, int64_t i) {
    const conv3d_geom *g = job->g;
    const int64_t od_count = conv3d_out_d(g), n = i / g->f, f = i % g->f;
    conv_geom g2;
    conv3d_plane_geom(&g2, g);
    const size_t bytes = (size_t)(conv_out_h(&g2) * conv_out_w(&g2)) * job->elt;
    for (int64_t od = 0; od < od_count; od++) {
        char *stacked = job->stack + (size_t)((n * od_count + od) * g->f + f) * bytes;
        char *plain = job->plain + (size_t)(i * od_count + od) * bytes;
        if (job->to_stack)
            memcpy(stacked, plain, bytes);
        else
            memcpy(plain, stacked, bytes);
    }
}

static void restack_y(char *ys, char *y, const conv3d_geom *g, conv_dtype dt, bool to_stack,
                      int threads) {
    run_copy((copy_job){.item = restack_y_item, .items = g->n * g->f, .g = g, .stack = ys,
                        .plain = y, .to_stack = to_stack, .dt = dt,
                        .elt = conv_dtype_size(dt)},
             threads);
}

conv_status conv3d_forward(void *y, const void *x, const void *w, const void *b,
                           const conv3d_geom *g, conv_dtype dt, const conv_exec *ex,
                           conv_error *err) {
    bool planes;
    conv_status st = on_planes(&planes, g, dt, ex, err);
    if (st != CONV_OK) return st;
    if (planes) return conv3d_winograd_forward(y, x, w, b, g, dt, ex, err);
    stack_space sp;
    st = carve(&sp, g, dt, ex, err);
    if (st != CONV_OK) return st;
    size_t elt = conv_dtype_size(dt);
    stack_x(sp.xs, x, g, dt, ex->threads);
    restack_w(sp.ws, (char *)w, g, elt, true); // reads w only
    st = conv2d_forward(sp.ys, sp.xs, sp.ws, b, &sp.g2, dt, &sp.ex2, err);
    if (st == CONV_OK) restack_y(sp.ys, y, g, dt, false, ex->threads);
    return st;
}

conv_status conv3d_backward_data(void *dx, const void *dy, const void *w, const conv3d_geom *g,
                                 conv_dtype dt, const conv_exec *ex, conv_error *err) {
    bool planes;
    conv_status st = on_planes(&planes, g, dt, ex, err);
    if (st != CONV_OK) return st;
    if (planes) return conv3d_winograd_backward_data(dx, dy, w, g, dt, ex, err);
    stack_space sp;
    st = carve(&sp, g, dt, ex, err);
    if (st != CONV_OK) return st;
    size_t elt = conv_dtype_size(dt);
    restack_y(sp.ys, (char *)dy, g, dt, true, ex->threads); // reads dy only
    restack_w(sp.ws, (char *)w, g, elt, true);
    st = conv2d_backward_data(sp.xs, sp.ys, sp.ws, &sp.g2, dt, &sp.ex2, err);
    if (st == CONV_OK) unstack_x(dx, sp.xs, g, dt, ex->threads);
    return st;
}

conv_status conv3d_backward_weights(void *dw, const void *dy, const void *x,
                                    const conv3d_geom *g, conv_dtype dt, const conv_exec *ex,
                                    conv_error *err) {
    bool planes;
    conv_status st = on_planes(&planes, g, dt, ex, err);
    if (st != CONV_OK) return st;
    if (planes) return conv3d_winograd_backward_weights(dw, dy, x, g, dt, ex, err);
    stack_space sp;
    st = carve(&sp, g, dt, ex, err);
    if (st != CONV_OK) return st;
    size_t elt = conv_dtype_size(dt);
    restack_y(sp.ys, (char *)dy, g, dt, true, ex->threads);
    stack_x(sp.xs, x, g, dt, ex->threads);
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
