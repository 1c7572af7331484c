#include "api/api_validate.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/conv_transpose.h"

// A list of names from a bit set, for messages: "x, w, b".
static const char *name_list(char *buf, size_t cap, const char *const *names, int count,
                             unsigned set) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < count && len < cap; i++)
        if (set & API_BIT(i))
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", names[i]);
    return buf;
}

static bool resolve_op(api_plan *plan, const api_request *req, const char *op_from_path,
                       api_error *err) {
    char ops[128];
    const api_op *from_path = op_from_path ? api_op_find(op_from_path) : NULL;
    if (op_from_path && !from_path)
        return api_fail(err, API_E_UNKNOWN_OP, "", "there is no op '%s'; the ops are %s",
                        op_from_path, api_op_list(ops, sizeof ops));
    if (req->op && from_path && req->op != from_path)
        return api_fail(err, API_E_OP_MISMATCH, "op",
                        "the body's op is \"%s\" but it was sent to %s (by its URL, or convd run "
                        "--op); drop \"op\" from the body or send it to %s",
                        req->op->name, from_path->name, req->op->name);
    plan->op = req->op ? req->op : from_path;
    if (!plan->op)
        return api_fail(err, API_E_MISSING_FIELD, "op",
                        "\"op\" is required (in the body, or by the URL or convd run --op); it "
                        "is one of %s",
                        api_op_list(ops, sizeof ops));
    return true;
}

static bool check_fields(api_plan *plan, const api_request *req, api_error *err) {
    const api_op *op = plan->op;
    char names[64];
    unsigned accepted = op->required | op->optional;
    for (int i = 0; i < API_IN_COUNT; i++) {
        bool given = req->in[i].rank > 0;
        if (!given && (op->required & API_BIT(i)))
            return api_fail(
                err, API_E_MISSING_FIELD, api_input_names[i], "%s is required: %s takes %s",
                api_input_names[i], op->name,
                name_list(names, sizeof names, api_input_names, API_IN_COUNT, op->required));
        if (given && !(accepted & API_BIT(i)))
            return api_fail(
                err, API_E_FIELD_NOT_ALLOWED, api_input_names[i],
                "%s is not an input of %s (it takes %s); remove it, or choose the op "
                "that uses it",
                api_input_names[i], op->name,
                name_list(names, sizeof names, api_input_names, API_IN_COUNT, accepted));
    }
    char returns[64];
    name_list(returns, sizeof returns, api_output_names, API_OUT_COUNT, op->outputs);
    if (req->outputs && !op->selectable)
        return api_fail(err, API_E_FIELD_NOT_ALLOWED, "outputs",
                        "\"outputs\" is not used by %s, which always returns %s; remove it",
                        op->name, returns);
    if (req->outputs & ~op->outputs)
        return api_fail(err, API_E_UNKNOWN_OUTPUT, "outputs",
                        "\"outputs\" names %s, which %s does not return; choose from %s",
                        name_list(names, sizeof names, api_output_names, API_OUT_COUNT,
                                  req->outputs & ~op->outputs),
                        op->name, returns);
    plan->outputs = req->outputs;
    if (!plan->outputs)
        for (int o = 0; o < API_OUT_COUNT; o++) {
            unsigned needs = api_output_default_needs[o];
            bool has_needs = true;
            for (int i = 0; i < API_IN_COUNT; i++)
                if ((needs & API_BIT(i)) && req->in[i].rank == 0) has_needs = false;
            if ((op->outputs & API_BIT(o)) && has_needs) plan->outputs |= API_BIT(o);
        }
    return true;
}

static bool check_limits(const api_tensor *t, const char *name, const api_options *opt,
                         api_error *err) {
    if (t->numel <= opt->max_elements) return true;
    char dims[160];
    return api_fail(err, API_E_TOO_MANY_ELEMENTS, name,
                    "%s %s has %" PRId64 " elements; this server takes at most %" PRId64
                    " per tensor (max_elements): send smaller batches",
                    name, api_shape_str(dims, sizeof dims, t->shape, t->rank), t->numel,
                    opt->max_elements);
}

