#include "api/api_model.h"

#include <inttypes.h>
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
const api_op api_ops[] = {
    {"conv2d.forward", X | W, B, API_BIT(API_OUT_Y), false},
    {"conv2d.backward", X | W | DY, B,
     API_BIT(API_OUT_DX) | API_BIT(API_OUT_DW) | API_BIT(API_OUT_DB), true},
};
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

void api_request_init(api_request *req) {
    *req = (api_request){
        .dtype = CONV_FLOAT32,
        .stride = {1, 1},
        .dilation = {1, 1},
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
    else if (given == 2)
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
