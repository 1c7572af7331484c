#include "api/api_model.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const api_input_names[API_IN_COUNT] = {"x", "w", "b", "dy"};
const char *const api_output_names[API_OUT_COUNT] = {"y", "dx", "dw", "db"};
const unsigned api_output_default_needs[API_OUT_COUNT] = {[API_OUT_DB] = API_BIT(API_IN_B)};

#define X API_BIT(API_IN_X)
#define W API_BIT(API_IN_W)
#define B API_BIT(API_IN_B)
#define DY API_BIT(API_IN_DY)
#define BACKWARD (API_BIT(API_OUT_DX) | API_BIT(API_OUT_DW) | API_BIT(API_OUT_DB))
const api_op api_ops[] = {
    {"conv2d.forward", X | W, B, API_BIT(API_OUT_Y), false, 2, false},
    {"conv2d.backward", X | W | DY, B, BACKWARD, true, 2, false},
    {"conv1d.forward", X | W, B, API_BIT(API_OUT_Y), false, 1, false},
    {"conv1d.backward", X | W | DY, B, BACKWARD, true, 1, false},
    {"conv_transpose2d.forward", X | W, B, API_BIT(API_OUT_Y), false, 2, true},
    {"conv_transpose2d.backward", X | W | DY, B, BACKWARD, true, 2, true},
    {"conv_transpose1d.forward", X | W, B, API_BIT(API_OUT_Y), false, 1, true},
    {"conv_transpose1d.backward", X | W | DY, B, BACKWARD, true, 1, true},
    {"conv3d.forward", X | W, B, API_BIT(API_OUT_Y), false, 3, false},
    {"conv3d.backward", X | W | DY, B, BACKWARD, true, 3, false},
    {"conv_transpose3d.forward", X | W, B, API_BIT(API_OUT_Y), false, 3, true},
    {"conv_transpose3d.backward", X | W | DY, B, BACKWARD, true, 3, true},
};
#undef BACKWARD
#undef X
#undef W
#undef B
#undef DY
const int api_op_count = sizeof api_ops / sizeof *api_ops;

const api_op *api_op_find(const char *name) {
    for (int i = 0; i < api_op_count; i++)
        if (strcmp(api_ops[i].name, name) == 0) return &api_ops[i];
    return NULL;
}

const char *api_op_list(char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < api_op_count && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", api_ops[i].name);
    return buf;
}

bool api_tensor_set_shape(api_tensor *t, const int64_t *shape, int rank, const char *path,
                          api_error *err) {
    int64_t numel = 1;
    bool overflow = false;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 1) {
            char where[96];
            snprintf(where, sizeof where, "%s[%d]", path, i);
            return api_fail(err, API_E_INVALID_SHAPE, where,
                            "%s is %" PRId64 "; every size must be at least 1 (empty tensors "
                            "have nothing to convolve)",
                            where, shape[i]);
        }
        overflow |= __builtin_mul_overflow(numel, shape[i], &numel);
    }
    if (overflow) {
        char dims[160];
        return api_fail(err, API_E_TOO_MANY_ELEMENTS, path,
                        "%s %s describes more elements than a 64-bit count can hold", path,
                        api_shape_str(dims, sizeof dims, shape, rank));
    }
    t->rank = rank;
    memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
    t->numel = numel;
    return true;
}

void api_tensor_free(api_tensor *t) {
    free(t->owned);
    *t = (api_tensor){0};
}

const char *api_shape_str(char *buf, size_t cap, const int64_t *shape, int rank) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

// The flat index of the first element of `n` that is NaN or infinite, or -1. Reads the bits
// (exponent all ones), as the bytes may be misaligned for a float.
static int64_t first_non_finite(const char *bytes, int64_t n, conv_dtype dt) {
    for (int64_t i = 0; i < n; i++) {
        if (dt == CONV_FLOAT32) {
            uint32_t u;
            memcpy(&u, bytes + i * 4, 4);
            if ((u & 0x7f800000u) == 0x7f800000u) return i;
        } else {
            uint64_t u;
            memcpy(&u, bytes + i * 8, 8);
            if ((u & 0x7ff0000000000000u) == 0x7ff0000000000000u) return i;
        }
    }
    return -1;
}

