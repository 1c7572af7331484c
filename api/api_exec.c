#include "api/api_exec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef conv_status (*pass_fn)(void *out, const api_request *req, const conv_geom *g, conv_dtype dt,
                               const conv_exec *ex, conv_error *err);

// x (N,C,H,W), w (F,C/G,kh,kw), b (F) or NULL -> y (N,F,Ho,Wo)
static conv_status run_forward(void *y, const api_request *req, const conv_geom *g, conv_dtype dt,
                               const conv_exec *ex, conv_error *err) {
    return conv2d_forward(y, req->in[API_IN_X].data, req->in[API_IN_W].data, req->in[API_IN_B].data,
                          g, dt, ex, err);
}

// dy (N,F,Ho,Wo), w (F,C/G,kh,kw) -> dx (N,C,H,W)
static conv_status run_backward_data(void *dx, const api_request *req, const conv_geom *g,
                                     conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv2d_backward_data(dx, req->in[API_IN_DY].data, req->in[API_IN_W].data, g, dt, ex,
                                err);
}

// dy (N,F,Ho,Wo), x (N,C,H,W) -> dw (F,C/G,kh,kw)
static conv_status run_backward_weights(void *dw, const api_request *req, const conv_geom *g,
                                        conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv2d_backward_weights(dw, req->in[API_IN_DY].data, req->in[API_IN_X].data, g, dt, ex,
                                   err);
}

// dy (N,F,Ho,Wo) -> db (F)
static conv_status run_backward_bias(void *db, const api_request *req, const conv_geom *g,
                                     conv_dtype dt, const conv_exec *ex, conv_error *err) {
    return conv2d_backward_bias(db, req->in[API_IN_DY].data, g, dt, ex, err);
}

// How each output is computed; an op is a set of these (api_ops in api_model.c).
static const pass_fn passes[API_OUT_COUNT] = {
    [API_OUT_Y] = run_forward,
    [API_OUT_DX] = run_backward_data,
    [API_OUT_DW] = run_backward_weights,
    [API_OUT_DB] = run_backward_bias,
};

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
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
    size_t bytes = conv_workspace_size(&plan->geom, req->dtype, res->threads, opt->workspace_cap);
    bytes = (bytes + 63) & ~(size_t)63;
    void *workspace = bytes ? aligned_alloc(64, bytes) : NULL;
    if (bytes && !workspace)
        return api_fail(err, API_E_OUT_OF_MEMORY, "", "out of memory for %zu bytes of scratch", bytes);
    res->workspace_bytes = bytes;
    conv_exec ex = {.workspace = workspace, .workspace_bytes = bytes, .threads = res->threads,
                    .algorithm = plan->algorithm};
    double start = now_ms();
    bool ok = true;
    for (int o = 0; o < API_OUT_COUNT && ok; o++) {
        if (!(plan->outputs & API_BIT(o))) continue;
        conv_error cerr = {0};
        if (passes[o](res->out[o].data, req, &plan->geom, req->dtype, &ex, &cerr) != CONV_OK)
            ok = api_fail(err, API_E_INTERNAL, "", "computing %s failed: %s", api_output_names[o],
                          cerr.message);
    }
    res->elapsed_ms = now_ms() - start;
    free(workspace);
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
