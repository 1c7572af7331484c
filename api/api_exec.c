#include "api/api_exec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/conv_transpose.h"

typedef conv_status (*pass_fn)(void *out, const api_request *req, const api_plan *plan,
                               conv_dtype dt, const conv_exec *ex, conv_error *err);

// x (N,C,H,W), w (F,C/G,kh,kw), b (F) or NULL -> y (N,F,Ho,Wo)
static conv_status run_forward(void *y, const api_request *req, const api_plan *plan, conv_dtype dt,
                               const conv_exec *ex, conv_error *err) {
    return conv2d_forward(y, req->in[API_IN_X].data, req->in[API_IN_W].data, req->in[API_IN_B].data,
                          &plan->geom, dt, ex, err);
}

// dy (N,F,Ho,Wo), w (F,C/G,kh,kw) -> dx (N,C,H,W)
static conv_status run_backward_data(void *dx, const api_request *req, const api_plan *plan,
                                     conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv2d_backward_data(dx, req->in[API_IN_DY].data, req->in[API_IN_W].data, &plan->geom,
                                dt, ex, err);
}

// dy (N,F,Ho,Wo), x (N,C,H,W) -> dw (F,C/G,kh,kw)
static conv_status run_backward_weights(void *dw, const api_request *req, const api_plan *plan,
                                        conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv2d_backward_weights(dw, req->in[API_IN_DY].data, req->in[API_IN_X].data,
                                   &plan->geom, dt, ex, err);
}

// dy (N,F,Ho,Wo) -> db (F)
static conv_status run_backward_bias(void *db, const api_request *req, const api_plan *plan,
                                     conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv2d_backward_bias(db, req->in[API_IN_DY].data, &plan->geom, dt, ex, err);
}

// How each output is computed; an op is a set of these (api_ops in api_model.c). conv1d runs
// these too, as conv2d with H = 1.
static const pass_fn passes[API_OUT_COUNT] = {
    [API_OUT_Y] = run_forward,
    [API_OUT_DX] = run_backward_data,
    [API_OUT_DW] = run_backward_weights,
    [API_OUT_DB] = run_backward_bias,
};

// Transposed ops, on their adjoint layer g (core/conv_transpose.h):
// x (N,Ci,Hi,Wi), w (Ci,Co/G,kh,kw), b (Co) or NULL -> y (N,Co,Ho,Wo)
static conv_status run_t_forward(void *y, const api_request *req, const api_plan *plan,
                                 conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv_transpose2d_forward(y, req->in[API_IN_X].data, req->in[API_IN_W].data,
                                    req->in[API_IN_B].data, &plan->geom, dt, ex, err);
}

// dy (N,Co,Ho,Wo), w (Ci,Co/G,kh,kw) -> dx (N,Ci,Hi,Wi)
static conv_status run_t_backward_data(void *dx, const api_request *req, const api_plan *plan,
                                       conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv_transpose2d_backward_data(dx, req->in[API_IN_DY].data, req->in[API_IN_W].data,
                                          &plan->geom, dt, ex, err);
}

// dy (N,Co,Ho,Wo), x (N,Ci,Hi,Wi) -> dw (Ci,Co/G,kh,kw)
static conv_status run_t_backward_weights(void *dw, const api_request *req, const api_plan *plan,
                                          conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv_transpose2d_backward_weights(dw, req->in[API_IN_DY].data, req->in[API_IN_X].data,
                                             &plan->geom, dt, ex, err);
}

// dy (N,Co,Ho,Wo) -> db (Co)
static conv_status run_t_backward_bias(void *db, const api_request *req, const api_plan *plan,
                                       conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv_transpose2d_backward_bias(db, req->in[API_IN_DY].data, &plan->geom, dt, ex, err);
}

// conv3d, on the plan's 3-d layer (core/conv3d.h):
// x (N,C,D,H,W), w (F,C/G,kd,kh,kw), b (F) or NULL -> y (N,F,Do,Ho,Wo)
static conv_status run_3d_forward(void *y, const api_request *req, const api_plan *plan,
                                  conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv3d_forward(y, req->in[API_IN_X].data, req->in[API_IN_W].data,
                          req->in[API_IN_B].data, &plan->geom3, dt, ex, err);
}

// dy (N,F,Do,Ho,Wo), w (F,C/G,kd,kh,kw) -> dx (N,C,D,H,W)
static conv_status run_3d_backward_data(void *dx, const api_request *req, const api_plan *plan,
                                        conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv3d_backward_data(dx, req->in[API_IN_DY].data, req->in[API_IN_W].data,
                                &plan->geom3, dt, ex, err);
}

// dy (N,F,Do,Ho,Wo), x (N,C,D,H,W) -> dw (F,C/G,kd,kh,kw)
static conv_status run_3d_backward_weights(void *dw, const api_request *req,
                                           const api_plan *plan, conv_dtype dt,
                                           const conv_exec *ex, conv_error *err) {
    return conv3d_backward_weights(dw, req->in[API_IN_DY].data, req->in[API_IN_X].data,
                                   &plan->geom3, dt, ex, err);
}