// The tensor forms of an op's family, for messages.
static void family_forms(const api_op *op, const char **x_forms, const char **w_form) {
    if (op->transposed && op->spatial == 3) {
        *x_forms = "[N, C, D, H, W] or [C, D, H, W]";
        *w_form = "5-D [C, F/groups, kd, kh, kw]";
    } else if (op->transposed && op->spatial == 1) {
        *x_forms = "[N, C, L] or [C, L]";
        *w_form = "3-D [C, F/groups, k]";
    } else if (op->transposed) {
        *x_forms = "[N, C, H, W] or [C, H, W]";
        *w_form = "4-D [C, F/groups, kh, kw]";
    } else if (op->spatial == 3) {
        *x_forms = "[N, C, D, H, W] or [C, D, H, W]";
        *w_form = "5-D [F, C/groups, kd, kh, kw]";
    } else if (op->spatial == 1) {
        *x_forms = "[N, C, L] or [C, L]";
        *w_form = "3-D [F, C/groups, k]";
    } else {
        *x_forms = "[N, C, H, W], [C, H, W] or [H, W]";
        *w_form = "4-D [F, C/groups, kh, kw]";
    }
}

// The family's name, "conv1d" of "conv1d.forward", into buf.
static const char *family_name(char *buf, size_t cap, const api_op *op) {
    snprintf(buf, cap, "%.*s", (int)strcspn(op->name, "."), op->name);
    return buf;
}

// Parameters written with more numbers than the op has axes (conv1d: one; 2-d: one per axis,
// or the 4 sides of padding for conv2d), and those the op does not take.
static bool check_axes(const api_plan *plan, const api_request *req, api_error *err) {
    const api_op *op = plan->op;
    char family[32];
    family_name(family, sizeof family, op);
    const struct {
        const char *name;
        int given, also; // also: a count allowed besides 1 and one per axis
    } params[] = {
        {"stride", req->stride_given, 0},
        {"dilation", req->dilation_given, 0},
        {"padding", req->padding_given, op->spatial == 2 && !op->transposed ? 4 : 0},
        {"output_padding", req->output_padding_given, 0},
    };
    for (size_t i = 0; i < sizeof params / sizeof *params; i++)
        if (params[i].given > 1 && params[i].given != op->spatial &&
            params[i].given != params[i].also)
            return api_fail(err, API_E_INVALID_VALUE, params[i].name,
                            "%s has %d numbers but %s has %d spatial ax%s: give one integer%s",
                            params[i].name, params[i].given, family, op->spatial,
                            op->spatial == 1 ? "is" : "es",
                            op->spatial == 1 ? " or a list of one" : " or one per axis");
    if (req->output_padding_given && !op->transposed)
        return api_fail(err, API_E_FIELD_NOT_ALLOWED, "output_padding",
                        "output_padding is a parameter of transposed convolutions only; remove "
                        "it, or use conv_transpose1d or conv_transpose2d");
    if (op->transposed && req->pad_mode != API_PAD_EXPLICIT)
        return api_fail(err, API_E_INVALID_VALUE, "padding",
                        "%s takes padding as numbers (PyTorch has no \"same\" or \"valid\" for "
                        "transposed convolutions)",
                        family);
    return true;
}

// A transposed op's output_padding: PyTorch takes one smaller than the stride or the dilation
// (the second is run on an extended x: api_plan_input_layout).
static bool check_output_padding(const api_request *req, api_error *err) {
    for (int axis = 0; axis < 3; axis++) { // the third entry is used by conv_transpose3d only
        int64_t op = req->output_padding[axis], s = req->stride[axis], d = req->dilation[axis];
        char path[48];
        api_param_path(path, sizeof path, "output_padding", req->output_padding_given, axis, 0);
        if (op < 0)
            return api_fail(err, API_E_INVALID_VALUE, path,
                            "%s is %" PRId64 "; it must be 0 or more", path, op);
        if (s < 1 || d < 1) continue; // conv_geom_check refuses those
        if (op >= s && op >= d)
            return api_fail(err, API_E_INVALID_VALUE, path,
                            "%s is %" PRId64 " but must be smaller than the stride (%" PRId64
                            ") or the dilation (%" PRId64 "), as in PyTorch",
                            path, op, s, d);
    }
    return true;
}

