// grade_problem: what a student is graded on. A problem is one layer of the convolution family
// (conv1d, conv2d, conv3d, conv_transpose1d/2d/3d; geometry, padding mode, dtype, bias or not)
// with its inputs x, w, b, dy, either generated from a seed or given explicitly, and the
// reference answers y, dx, dw, db computed by core/ (conv.h, conv3d.h, conv_transpose.h,
// conv_pad.h) in float64.
//
// Generated inputs are bit-identical on every platform and build: each tensor is read from its
// own splitmix64 stream and every value is k/64 with k an integer in [-64, 63], so no libm and
// no float rounding is involved, and every value is exact in float32 and float64 alike. With
// such inputs every sum of products in a layer the size of a grading problem is exact too, so
// the reference does not depend on summation order (docs/GRADING.md has the Python twin).
#ifndef GRADE_PROBLEM_H
#define GRADE_PROBLEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conv.h"
#include "core/conv3d.h"
#include "core/conv_pad.h"

// The four tensors a submission may hold, in this order everywhere.
typedef enum { GRADE_Y, GRADE_DX, GRADE_DW, GRADE_DB, GRADE_NTENSORS } grade_tensor;

const char *grade_tensor_name(grade_tensor t); // "y", "dx", "dw", "db"
// The tensor called `name`; false when it is none of the four.
bool grade_tensor_parse(grade_tensor *t, const char *name);

#define GRADE_MAX_RANK 8
// A shape as stated (a submission's shape may have any rank up to GRADE_MAX_RANK).
typedef struct {
    int rank;
    int64_t dim[GRADE_MAX_RANK];
} grade_shape;

// The element count: 0 when any size is 0, otherwise the product, which must fit int64
// (shapes of values that exist always do).
int64_t grade_shape_numel(const grade_shape *s);
bool grade_shape_equal(const grade_shape *a, const grade_shape *b);
// Equal once every axis of size 1 is dropped: (4, 1) and (4,) hold the same values.
bool grade_shape_equal_squeezed(const grade_shape *a, const grade_shape *b);

// The depth axis of a 3-d layer (conv3d_geom's d fields): input size, kernel size, stride,
// dilation and padding in front and at the back.
typedef struct {
    int64_t d, kd, stride, dilation, pad_front, pad_back;
} grade_depth;

// One layer. `g` is the conv layer over rows and columns, the way api_plan holds it: conv1d is
// H = kh = 1 with nothing on that axis, conv3d adds `depth`, and a transposed op is its adjoint
// conv layer (core/conv_transpose.h: x is g's output, y g's input, w g's weight as it is).
// `spatial` is the family's spatial axes (1, 2 or 3); `depth` is read only when it is 3
// (grade_layer_depth). `pad_mode` fills conv's padding (transposed ops: zeros only);
// `output_padding` (d, h, w) is a transposed op's, each smaller than its stride (g already
// counts it). `rank` is the rank of x as the problem states it (conv2d: 4 NCHW, 3 one image
// CHW with N = 1, 2 one image and channel HW with N = C = F = 1 and w stated as (kh, kw);
// conv1d 3 or 2, conv3d 5 or 4, without the batch axis when one less): expected shapes follow
// it, as in the v1 contract.
typedef struct {
    conv_geom g;
    grade_depth depth;
    int spatial;
    bool transposed;
    conv_pad_mode pad_mode;
    int64_t output_padding[3];
    conv_dtype dtype;
    bool bias;
    int rank;
} grade_layer;

// The layer's depth axis: `depth` for a 3-d layer, one plane ({1, 1, 1, 1, 0, 0}) otherwise.
grade_depth grade_layer_depth(const grade_layer *L);
// The family's name: "conv1d", "conv2d", ..., "conv_transpose3d".
const char *grade_layer_family(const grade_layer *L);
// Sets the family of L from its name (spatial, transposed); false for other names.
bool grade_family_parse(grade_layer *L, const char *family);
// The layer's multiply-adds of one pass, as FLOPs (saturating).
int64_t grade_layer_flops(const grade_layer *L);