// dy (N,F,Do,Ho,Wo) -> db (F)
static conv_status run_3d_backward_bias(void *db, const api_request *req, const api_plan *plan,
                                        conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv3d_backward_bias(db, req->in[API_IN_DY].data, &plan->geom3, dt, ex, err);
}

static const pass_fn passes_3d[API_OUT_COUNT] = {
    [API_OUT_Y] = run_3d_forward,
    [API_OUT_DX] = run_3d_backward_data,
    [API_OUT_DW] = run_3d_backward_weights,
    [API_OUT_DB] = run_3d_backward_bias,
};

// conv_transpose3d, on its adjoint conv3d layer (the plan's geom3):
// x (N,Ci,Di,Hi,Wi), w (Ci,Co/G,kd,kh,kw), b (Co) or NULL -> y (N,Co,Do,Ho,Wo)
static conv_status run_t3d_forward(void *y, const api_request *req, const api_plan *plan,
                                   conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv_transpose3d_forward(y, req->in[API_IN_X].data, req->in[API_IN_W].data,
                                    req->in[API_IN_B].data, &plan->geom3, dt, ex, err);
}

// dy (N,Co,Do,Ho,Wo), w -> dx (N,Ci,Di,Hi,Wi)
static conv_status run_t3d_backward_data(void *dx, const api_request *req, const api_plan *plan,
                                         conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv_transpose3d_backward_data(dx, req->in[API_IN_DY].data, req->in[API_IN_W].data,
                                          &plan->geom3, dt, ex, err);
}

// dy, x -> dw (Ci,Co/G,kd,kh,kw)
static conv_status run_t3d_backward_weights(void *dw, const api_request *req,
                                            const api_plan *plan, conv_dtype dt,
                                            const conv_exec *ex, conv_error *err) {
    return conv_transpose3d_backward_weights(dw, req->in[API_IN_DY].data, req->in[API_IN_X].data,
                                             &plan->geom3, dt, ex, err);
}

// dy -> db (Co)
static conv_status run_t3d_backward_bias(void *db, const api_request *req, const api_plan *plan,
                                         conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv_transpose3d_backward_bias(db, req->in[API_IN_DY].data, &plan->geom3, dt, ex, err);
}

static const pass_fn transposed_3d_passes[API_OUT_COUNT] = {
    [API_OUT_Y] = run_t3d_forward,
    [API_OUT_DX] = run_t3d_backward_data,
    [API_OUT_DW] = run_t3d_backward_weights,
    [API_OUT_DB] = run_t3d_backward_bias,
};

static const pass_fn transposed_passes[API_OUT_COUNT] = {
    [API_OUT_Y] = run_t_forward,
    [API_OUT_DX] = run_t_backward_data,
    [API_OUT_DW] = run_t_backward_weights,
    [API_OUT_DB] = run_t_backward_bias,
};

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

// When the passes run on a padded copy of x (api_plan_input_layout: a padding_mode, or a
// transposed op's extended input), makes it and, when dx is asked for, *dxp with room for dx in
// the padded shape, which api_execute folds back (both the caller's to free). Fills *run_req
// and *run_plan with what the passes see: req and plan themselves unless x is padded.
static bool pad_input(api_request *run_req, api_plan *run_plan, void **xp, void **dxp,
                      const api_request *req, const api_plan *plan, api_error *err) {
    *run_req = *req; // tensors borrowed, never freed through the copy
    *run_plan = *plan;
    *xp = *dxp = NULL;
    int64_t dims[3], pad[6];
    conv_pad_mode mode;
    int64_t planes = api_plan_input_layout(plan, req, dims, pad, &mode);
    if (!planes) return true;
    if (mode != CONV_PAD_ZEROS) api_plan_unpad(run_plan);
    size_t bytes = (size_t)planes * conv_dtype_size(req->dtype); // limited by check_work
    for (int a = 0; a < 3; a++) bytes *= (size_t)(dims[a] + pad[2 * a] + pad[2 * a + 1]);
    *xp = malloc(bytes);
    *dxp = plan->outputs & API_BIT(API_OUT_DX) ? malloc(bytes) : NULL;
    if (!*xp || ((plan->outputs & API_BIT(API_OUT_DX)) && !*dxp))
        return api_fail(err, API_E_OUT_OF_MEMORY, "", "out of memory for %zu bytes of padded input",
                        bytes);
    conv_pad_apply(*xp, req->in[API_IN_X].data, planes, dims, pad, mode, req->dtype);
    run_req->in[API_IN_X].data = *xp;
    return true;
}