// A transposed op's geometry: its adjoint conv2d layer (core/conv_transpose.h). x [N,C,H,W] or
// [C,H,W], w [C,F/G,kh,kw].
// conv_transpose3d: x [N,C,D,H,W] or [C,D,H,W], w [C,F/G,kd,kh,kw]; the adjoint conv3d layer
// goes in plan->geom3 (plan->geom, its stacked 2-d layer, is set by check_geometry).
static bool read_transposed_3d(api_plan *plan, const api_request *req, api_error *err) {
    const api_tensor *x = &req->in[API_IN_X], *w = &req->in[API_IN_W];
    int64_t n = x->rank == 5 ? x->shape[0] : 1, ci = x->shape[x->rank - 4];
    const int64_t in[3] = {x->shape[x->rank - 3], x->shape[x->rank - 2], x->shape[x->rank - 1]},
                  k[3] = {w->shape[2], w->shape[3], w->shape[4]};
    bool fits = w->shape[1] <= INT32_MAX && req->groups >= 1 && req->groups <= INT32_MAX;
    for (int a = 0; a < 3; a++)
        fits &= in[a] <= INT32_MAX && k[a] <= INT32_MAX && req->stride[a] >= 1 &&
                req->stride[a] <= INT32_MAX && req->dilation[a] >= 1 &&
                req->dilation[a] <= INT32_MAX && req->padding[2 * a] >= 0 &&
                req->padding[2 * a] <= INT32_MAX && req->padding[2 * a + 1] >= 0 &&
                req->padding[2 * a + 1] <= INT32_MAX;
    conv3d_geom *g = &plan->geom3;
    if (!fits) { // conv3d_geom_check names the value out of range
        *g = (conv3d_geom){.n = n, .c = w->shape[1], .d = in[0], .h = in[1], .w = in[2], .f = ci,
                           .kd = k[0], .kh = k[1], .kw = k[2], .groups = req->groups};
        memcpy(g->stride, req->stride, sizeof g->stride);
        memcpy(g->dilation, req->dilation, sizeof g->dilation);
        memcpy(g->padding, req->padding, sizeof g->padding);
        return true;
    }
    conv_transpose3d_geom(g, n, ci, in, w->shape[1] * req->groups, k, req->groups, req->stride,
                          req->dilation, req->padding, req->output_padding);
    static const char *const axes[] = {"depth", "height", "width"};
    const int64_t out[3] = {g->d, g->h, g->w};
    for (int a = 0; a < 3; a++) {
        if (out[a] >= 1) continue;
        char path[48];
        api_param_path(path, sizeof path, "padding", req->padding_given, a, 0);
        return api_fail(err, API_E_INVALID_VALUE, path,
                        "the output's %s would be %" PRId64 ": (%" PRId64 " - 1)*stride + "
                        "dilation*(k - 1) + output_padding + 1 is not more than the padding; "
                        "use less padding",
                        axes[a], out[a], in[a]);
    }
    return true;
}

static bool read_transposed(api_plan *plan, const api_request *req, api_error *err) {
    const api_tensor *x = &req->in[API_IN_X], *w = &req->in[API_IN_W];
    if (!check_output_padding(req, err)) return false;
    if (plan->op->spatial == 3) return read_transposed_3d(plan, req, err);
    // conv_transpose1d is conv_transpose2d with one row (H = kh = 1, nothing on that axis).
    bool one_d = plan->op->spatial == 1;
    int full = plan->op->spatial + 2;
    int64_t n = x->rank == full ? x->shape[0] : 1, ci = x->shape[x->rank - full + 1];
    int64_t hi = one_d ? 1 : x->shape[x->rank - 2], wi = x->shape[x->rank - 1];
    int64_t kh = one_d ? 1 : w->shape[2], kw = w->shape[w->rank - 1];
    const int64_t stride[2] = {one_d ? 1 : req->stride[0], req->stride[1]},
                  dilation[2] = {one_d ? 1 : req->dilation[0], req->dilation[1]},
                  padding[4] = {one_d ? 0 : req->padding[0], one_d ? 0 : req->padding[1],
                                req->padding[2], req->padding[3]},
                  output_padding[2] = {one_d ? 0 : req->output_padding[0],
                                       req->output_padding[1]};
    // Values out of range (below 1, or 0 for padding, or past INT_MAX) are left to
    // conv_geom_check, which names them; the output size is computed only from values in range,
    // whose products fit.
    const int64_t values[] = {hi,        wi,        w->shape[1], kh,          kw, req->groups,
                              stride[0], stride[1], dilation[0], dilation[1]};
    bool fits = true;
    for (size_t i = 0; i < sizeof values / sizeof *values; i++)
        fits &= values[i] >= 1 && values[i] <= INT32_MAX;
    for (int side = 0; side < 4; side++)
        fits &= padding[side] >= 0 && padding[side] <= INT32_MAX;
    conv_geom *g = &plan->geom;
    if (!fits) { // conv_geom_check names the value out of range
        *g = (conv_geom){.n = n, .c = w->shape[1], .h = hi, .w = wi, .f = ci, .kh = kh, .kw = kw,
                         .groups = req->groups, .stride_h = stride[0], .stride_w = stride[1],
                         .dilation_h = dilation[0], .dilation_w = dilation[1],
                         .pad_top = padding[0], .pad_bottom = padding[1],
                         .pad_left = padding[2], .pad_right = padding[3]};
        return true;
    }
    conv_transpose_geom(g, n, ci, hi, wi, w->shape[1] * req->groups, kh, kw, req->groups, stride,
                        dilation, padding, output_padding);
    for (int axis = 0; axis < 2; axis++) {
        int64_t out = axis ? g->w : g->h;
        if (out >= 1) continue;
        char path[48];
        api_param_path(path, sizeof path, "padding", req->padding_given, axis, 0);
        return api_fail(err, API_E_INVALID_VALUE, path,
                        "the output's %s would be %" PRId64 ": (%" PRId64 " - 1)*stride + "
                        "dilation*(k - 1) + output_padding + 1 is not more than the padding; "
                        "use less padding",
                        axis ? "width" : "height", out, axis ? wi : hi);
    }
    return true;
}

