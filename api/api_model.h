// api_model: the v1 request model that every front door builds from its own bytes (JSON,
// safetensors, Open Inference Protocol v2), and the table of ops. Nothing here knows a wire
// format: decoders fill an api_request, api_validate() checks it, api_execute() runs it.
#ifndef API_MODEL_H
#define API_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api_errors.h"
#include "core/conv.h"
#include "core/conv3d.h"
#include "core/conv_pad.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "binary tensors are little-endian on the wire and are used in place: a little-endian host is needed"
#endif

#define API_MAX_RANK 8 // what a tensor can hold; validation accepts ranks 2-4 for x

// A dense row-major tensor of the request's dtype.
typedef struct {
    int rank; // 0: absent
    int64_t shape[API_MAX_RANK];
    int64_t numel;
    void *data;  // numel elements (4 or 8 bytes each)
    void *owned; // what api_tensor_free() frees: data's allocation, or NULL when borrowed
} api_tensor;

// Sets rank and shape and computes numel. Fails with invalid_shape (a size < 1; `path` names
// the tensor, e.g. "x.shape", and gets "[i]" appended) or too_many_elements (the product
// overflows int64).
bool api_tensor_set_shape(api_tensor *t, const int64_t *shape, int rank, const char *path,
                          api_error *err);
void api_tensor_free(api_tensor *t);

// Points *t (its shape already set, numel elements) at `bytes`, little-endian elements of `dt`:
// in place when `bytes` is aligned for the dtype, else copied into an allocation *t owns. Fails
// with non_finite_number (path "NAME[i]", the flat index) for a NaN or an infinity, as JSON
// refuses them, or out_of_memory.
bool api_tensor_from_bytes(api_tensor *t, const char *bytes, conv_dtype dt, const char *name,
                           api_error *err);

// "[2, 3, 5, 5]" into buf.
const char *api_shape_str(char *buf, size_t cap, const int64_t *shape, int rank);

typedef enum { API_IN_X, API_IN_W, API_IN_B, API_IN_DY, API_IN_COUNT } api_input;
typedef enum { API_OUT_Y, API_OUT_DX, API_OUT_DW, API_OUT_DB, API_OUT_COUNT } api_output;
#define API_BIT(i) (1u << (i))

extern const char *const api_input_names[API_IN_COUNT];   // "x", "w", "b", "dy"
extern const char *const api_output_names[API_OUT_COUNT]; // "y", "dx", "dw", "db"
// Inputs without which an output is left out of an op's default outputs: db comes back only
// when the request has b (or names db in "outputs").
extern const unsigned api_output_default_needs[API_OUT_COUNT];

// One op. Adding an op is one row in api_ops[] (api_model.c); the passes that produce each
// output are in api_exec.c.
typedef struct {
    const char *name;  // "conv2d.forward"
    unsigned required; // API_BIT(API_IN_*): inputs the op needs
    unsigned optional; // inputs it also accepts
    unsigned outputs;  // API_BIT(API_OUT_*): what it returns by default (db only with b)
    bool selectable;   // whether the request's "outputs" may pick a subset
    int spatial;       // spatial axes: 1 (conv1d: run as conv2d with H = 1), 2 or 3
    bool transposed;   // the adjoint of conv (core/conv_transpose.h); w is (C, F/groups, k...)
} api_op;

extern const api_op api_ops[];
extern const int api_op_count;

// The op called `name`, or NULL.
const api_op *api_op_find(const char *name);
// "conv2d.forward, conv2d.backward, ..." into buf (for messages).
const char *api_op_list(char *buf, size_t cap);

typedef enum { API_PAD_EXPLICIT, API_PAD_SAME, API_PAD_VALID } api_pad_mode;