bool api_execute(api_result *res, const api_request *req, const api_plan *plan,
                 const api_options *opt, api_error *err) {
    *res = (api_result){.threads = opt->threads > 0 ? opt->threads : 1};
    size_t elt = conv_dtype_size(req->dtype);
    for (int o = 0; o < API_OUT_COUNT; o++) {
        if (!(plan->outputs & API_BIT(o))) continue;
        api_tensor *t = &res->out[o];
        int64_t shape[API_MAX_RANK];
        int rank = api_output_shape(shape, req, plan, (api_output)o);
        if (!api_tensor_set_shape(t, shape, rank, api_output_names[o], err)) return false;
        t->data = t->owned = malloc((size_t)t->numel * elt);
        if (!t->data)
            return api_fail(err, API_E_OUT_OF_MEMORY, "", "out of memory for %s (%lld elements)",
                            api_output_names[o], (long long)t->numel);
    }
    api_request run_req;
    api_plan run_plan;
    void *xp, *dxp;
    bool ok = pad_input(&run_req, &run_plan, &xp, &dxp, req, plan, err);
    size_t bytes = run_plan.op->spatial == 3
                       ? conv3d_workspace_size(&run_plan.geom3, req->dtype, res->threads,
                                               opt->workspace_cap)
                       : conv_workspace_size(&run_plan.geom, req->dtype, res->threads,
                                             opt->workspace_cap);
    bytes = (bytes + 63) & ~(size_t)63;
    void *workspace = ok && bytes ? aligned_alloc(64, bytes) : NULL;
    if (ok && bytes && !workspace)
        ok = api_fail(err, API_E_OUT_OF_MEMORY, "", "out of memory for %zu bytes of scratch", bytes);
    res->workspace_bytes = bytes;
    conv_exec ex = {.workspace = workspace, .workspace_bytes = bytes, .threads = res->threads,
                    .algorithm = plan->algorithm};
    double start = now_ms();
    const bool deep = plan->op->spatial == 3;
    const pass_fn *run = plan->op->transposed ? (deep ? transposed_3d_passes : transposed_passes)
                         : deep               ? passes_3d
                                              : passes;
    for (int o = 0; o < API_OUT_COUNT && ok; o++) {
        if (!(plan->outputs & API_BIT(o))) continue;
        conv_error cerr = {0};
        void *out = o == API_OUT_DX && dxp ? dxp : res->out[o].data;
        if (run[o](out, &run_req, &run_plan, req->dtype, &ex, &cerr) != CONV_OK)
            ok = api_fail(err, API_E_INTERNAL, "", "computing %s failed: %s", api_output_names[o],
                          cerr.message);
    }
    if (ok && dxp) { // dx through the padding: each copied cell's gradient added back
        int64_t dims[3], pad[6];
        conv_pad_mode mode;
        int64_t planes = api_plan_input_layout(plan, req, dims, pad, &mode);
        conv_pad_fold(res->out[API_OUT_DX].data, dxp, planes, dims, pad, mode, req->dtype);
    }
    res->elapsed_ms = now_ms() - start;
    free(workspace);
    free(xp);
    free(dxp);
    return ok;
}

size_t api_working_set(const api_request *req, const api_plan *plan, const api_options *opt,
                       size_t answer_number_bytes) {
    size_t elt = conv_dtype_size(req->dtype), bytes = 0;
    for (int o = 0; o < API_OUT_COUNT; o++) {
        if (!(plan->outputs & API_BIT(o))) continue;
        int64_t shape[API_MAX_RANK], numel = 1;
        int rank = api_output_shape(shape, req, plan, (api_output)o);
        for (int i = 0; i < rank; i++) numel *= shape[i];
        bytes += (size_t)numel * (elt + answer_number_bytes);
    }
    int threads = opt->threads > 0 ? opt->threads : 1;
    return bytes + conv_workspace_size(&plan->geom, req->dtype, threads, opt->workspace_cap);
}

bool api_admit(const api_options *opt, size_t bytes, int64_t flops, const char *what,
               api_error *err) {
    api_admission a = opt->admit ? opt->admit(opt->admit_ctx, bytes, flops) : API_ADMIT_OK;
    if (a == API_ADMIT_MOVE)
        return api_fail(err, API_E_OVERLOADED, "", "this request moves to another queue");
    if (a == API_ADMIT_NEVER)
        return api_fail(err, API_E_BODY_TOO_LARGE, "",
                        "this request needs about %zu MiB of working memory for %s, more than "
                        "the server's whole memory budget (--max-memory); ask for less at once",
                        (bytes >> 20) + 1, what);
    if (a == API_ADMIT_LATER)
        return api_fail(err, API_E_OVERLOADED, "",
                        "the server's memory budget cannot take the %zu MiB this request needs "
                        "for %s now; retry after the Retry-After delay",
                        (bytes >> 20) + 1, what);
    return true;
}

void api_result_free(api_result *res) {
    for (int o = 0; o < API_OUT_COUNT; o++) api_tensor_free(&res->out[o]);
}