// PyTorch takes any stride and dilation that leave an output, where core's fields stop at
// INT_MAX. Along an axis of padded extent e (x's size and its two pads), a stride above e takes
// only the first window, as a stride of e does, and a kernel of one tap reads no dilation: such
// values are replaced by those equivalents, which give the same answers (so a stride of 2^40 on
// a small input is answered, as PyTorch answers it). Values out of range are left to the geometry
// check.
static void fold_unused(int64_t *stride, int64_t *dilation, int64_t size, int64_t pad_lo,
                        int64_t pad_hi, int64_t k) {
    int64_t extent;
    if (pad_lo >= 0 && pad_hi >= 0 && !__builtin_add_overflow(size, pad_lo, &extent) &&
        !__builtin_add_overflow(extent, pad_hi, &extent) && *stride > extent)
        *stride = extent;
    if (k == 1 && *dilation > 1) *dilation = 1;
}

// conv3d's geometry: x [N,C,D,H,W] or [C,D,H,W], w [F,C/G,kd,kh,kw]; plan->geom is set by
// check_geometry once the layer is known to be valid.
static bool read_3d(api_plan *plan, const api_request *req, api_error *err) {
    const api_tensor *x = &req->in[API_IN_X], *w = &req->in[API_IN_W];
    conv3d_geom *g = &plan->geom3;
    *g = (conv3d_geom){.n = x->rank == 5 ? x->shape[0] : 1, .c = x->shape[x->rank - 4],
                       .d = x->shape[x->rank - 3], .h = x->shape[x->rank - 2],
                       .w = x->shape[x->rank - 1], .f = w->shape[0], .kd = w->shape[2],
                       .kh = w->shape[3], .kw = w->shape[4], .groups = req->groups};
    memcpy(g->stride, req->stride, sizeof g->stride);
    memcpy(g->dilation, req->dilation, sizeof g->dilation);
    if (req->pad_mode == API_PAD_SAME) {
        if (g->stride[0] != 1 || g->stride[1] != 1 || g->stride[2] != 1)
            return api_fail(err, API_E_INVALID_VALUE, "padding",
                            "padding \"same\" needs stride 1 (as in PyTorch), but stride is "
                            "[%" PRId64 ", %" PRId64 ", %" PRId64 "]; give the padding as "
                            "numbers instead",
                            g->stride[0], g->stride[1], g->stride[2]);
        const int64_t k[3] = {g->kd, g->kh, g->kw};
        for (int a = 0; a < 3; a++)
            if (g->dilation[a] >= 1 && g->dilation[a] <= INT32_MAX && k[a] <= INT32_MAX)
                conv_pad_same(k[a], g->dilation[a], &g->padding[2 * a], &g->padding[2 * a + 1]);
    } else if (req->pad_mode == API_PAD_EXPLICIT) {
        memcpy(g->padding, req->padding, sizeof g->padding);
    }
    const int64_t in[3] = {g->d, g->h, g->w}, k[3] = {g->kd, g->kh, g->kw};
    for (int a = 0; a < 3; a++)
        fold_unused(&g->stride[a], &g->dilation[a], in[a], g->padding[2 * a],
                    g->padding[2 * a + 1], k[a]);
    return true;
}