// Scratch for core's passes of layer L with `threads` threads, capped at `cap` as
// conv_workspace_size caps it (a 3-d layer's stacked tensors are not capped).
size_t grade_layer_workspace(const grade_layer *L, int threads, size_t cap);

// What tensor t is to the conv layer L->g (for a transposed op, its adjoint): conv's y and dx
// trade places in a transposed layer (its y is shaped like g's input, its dx like g's
// output); dw and db stay themselves.
grade_tensor grade_conv_role(const grade_layer *L, grade_tensor t);

// The shape tensor t must have for layer L, in L's rank.
void grade_expected_shape(grade_shape *s, const grade_layer *L, grade_tensor t);
// Names of the axes of tensor t in L's rank ("n","f","h","w" for y; "n","c","h","w" for dx;
// "f","c","kh","kw" for dw; "f" for db; 1-d "l"/"k" for the length, 3-d "d"/"kd" first; a
// transposed layer's w is "c","f",...); *rank gets their count.
const char *const *grade_axis_names(const grade_layer *L, grade_tensor t, int *rank);

// The generator's streams, one per input tensor.
typedef enum { GRADE_STREAM_X, GRADE_STREAM_W, GRADE_STREAM_B, GRADE_STREAM_DY } grade_stream;

// Fills out[0..count) with stream `stream` of `seed`: splitmix64 started at state
// seed + stream * 2^62, each output z giving the value ((z >> 57) - 64) / 64.
void grade_fill(double *out, int64_t count, uint64_t seed, grade_stream stream);

// A problem: inputs (owned, float64 holding exact copies of the dtype's values; b is NULL
// without bias) and reference answers ref[t] in their expected shapes, row-major (db always,
// since dL/db is defined whether or not the layer adds a bias).
typedef struct {
    grade_layer layer;
    double *x, *w, *b, *dy;
    double *ref[GRADE_NTENSORS];
} grade_problem;

// Generates the inputs of layer L (which the v1 validation must accept) from `seed` and
// computes the references. Returns false without memory (p is then empty: freeing is safe).
bool grade_problem_generate(grade_problem *p, const grade_layer *L, uint64_t seed);

// Takes ownership of heap arrays x, w, b (NULL without bias), dy (sized for L, float64) and
// computes the references. On failure (no memory) they are freed too, and p is empty.
bool grade_problem_adopt(grade_problem *p, const grade_layer *L, double *x, double *w,
                         double *b, double *dy);

void grade_problem_free(grade_problem *p);

// Named suites of problems built to expose the known mistakes between them (docs/GRADING.md
// has the table): "cs231n" keeps to CS231n's conventions (one stride, one padding for all
// sides, no groups or dilation, always a bias, strides that divide evenly);
// "cs231n_uneven" is the same with strides that leave rows after the last window; "full"
// adds stride_h != stride_w, per-side padding, dilation, groups and a layer without bias;
// "family" has the other ops (conv1d, conv3d, conv_transpose1d/2d/3d) and padding modes.
typedef struct {
    const char *name;
    grade_layer layer;
} grade_suite_entry;

// The entries of suite `name` (*count of them), or NULL when there is no such suite.
const grade_suite_entry *grade_suite(const char *name, size_t *count);
// The names of all suites, NULL-terminated.
extern const char *const grade_suite_names[];
// Whether the stride divides the padded size less the kernel's extent evenly on every axis
// (H + pt + pb - dilation_h*(kh - 1) - 1 by stride_h, likewise W and D): then every row and
// column of the padded input is reached and no output size depends on how the division
// rounds. A transposed layer's adjoint conv is asked the same.
bool grade_layer_divides_evenly(const grade_layer *L);

// Problem i of a suite generated with `seed` uses seed + i.
static inline uint64_t grade_suite_problem_seed(uint64_t seed, size_t i) { return seed + i; }

#endif