// How a parameter was written, for error paths: 0 = absent (default), 1 = one number for all,
// otherwise the list's length ("stride[1]" exists only when given == 2).
typedef struct {
    const api_op *op; // NULL when the body named none (the URL may supply it)
    conv_dtype dtype; // every tensor's data is in this dtype
    api_tensor in[API_IN_COUNT];
    int64_t stride[3]; // [sh, sw] (conv3d: [sd, sh, sw]); one number fills every entry
    int stride_given;
    int64_t dilation[3]; // [dh, dw] (conv3d: [dd, dh, dw])
    int dilation_given;
    api_pad_mode pad_mode;
    int64_t padding[6]; // [top, bottom, left, right] when explicit (conv3d: [front, back, top,
                        // bottom, left, right])
    int padding_given;
    int64_t groups;
    conv_pad_mode padding_mode; // how padding is filled: zeros (default) or copies of x
    int64_t output_padding[3]; // [h, w]; transposed ops only (3 entries like stride)
    int output_padding_given;
    unsigned outputs;         // API_BIT(API_OUT_*) named by "outputs"; 0 when absent
    conv_algorithm algorithm; // "algorithm": auto (default), direct or winograd
} api_request;

// "auto", "direct" or "winograd" into *out; false (and *out untouched) for anything else.
bool api_algorithm_parse(const char *name, conv_algorithm *out);

// "zeros", "reflect", "replicate" or "circular" into *out; false (and *out untouched) for
// anything else.
bool api_padding_mode_parse(const char *name, conv_pad_mode *out);

// Defaults: float32, stride/dilation 1, padding 0, groups 1, no tensors.
void api_request_init(api_request *req);
void api_request_free(api_request *req);

// The request's path for one of its parameters: "stride" or "stride[1]", "padding[2]", ...
// (`axis` is 0 for rows, 1 for columns, or 0-2 for depth, rows, columns when given == 3;
// `side` 0 for the low side, 1 for the high side).
const char *api_param_path(char *buf, size_t cap, const char *name, int given, int axis, int side);

// What api_validate() makes of a request: what to compute and what it costs.
typedef struct {
    const api_op *op;
    conv_geom geom;   // rank 2 and 3 requests are run as N = 1 (and C = F = 1 for rank 2);
                      // conv1d as H = kh = 1; a transposed op as its adjoint conv2d layer
                      // (core/conv_transpose.h)
    conv3d_geom geom3; // conv3d: the layer (geom is then its stacked 2-d layer, which has
                       // its FLOPs; core/conv3d.h)
    int rank;         // of x (2 to 5); every output comes back in this rank
    unsigned outputs; // API_BIT(API_OUT_*) to compute
    int64_t flops;    // all passes together
    conv_algorithm algorithm; // what runs: direct or winograd (conv_pick_algorithm)
} api_plan;

// The shape of `out` in the request's rank (y: [N,F,Ho,Wo], [F,Ho,Wo] or [Ho,Wo], [N,F,Lo] or
// [F,Lo] for conv1d; dx like x; dw like w; db [F]). Returns the rank. Needs a plan whose
// geometry passed validation.
int api_output_shape(int64_t shape[API_MAX_RANK], const api_request *req, const api_plan *plan,
                     api_output out);

// The padding the plan applies, both sides of each spatial axis in the op's order into
// sides[]: [left, right] (1-d), [top, bottom, left, right] (2-d), [front, back, top, bottom,
// left, right] (3-d); "same" resolved. Returns the count (2 per spatial axis). What every
// answer's meta reports.
int api_plan_padding(const api_plan *plan, int64_t sides[6]);

// Whether the passes run on a padded copy of x (core/conv_pad.h), and how: x as (planes, D,
// H, W), the pads per side (front, back, top, bottom, left, right) and the mode. That is
//  - a padding_mode other than zeros: the layer's padding filled from x, the passes then run
//    with none (api_plan_unpad);
//  - a transposed op whose output_padding is not smaller than its stride (PyTorch allows it
//    below the dilation): its adjoint conv computes rows beyond x's, read as zeros (x extended
//    at the high side).
// Returns the number of planes (N*C), or 0 when x is used as it is.
int64_t api_plan_input_layout(const api_plan *plan, const api_request *req, int64_t dims[3],
                              int64_t pad[6], conv_pad_mode *mode);

// The plan of the same layer run on its input padded beforehand: sizes grown by the padding,
// no padding left (how a padding_mode other than zeros is computed).
void api_plan_unpad(api_plan *plan);

// The FLOPs of computing the plan's outputs; saturates at INT64_MAX.
int64_t api_outputs_flops(const api_plan *plan);

#endif
