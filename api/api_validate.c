#include "api/api_validate.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>


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

// Ranks, and the geometry read off the shapes. x [N,C,H,W], [C,H,W] or [H,W]; w
// [F,C/G,kh,kw] (or [kh,kw] with a 2-D x).
static bool read_shapes(api_plan *plan, const api_request *req, api_error *err) {
    const api_tensor *x = &req->in[API_IN_X], *w = &req->in[API_IN_W];
    char dims[160];
    if (x->rank < 2 || x->rank > 4)
        return api_fail(err, API_E_INVALID_SHAPE, "x.shape",
                        "x has shape %s, %d-D; it must be [N, C, H, W], [C, H, W] or [H, W]",
                        api_shape_str(dims, sizeof dims, x->shape, x->rank), x->rank);
    int w_rank = x->rank == 2 ? 2 : 4;
    if (w->rank != w_rank)
        return api_fail(err, API_E_SHAPE_MISMATCH, "w.shape",
                        "w has shape %s, but with a %d-D x it must be %s",
                        api_shape_str(dims, sizeof dims, w->shape, w->rank), x->rank,
                        w_rank == 2 ? "2-D [kh, kw]" : "4-D [F, C/groups, kh, kw]");
    plan->rank = x->rank;
    conv_geom *g = &plan->geom;
    g->n = x->rank == 4 ? x->shape[0] : 1;
    g->c = x->rank >= 3 ? x->shape[x->rank - 3] : 1;
    g->h = x->shape[x->rank - 2];
    g->w = x->shape[x->rank - 1];
    g->f = w_rank == 4 ? w->shape[0] : 1;
    g->kh = w->shape[w_rank - 2];
    g->kw = w->shape[w_rank - 1];
    g->groups = req->groups;
    g->stride_h = req->stride[0];
    g->stride_w = req->stride[1];
    g->dilation_h = req->dilation[0];
    g->dilation_w = req->dilation[1];
    if (req->pad_mode == API_PAD_SAME) {
        if (req->stride[0] != 1 || req->stride[1] != 1)
            return api_fail(err, API_E_INVALID_VALUE, "padding",
                            "padding \"same\" needs stride 1 (as in PyTorch), but stride is "
                            "[%" PRId64 ", %" PRId64 "]; give the padding as numbers instead",
                            req->stride[0], req->stride[1]);
        conv_pad_same(g->kh, g->dilation_h, &g->pad_top, &g->pad_bottom);
        conv_pad_same(g->kw, g->dilation_w, &g->pad_left, &g->pad_right);
    } else {
        g->pad_top = req->padding[0];
        g->pad_bottom = req->padding[1];
        g->pad_left = req->padding[2];
        g->pad_right = req->padding[3];
    }
    return true;
}

// Where a conv_geom field lives in the request, for core's verdict.
static void geom_field_path(char *buf, size_t cap, const char *field, const api_request *req,
                            const api_plan *plan) {
    int xr = plan->rank, wr = plan->rank == 2 ? 2 : 4;
    const struct {
        const char *field, *tensor;
        int index; // in the tensor's shape; -1 when this rank has no such dimension
    } dims[] = {
        {"n", "x", xr == 4 ? 0 : -1}, {"c", "x", xr >= 3 ? xr - 3 : -1}, {"h", "x", xr - 2},
        {"w", "x", xr - 1},           {"f", "w", wr == 4 ? 0 : -1},      {"kh", "w", wr - 2},
        {"kw", "w", wr - 1},
    };
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++)
        if (strcmp(field, dims[i].field) == 0) {
            if (dims[i].index < 0)
                snprintf(buf, cap, "%s", dims[i].tensor);
            else
                snprintf(buf, cap, "%s.shape[%d]", dims[i].tensor, dims[i].index);
            return;
        }
    const struct {
        const char *field, *param;
        int given, axis, side;
    } params[] = {
        {"stride_h", "stride", req->stride_given, 0, 0},
        {"stride_w", "stride", req->stride_given, 1, 0},
        {"dilation_h", "dilation", req->dilation_given, 0, 0},
        {"dilation_w", "dilation", req->dilation_given, 1, 0},
        {"pad_top", "padding", req->padding_given, 0, 0},
        {"pad_bottom", "padding", req->padding_given, 0, 1},
        {"pad_left", "padding", req->padding_given, 1, 0},
        {"pad_right", "padding", req->padding_given, 1, 1},
    };
    for (size_t i = 0; i < sizeof params / sizeof *params; i++)
        if (strcmp(field, params[i].field) == 0) {
            api_param_path(buf, cap, params[i].param, params[i].given, params[i].axis,
                           params[i].side);
            return;
        }
    snprintf(buf, cap, "%s", strcmp(field, "output") == 0 ? "" : field); // groups, x, w
}