bool api_tensor_from_bytes(api_tensor *t, const char *bytes, conv_dtype dt, const char *name,
                           api_error *err) {
    size_t elt = conv_dtype_size(dt), n = (size_t)t->numel * elt;
    int64_t bad = first_non_finite(bytes, t->numel, dt);
    if (bad >= 0) {
        double v;
        if (dt == CONV_FLOAT32) {
            float f;
            memcpy(&f, bytes + bad * 4, 4);
            v = f;
        } else {
            memcpy(&v, bytes + bad * 8, 8);
        }
        char path[96];
        snprintf(path, sizeof path, "%s[%" PRId64 "]", name, bad);
        return api_fail(err, API_E_NON_FINITE_NUMBER, path,
                        "%s (flat index %" PRId64 ") is %s; every number must be finite, as in "
                        "JSON",
                        name, bad, isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
    }
    if ((uintptr_t)bytes % elt == 0) {
        t->data = (void *)bytes; // borrowed: the tensor is read, never written
        t->owned = NULL;
        return true;
    }
    t->data = t->owned = malloc(n);
    if (!t->data)
        return api_fail(err, API_E_OUT_OF_MEMORY, "", "out of memory for %zu bytes of tensor data", n);
    memcpy(t->data, bytes, n);
    return true;
}

// db sums y's gradient: g's output for conv, g's input for a transposed op (its adjoint).
static int64_t bias_flops(const conv_geom *g, bool transposed) {
    int64_t n = g->n * (transposed ? g->c : g->f), r;
    int64_t pixels = transposed ? g->h * g->w : conv_out_h(g) * conv_out_w(g);
    return __builtin_mul_overflow(n, pixels, &r) ? INT64_MAX : r;
}

int api_output_shape(int64_t shape[API_MAX_RANK], const api_request *req, const api_plan *plan,
                     api_output out) {
    const conv_geom *g = &plan->geom;
    bool transposed = plan->op->transposed;
    switch (out) {
    case API_OUT_Y: {
        // [N, F, Ho, Wo] (conv1d: [N, F, Wo]), cut to the request's rank; a transposed op's y
        // is its adjoint layer's input.
        int64_t full[5] = {g->n, transposed ? g->c : g->f, transposed ? g->h : conv_out_h(g),
                           transposed ? g->w : conv_out_w(g)};
        int full_rank = 2 + plan->op->spatial;
        if (full_rank == 3) full[2] = full[3];
        if (full_rank == 5) { // [N, F, Do, Ho, Wo]; a transposed op's y is geom3's input
            const conv3d_geom *g3 = &plan->geom3;
            int64_t conv[5] = {g3->n, g3->f, conv3d_out_d(g3), conv_out_h(g), conv_out_w(g)},
                    adjoint[5] = {g3->n, g3->c, g3->d, g3->h, g3->w};
            memcpy(full, transposed ? adjoint : conv, sizeof conv);
        }
        memcpy(shape, full + (full_rank - plan->rank), (size_t)plan->rank * sizeof *shape);
        return plan->rank;
    }
    case API_OUT_DX:
    case API_OUT_DW: {
        const api_tensor *like = &req->in[out == API_OUT_DX ? API_IN_X : API_IN_W];
        memcpy(shape, like->shape, (size_t)like->rank * sizeof *shape);
        return like->rank;
    }
    default:
        shape[0] = !transposed ? g->f : plan->op->spatial == 3 ? plan->geom3.c : g->c;
        return 1;
    }
}

int api_plan_padding(const api_plan *plan, int64_t sides[6]) {
    const conv_geom *g = &plan->geom; // conv3d: its stacked layer, which has its rows' padding
    int n = 0;
    if (plan->op->spatial == 3) {
        sides[n++] = plan->geom3.padding[0];
        sides[n++] = plan->geom3.padding[1];
    }
    if (plan->op->spatial >= 2) {
        sides[n++] = g->pad_top;
        sides[n++] = g->pad_bottom;
    }
    sides[n++] = g->pad_left;
    sides[n++] = g->pad_right;
    return n;
}

int64_t api_plan_input_layout(const api_plan *plan, const api_request *req, int64_t dims[3],
                              int64_t pad[6], conv_pad_mode *mode) {
    const bool deep = plan->op->spatial == 3;
    const conv_geom *g = &plan->geom; // conv1d's H is 1, unpadded; conv3d's stacked layer
    const conv3d_geom *g3 = &plan->geom3;
    *mode = req->padding_mode;
    if (*mode != CONV_PAD_ZEROS) {
        memcpy(dims, (int64_t[3]){deep ? g3->d : 1, deep ? g3->h : g->h, deep ? g3->w : g->w},
               3 * sizeof *dims);
        if (deep)
            memcpy(pad, g3->padding, 6 * sizeof *pad);
        else
            memcpy(pad, (int64_t[6]){0, 0, g->pad_top, g->pad_bottom, g->pad_left, g->pad_right},
                   6 * sizeof *pad);
        return deep ? g3->n * g3->c : g->n * g->c;
    }
    if (!plan->op->transposed) return 0;
    // x's sizes against the rows, columns (and planes) the adjoint conv computes.
    const api_tensor *x = &req->in[API_IN_X];
    const int s = plan->op->spatial;
    const int64_t out[3] = {deep ? conv3d_out_d(g3) : 1, conv_out_h(g), conv_out_w(g)};
    bool extended = false;
    for (int a = 0; a < 3; a++) {
        dims[a] = a < 3 - s ? 1 : x->shape[x->rank - 3 + a];
        pad[2 * a] = 0;
        pad[2 * a + 1] = out[a] - dims[a];
        extended |= pad[2 * a + 1] != 0;
    }
    return !extended ? 0 : deep ? g3->n * g3->f : g->n * g->f;
}

void api_plan_unpad(api_plan *plan) {
    if (plan->op->spatial == 3) {
        conv3d_geom *g = &plan->geom3;
        g->d += g->padding[0] + g->padding[1];
        g->h += g->padding[2] + g->padding[3];
        g->w += g->padding[4] + g->padding[5];
        memset(g->padding, 0, sizeof g->padding);
        conv3d_plane_geom(&plan->geom, g);
        return;
    }
    conv_geom *g = &plan->geom;
    g->h += g->pad_top + g->pad_bottom;
    g->w += g->pad_left + g->pad_right;
    g->pad_top = g->pad_bottom = g->pad_left = g->pad_right = 0;
}

// conv_transpose3d's db sums dyt, its adjoint layer's input (N, Co, D, H, W).
static int64_t transposed_3d_bias_flops(const conv3d_geom *g) {
    int64_t r = g->n;
    const int64_t factors[] = {g->c, g->d, g->h, g->w};
    for (int i = 0; i < 4; i++)
        if (__builtin_mul_overflow(r, factors[i], &r)) return INT64_MAX;
    return r;
}

int64_t api_outputs_flops(const api_plan *plan) {
    // y, dx and dw are each one GEMM-sized pass (api_exec.c), the same for a transposed op.
    int64_t total = 0;
    for (int o = 0; o < API_OUT_COUNT; o++) {
        if (!(plan->outputs & API_BIT(o))) continue;
        int64_t cost = o != API_OUT_DB ? conv_flops(&plan->geom)
                       : plan->op->transposed && plan->op->spatial == 3
                           ? transposed_3d_bias_flops(&plan->geom3)
                           : bias_flops(&plan->geom, plan->op->transposed);
        if (__builtin_add_overflow(total, cost, &total)) return INT64_MAX;
    }
    return total;
}

void api_request_init(api_request *req) {
    *req = (api_request){
        .dtype = CONV_FLOAT32,
        .stride = {1, 1, 1},
        .dilation = {1, 1, 1},
        .pad_mode = API_PAD_EXPLICIT,
        .groups = 1,
    };
}

void api_request_free(api_request *req) {
    for (int i = 0; i < API_IN_COUNT; i++) api_tensor_free(&req->in[i]);
}

const char *api_param_path(char *buf, size_t cap, const char *name, int given, int axis, int side) {
    if (given == 4)
        snprintf(buf, cap, "%s[%d]", name, axis * 2 + side);
    else if (given == 2 || given == 3)
        snprintf(buf, cap, "%s[%d]", name, axis);
    else
        snprintf(buf, cap, "%s", name);
    return buf;
}

bool api_algorithm_parse(const char *name, conv_algorithm *out) {
    static const conv_algorithm known[] = {CONV_ALGO_AUTO, CONV_ALGO_DIRECT, CONV_ALGO_WINOGRAD};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(name, conv_algorithm_name(known[i])) == 0) {
            *out = known[i];
            return true;
        }
    return false;
}

bool api_padding_mode_parse(const char *name, conv_pad_mode *out) {
    for (int mode = CONV_PAD_ZEROS; mode <= CONV_PAD_CIRCULAR; mode++)
        if (strcmp(name, conv_pad_mode_name((conv_pad_mode)mode)) == 0) {
            *out = (conv_pad_mode)mode;
            return true;
        }
    return false;
}