// Ranks, and the geometry read off the shapes. conv2d: x [N,C,H,W], [C,H,W] or [H,W]; w
// [F,C/G,kh,kw] (or [kh,kw] with a 2-D x). conv1d: x [N,C,L] or [C,L], w [F,C/G,k], run with
// H = kh = 1. Transposed: see read_transposed.
static bool read_shapes(api_plan *plan, const api_request *req, api_error *err) {
    const api_op *op = plan->op;
    const api_tensor *x = &req->in[API_IN_X], *w = &req->in[API_IN_W];
    char dims[160];
    const char *x_forms, *w_form;
    family_forms(op, &x_forms, &w_form);
    int full = op->spatial + 2, least = op->spatial == 2 && !op->transposed ? 2 : full - 1;
    if (x->rank < least || x->rank > full)
        return api_fail(err, API_E_INVALID_SHAPE, "x.shape",
                        "x has shape %s, %d-D; for %s it must be %s",
                        api_shape_str(dims, sizeof dims, x->shape, x->rank), x->rank, op->name,
                        x_forms);
    int w_rank = x->rank == 2 && op->spatial == 2 ? 2 : full;
    if (w->rank != w_rank)
        return api_fail(err, API_E_SHAPE_MISMATCH, "w.shape",
                        "w has shape %s, but with a %d-D x it must be %s",
                        api_shape_str(dims, sizeof dims, w->shape, w->rank), x->rank,
                        w_rank == 2 ? "2-D [kh, kw]" : w_form);
    plan->rank = x->rank;
    if (!check_axes(plan, req, err)) return false;
    if (op->transposed) return read_transposed(plan, req, err);
    if (op->spatial == 3) return read_3d(plan, req, err);
    conv_geom *g = &plan->geom;
    bool one_d = op->spatial == 1;
    g->n = x->rank == full ? x->shape[0] : 1;
    g->c = x->rank >= full - 1 ? x->shape[x->rank - full + 1] : 1;
    g->h = one_d ? 1 : x->shape[x->rank - 2];
    g->w = x->shape[x->rank - 1];
    g->f = w_rank == full ? w->shape[0] : 1;
    g->kh = one_d ? 1 : w->shape[w_rank - 2];
    g->kw = w->shape[w_rank - 1];
    g->groups = req->groups;
    // conv1d's one axis is the columns (a single number fills both entries of each pair).
    g->stride_h = one_d ? 1 : req->stride[0];
    g->stride_w = req->stride[1];
    g->dilation_h = one_d ? 1 : req->dilation[0];
    g->dilation_w = req->dilation[1];
    if (req->pad_mode == API_PAD_SAME) {
        if (g->stride_h != 1 || g->stride_w != 1)
            return api_fail(err, API_E_INVALID_VALUE, "padding",
                            "padding \"same\" needs stride 1 (as in PyTorch), but stride is "
                            "[%" PRId64 ", %" PRId64 "]; give the padding as numbers instead",
                            req->stride[0], req->stride[1]);
        // Dilations out of range are refused by the geometry check (their products could
        // overflow); "same" pads nothing for a kernel of one tap.
        if (g->dilation_h >= 1 && g->dilation_h <= INT32_MAX && g->kh <= INT32_MAX)
            conv_pad_same(g->kh, g->dilation_h, &g->pad_top, &g->pad_bottom);
        if (g->dilation_w >= 1 && g->dilation_w <= INT32_MAX && g->kw <= INT32_MAX)
            conv_pad_same(g->kw, g->dilation_w, &g->pad_left, &g->pad_right);
    } else {
        g->pad_top = one_d ? 0 : req->padding[0];
        g->pad_bottom = one_d ? 0 : req->padding[1];
        g->pad_left = req->padding[2];
        g->pad_right = req->padding[3];
    }
    fold_unused(&g->stride_h, &g->dilation_h, g->h, g->pad_top, g->pad_bottom, g->kh);
    fold_unused(&g->stride_w, &g->dilation_w, g->w, g->pad_left, g->pad_right, g->kw);
    return true;
}