// Whether a conv_geom field is a layer parameter rather than a tensor size.
static bool is_parameter(const char *field) {
    static const char *const prefixes[] = {"stride", "dilation", "pad", "groups"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(field, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return false;
}

static bool check_geometry(const api_plan *plan, const api_request *req, api_error *err) {
    conv_error cerr = {0};
    conv_status status = conv_geom_check(&plan->geom, req->dtype, &cerr);
    if (status == CONV_OK) return true;
    const char *field = cerr.field ? cerr.field : "";
    char path[96];
    geom_field_path(path, sizeof path, field, req, plan);
    api_code code = API_E_INVALID_VALUE;
    if (strcmp(field, "output") == 0 && status == CONV_EINVAL) {
        // The kernel does not fit: point at its size along the axis that fails.
        int wr = plan->rank == 2 ? 2 : 4;
        snprintf(path, sizeof path, "w.shape[%d]", conv_out_h(&plan->geom) < 1 ? wr - 2 : wr - 1);
        code = API_E_KERNEL_TOO_LARGE;
    } else if (status == CONV_EOVERFLOW && !is_parameter(field)) {
        code = API_E_TOO_MANY_ELEMENTS; // a tensor too large, not a parameter out of range
    }
    return api_fail(err, code, path, "%s", cerr.message);
}

// What core cannot see: the shapes of w, b and dy against x and the geometry.
static bool check_relations(const api_plan *plan, const api_request *req, api_error *err) {
    const conv_geom *g = &plan->geom;
    const api_tensor *w = &req->in[API_IN_W], *b = &req->in[API_IN_B], *dy = &req->in[API_IN_DY];
    char dims[160], want[160];
    if (w->rank == 4 && w->shape[1] * g->groups != g->c)
        return api_fail(err, API_E_SHAPE_MISMATCH, "w.shape[1]",
                        "w has %" PRId64 " input channels per group but x has %" PRId64
                        " channels and groups=%" PRId64 "; w.shape[1] must be %" PRId64,
                        w->shape[1], g->c, g->groups, g->c / g->groups);
    if (b->rank && b->rank != 1)
        return api_fail(err, API_E_SHAPE_MISMATCH, "b.shape",
                        "b has shape %s; it must be 1-D [F], one value per filter",
                        api_shape_str(dims, sizeof dims, b->shape, b->rank));
    if (b->rank && b->shape[0] != g->f)
        return api_fail(err, API_E_SHAPE_MISMATCH, "b.shape[0]",
                        "b has %" PRId64 " value%s but the layer has F=%" PRId64
                        " output channels (filters); b needs one value per filter",
                        b->shape[0], b->shape[0] == 1 ? "" : "s", g->f);
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
            char path[32];
            snprintf(path, sizeof path, "dy.shape[%d]", i);
            return api_fail(err, API_E_SHAPE_MISMATCH, path,
                            "dy has shape %s but y has shape %s (with stride [%" PRId64 ", %" PRId64
                            "] and padding [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                            "]); dy must have exactly y's shape",
                            dims, want, g->stride_h, g->stride_w, g->pad_top, g->pad_bottom,
                            g->pad_left, g->pad_right);
        }
    return true;
}

static bool check_work(api_plan *plan, const api_request *req, const api_options *opt,
                       api_error *err) {
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
    plan->flops = api_outputs_flops(&plan->geom, plan->outputs);
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
           check_relations(plan, req, err) && check_work(plan, req, opt, err) &&
           pick_algorithm(plan, req, opt, err);
}