// Where a conv_geom field lives in the request, for core's verdict.
static void geom_field_path(char *buf, size_t cap, const char *field, const api_request *req,
                            const api_plan *plan) {
    const api_op *op = plan->op;
    int full = op->spatial + 2, deep = op->spatial == 3;
    // Each size's index in the family's full-rank tensor (-1: none, such as a transposed
    // op's output sizes); a tensor given with fewer axes lacks the leading ones.
    const struct {
        const char *field, *tensor;
        int index;
    } conv_dims[] = {
        {"n", "x", 0},  {"c", "x", 1}, {"d", "x", 2}, {"h", "x", op->spatial >= 2 ? full - 2 : -1},
        {"w", "x", full - 1}, {"f", "w", 0}, {"kd", "w", 2},
        {"kh", "w", op->spatial >= 2 ? full - 2 : -1}, {"kw", "w", full - 1},
    }, transposed_dims[] = {
        {"n", "x", 0},  {"f", "x", 1},  {"c", "w", 1},  {"h", "", -1}, {"w", "", -1},
        {"kh", "w", op->spatial == 2 ? 2 : -1}, {"kw", "w", full - 1}, {"d", "", -1},
        {"kd", "", -1},
    };
    const __typeof__(conv_dims[0]) *dims = op->transposed ? transposed_dims : conv_dims;
    for (size_t i = 0; i < sizeof conv_dims / sizeof *conv_dims; i++)
        if (strcmp(field, dims[i].field) == 0) {
            int rank = req->in[dims[i].tensor[0] == 'x' ? API_IN_X : API_IN_W].rank;
            int index = dims[i].index < 0 ? -1 : dims[i].index - (full - rank);
            if (index < 0)
                snprintf(buf, cap, "%s", dims[i].tensor);
            else
                snprintf(buf, cap, "%s.shape[%d]", dims[i].tensor, index);
            return;
        }
    const struct {
        const char *field, *param;
        int given, axis, side;
    } params[] = {
        // conv3d's lists start with the depth, so rows and columns are one further on.
        {"stride_d", "stride", req->stride_given, 0, 0},
        {"stride_h", "stride", req->stride_given, 0 + deep, 0},
        {"stride_w", "stride", req->stride_given, 1 + deep, 0},
        {"dilation_d", "dilation", req->dilation_given, 0, 0},
        {"dilation_h", "dilation", req->dilation_given, 0 + deep, 0},
        {"dilation_w", "dilation", req->dilation_given, 1 + deep, 0},
        {"pad_front", "padding", req->padding_given, 0, 0},
        {"pad_back", "padding", req->padding_given, 0, 1},
        {"pad_top", "padding", req->padding_given, 0 + deep, 0},
        {"pad_bottom", "padding", req->padding_given, 0 + deep, 1},
        {"pad_left", "padding", req->padding_given, 1 + deep, 0},
        {"pad_right", "padding", req->padding_given, 1 + deep, 1},
    };
    for (size_t i = 0; i < sizeof params / sizeof *params; i++)
        if (strcmp(field, params[i].field) == 0) {
            api_param_path(buf, cap, params[i].param, params[i].given, params[i].axis,
                           params[i].side);
            return;
        }
    snprintf(buf, cap, "%s", strncmp(field, "output", 6) == 0 ? "" : field); // groups, x, w
}

// Whether a conv_geom field is a layer parameter rather than a tensor size.
static bool is_parameter(const char *field) {
    static const char *const prefixes[] = {"stride", "dilation", "pad", "groups"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(field, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return false;
}

static bool check_geometry(api_plan *plan, const api_request *req, api_error *err) {
    conv_error cerr = {0};
    bool deep = plan->op->spatial == 3;
    conv_status status = deep ? conv3d_geom_check(&plan->geom3, req->dtype, &cerr)
                              : conv_geom_check(&plan->geom, req->dtype, &cerr);
    if (status == CONV_OK && deep) conv3d_plane_geom(&plan->geom, &plan->geom3);
    if (status == CONV_OK) return true;
    const char *field = cerr.field ? cerr.field : "";
    char path[96];
    geom_field_path(path, sizeof path, field, req, plan);
    api_code code = API_E_INVALID_VALUE;
    if (strcmp(field, "output") == 0 && status == CONV_EINVAL) {
        // The kernel does not fit: point at its size along the axis that fails.
        int wr = req->in[API_IN_W].rank;
        snprintf(path, sizeof path, "w.shape[%d]", conv_out_h(&plan->geom) < 1 ? wr - 2 : wr - 1);
        code = API_E_KERNEL_TOO_LARGE;
    } else if (strcmp(field, "output_d") == 0) {
        snprintf(path, sizeof path, "w.shape[2]");
        code = API_E_KERNEL_TOO_LARGE;
    } else if (status == CONV_EOVERFLOW && !is_parameter(field)) {
        code = API_E_TOO_MANY_ELEMENTS; // a tensor too large, not a parameter out of range
    }
    return api_fail(err, code, path, "%s", cerr.message);
}

// padding_mode: what PyTorch allows (not for transposed convolutions; reflect needs each pad
// smaller than its axis, circular at most its axis).
static bool check_padding_mode(const api_plan *plan, const api_request *req, api_error *err) {
    conv_pad_mode mode = req->padding_mode;
    if (mode == CONV_PAD_ZEROS) return true;
    const char *name = conv_pad_mode_name(mode);
    if (plan->op->transposed)
        return api_fail(err, API_E_INVALID_VALUE, "padding_mode",
                        "padding_mode \"%s\": transposed convolutions take only \"zeros\" (as "
                        "in PyTorch)",
                        name);
    int64_t dims[3], pad[6];
    api_plan_input_layout(plan, req, dims, pad, &mode);
    int axis = conv_pad_check(mode, dims, pad);
    if (axis < 0) return true;
    static const char *const axes[] = {"depth", "height", "width"};
    // conv1d and conv2d have no depth; conv1d's one axis is the width.
    return api_fail(err, API_E_INVALID_VALUE, "padding",
                    "padding_mode \"%s\" needs each padding %s the input's size along its axis, "
                    "but along the %s the padding is %" PRId64 " and %" PRId64 " and the input "
                    "has %" PRId64,
                    name, mode == CONV_PAD_REFLECT ? "smaller than" : "at most", axes[axis],
                    pad[2 * axis], pad[2 * axis + 1], dims[axis]);
}

// What core cannot see: the shapes of w, b and dy against x and the geometry.
static bool check_relations(const api_plan *plan, const api_request *req, api_error *err) {
    const conv_geom *g = &plan->geom;
    const api_tensor *w = &req->in[API_IN_W], *b = &req->in[API_IN_B], *dy = &req->in[API_IN_DY];
    char dims[160], want[160];
    int64_t f = !plan->op->transposed ? g->f : plan->op->spatial == 3 ? plan->geom3.c : g->c;
    int64_t c = plan->op->spatial == 3 ? plan->geom3.c : g->c; // g is conv3d's stacked layer
    const char *x_forms, *w_form;
    family_forms(plan->op, &x_forms, &w_form);
    if (plan->op->transposed && w->shape[0] != g->f)
        return api_fail(err, API_E_SHAPE_MISMATCH, "w.shape[0]",
                        "w has %" PRId64 " input channels (w.shape[0]) but x has %" PRId64
                        "; a transposed convolution's w is %s, C being x's channels",
                        w->shape[0], g->f, w_form);
    if (!plan->op->transposed && w->rank > 2 && w->shape[1] * g->groups != c)
        return api_fail(err, API_E_SHAPE_MISMATCH, "w.shape[1]",
                        "w has %" PRId64 " input channels per group but x has %" PRId64
                        " channels and groups=%" PRId64 "; w.shape[1] must be %" PRId64,
                        w->shape[1], c, g->groups, c / g->groups);
    if (b->rank && b->rank != 1)
        return api_fail(err, API_E_SHAPE_MISMATCH, "b.shape",
                        "b has shape %s; it must be 1-D [F], one value per filter",
                        api_shape_str(dims, sizeof dims, b->shape, b->rank));
    if (b->rank && b->shape[0] != f)
        return api_fail(err, API_E_SHAPE_MISMATCH, "b.shape[0]",
                        "b has %" PRId64 " value%s but the layer has F=%" PRId64
                        " output channels (filters); b needs one value per filter",
                        b->shape[0], b->shape[0] == 1 ? "" : "s", f);
    if (!dy->rank) return true;
    int64_t y_shape[API_MAX_RANK];
    int y_rank = api_output_shape(y_shape, req, plan, API_OUT_Y);
    api_shape_str(want, sizeof want, y_shape, y_rank);
    api_shape_str(dims, sizeof dims, dy->shape, dy->rank);
    if (dy->rank != y_rank)
        return api_fail(err, API_E_SHAPE_MISMATCH, "dy.shape",
                        "dy has shape %s but y has shape %s; dy must have exactly y's shape", dims,
                        want);
    for (int i = 0; i < y_rank; i++)
        if (dy->shape[i] != y_shape[i]) {
            // The layer as the op has it, one stride per spatial axis and both sides of each
            // axis' padding (conv1d keeps its one stride at [1]), as the answer's meta says.
            const int spatial = plan->op->spatial, first = spatial == 1 ? 1 : 0;
            int64_t sides[6];
            int n_sides = api_plan_padding(plan, sides);
            char path[32], stride[64], padding[96];
            snprintf(path, sizeof path, "dy.shape[%d]", i);
            api_shape_str(stride, sizeof stride, req->stride + first, spatial);
            api_shape_str(padding, sizeof padding, sides, n_sides);
            return api_fail(err, API_E_SHAPE_MISMATCH, path,
                            "dy has shape %s but y has shape %s (with stride %s and padding %s); "
                            "dy must have exactly y's shape",
                            dims, want, stride, padding);
        }
    return true;
}

static bool check_work(api_plan *plan, const api_request *req, const api_options *opt,
                       api_error *err) {
    // conv3d stacks x once per depth tap of each output plane (core/conv3d.h): that copy is
    // held to the per-tensor limit like the tensors themselves.
    int64_t dims[3], pad[6];
    conv_pad_mode mode;
    int64_t numel = api_plan_input_layout(plan, req, dims, pad, &mode);
    if (numel) { // the padded copy of x (api_exec.c)
        bool overflow = false;
        for (int a = 0; a < 3; a++)
            overflow |=
                __builtin_mul_overflow(numel, dims[a] + pad[2 * a] + pad[2 * a + 1], &numel);
        if (overflow || numel > opt->max_elements)
            return api_fail(err, API_E_TOO_MANY_ELEMENTS, "",
                            "%s works on a padded copy of x: %" PRId64
                            " elements here; this server takes at most %" PRId64
                            " per tensor (max_elements): send smaller batches",
                            mode != CONV_PAD_ZEROS ? "padding_mode" : "output_padding",
                            overflow ? INT64_MAX : numel, opt->max_elements);
    }
    if (plan->op->spatial == 3 && conv_numel_x(&plan->geom) > opt->max_elements)
        return api_fail(err, API_E_TOO_MANY_ELEMENTS, "",
                        "conv3d works on a copy of x with one plane per output depth and kernel "
                        "tap: %" PRId64 " elements here; this server takes at most %" PRId64
                        " per tensor (max_elements): send smaller batches",
                        conv_numel_x(&plan->geom), opt->max_elements);
    for (int o = 0; o < API_OUT_COUNT; o++) {
        if (!(plan->outputs & API_BIT(o))) continue;
        int64_t shape[API_MAX_RANK];
        api_tensor out = {0};
        int rank = api_output_shape(shape, req, plan, (api_output)o);
        if (!api_tensor_set_shape(&out, shape, rank, api_output_names[o], err) ||
            !check_limits(&out, api_output_names[o], opt, err)) {
            if (err) err->path[0] = '\0'; // an output: nothing in the request to point at
            return false;
        }
    }
    plan->flops = api_outputs_flops(plan);
    if (plan->flops > opt->max_flops) {
        char names[64];
        return api_fail(
            err, API_E_TOO_MUCH_WORK, "",
            "this request needs %.3g FLOPs (%s of %s); this server takes at most "
            "%.3g per request (max_flops): send smaller batches",
            (double)plan->flops,
            name_list(names, sizeof names, api_output_names, API_OUT_COUNT, plan->outputs),
            plan->op->name, (double)opt->max_flops);
    }
    return true;
}

// What "algorithm" runs with the scratch api_execute will give it (conv_workspace_size under
// the cap, which the thread count does not bring below Winograd's least).
static bool pick_algorithm(api_plan *plan, const api_request *req, const api_options *opt,
                           api_error *err) {
    // Winograd is tested as conv2d's own passes; the other families and padding modes run
    // conv2d's passes on geometries of their own making, so they stay on the direct paths.
    if (plan->op->spatial != 2 || plan->op->transposed || req->padding_mode != CONV_PAD_ZEROS) {
        plan->algorithm = CONV_ALGO_DIRECT;
        return req->algorithm != CONV_ALGO_WINOGRAD ||
               api_fail(err, API_E_INVALID_VALUE, "algorithm",
                        "algorithm \"winograd\" applies to conv2d with zero padding only (3x3 "
                        "kernels, stride 1); %s%s runs the direct paths: send "
                        "\"auto\" or \"direct\"",
                        plan->op->name, req->padding_mode != CONV_PAD_ZEROS ? " with this padding_mode" : "");
    }
    conv_error cerr = {0};
    const size_t bytes = conv_workspace_size(&plan->geom, req->dtype, 1, opt->workspace_cap);
    if (conv_pick_algorithm(&plan->geom, req->dtype, req->algorithm, bytes, &plan->algorithm,
                            &cerr) == CONV_OK)
        return true;
    return api_fail(err, API_E_INVALID_VALUE, "algorithm", "%s", cerr.message);
}

bool api_validate(api_plan *plan, const api_request *req, const char *op_from_path,
                  const api_options *opt, api_error *err) {
    *plan = (api_plan){0};
    if (!resolve_op(plan, req, op_from_path, err) || !check_fields(plan, req, err)) return false;
    for (int i = 0; i < API_IN_COUNT; i++)
        if (req->in[i].rank && !check_limits(&req->in[i], api_input_names[i], opt, err))
            return false;
    return read_shapes(plan, req, err) && check_geometry(plan, req, err) &&
           check_padding_mode(plan, req, err) && check_relations(plan, req, err) &&
           check_work(plan, req, opt, err) && pick_algorithm(plan, req, opt, err);
}
