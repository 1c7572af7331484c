#include "core/conv_transpose.h"

#include <string.h>

int64_t conv_transpose_out_size(int64_t in, int64_t k, int64_t stride, int64_t dilation,
                                int64_t pad_lo, int64_t pad_hi, int64_t output_padding) {
    return (in - 1) * stride - pad_lo - pad_hi + dilation * (k - 1) + output_padding + 1;
}

void conv_transpose_geom(conv_geom *g, int64_t n, int64_t ci, int64_t hi, int64_t wi, int64_t co,
                         int64_t kh, int64_t kw, int64_t groups, const int64_t stride[2],
                         const int64_t dilation[2], const int64_t padding[4],
                         const int64_t output_padding[2]) {
    *g = (conv_geom){
        .n = n, .c = co, .f = ci, .kh = kh, .kw = kw, .groups = groups,
        .stride_h = stride[0], .stride_w = stride[1],
        .dilation_h = dilation[0], .dilation_w = dilation[1],
        .pad_top = padding[0], .pad_bottom = padding[1],
        .pad_left = padding[2], .pad_right = padding[3],
    };
    g->h = conv_transpose_out_size(hi, kh, stride[0], dilation[0], padding[0], padding[1],
                                   output_padding[0]);
    g->w = conv_transpose_out_size(wi, kw, stride[1], dilation[1], padding[2], padding[3],
                                   output_padding[1]);
}

// y (N, C, plane) += b[c] on every element of channel c.
#define ADD_BIAS(T)                                                                               \
    static void add_bias_##T(T *y, const T *b, int64_t images, int64_t channels, int64_t plane) { \
        for (int64_t n = 0; n < images; n++)                                                      \
            for (int64_t c = 0; c < channels; c++) {                                              \
                T *p = y + (n * channels + c) * plane;                                            \
                for (int64_t i = 0; i < plane; i++) p[i] += b[c];                                 \
            }                                                                                     \
    }
ADD_BIAS(float)
ADD_BIAS(double)
#undef ADD_BIAS

static void add_bias(void *y, const void *b, int64_t images, int64_t channels, int64_t plane,
                     conv_dtype dt) {
    if (dt == CONV_FLOAT64)
        add_bias_double(y, b, images, channels, plane);
    else
        add_bias_float(y, b, images, channels, plane);
}

conv_status conv_transpose2d_forward(void *y, const void *x, const void *w, const void *b,
                                     const conv_geom *g, conv_dtype dt, const conv_exec *ex,
                                     conv_error *err) {
    conv_status st = conv2d_backward_data(y, x, w, g, dt, ex, err);
    if (st == CONV_OK && b) add_bias(y, b, g->n, g->c, g->h * g->w, dt);
    return st;
}

conv_status conv_transpose2d_backward_data(void *dx, const void *dy, const void *w,
                                           const conv_geom *g, conv_dtype dt,
                                           const conv_exec *ex, conv_error *err) {
    return conv2d_forward(dx, dy, w, NULL, g, dt, ex, err);
}

conv_status conv_transpose2d_backward_weights(void *dw, const void *dy, const void *x,
                                              const conv_geom *g, conv_dtype dt,
                                              const conv_exec *ex, conv_error *err) {
    // The adjoint layer's "dy" is the transposed input and its "x" the transposed gradient.
    return conv2d_backward_weights(dw, x, dy, g, dt, ex, err);
}

conv_status conv_transpose2d_backward_bias(void *db, const void *dy, const conv_geom *g,
                                           conv_dtype dt, const conv_exec *ex, conv_error *err) {
    // A 1x1 layer over the transposed output: its output is dyt itself, so conv2d's bias
    // gradient sums exactly dyt over the batch and the pixels.
    conv_geom one = {.n = g->n, .c = g->c, .h = g->h, .w = g->w, .f = g->c, .kh = 1, .kw = 1,
                     .groups = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1,
                     .dilation_w = 1};
    return conv2d_backward_bias(db, dy, &one, dt, ex, err);
}

void conv_transpose3d_geom(conv3d_geom *g, int64_t n, int64_t ci, const int64_t in[3], int64_t co,
                           const int64_t k[3], int64_t groups, const int64_t stride[3],
                           const int64_t dilation[3], const int64_t padding[6],
                           const int64_t output_padding[3]) {
    *g = (conv3d_geom){.n = n, .c = co, .f = ci, .kd = k[0], .kh = k[1], .kw = k[2],
                       .groups = groups};
    memcpy(g->stride, (const int64_t *)stride, sizeof g->stride);
    memcpy(g->dilation, (const int64_t *)dilation, sizeof g->dilation);
    memcpy(g->padding, (const int64_t *)padding, sizeof g->padding);
    int64_t *out[3] = {&g->d, &g->h, &g->w};
    for (int a = 0; a < 3; a++)
        *out[a] = conv_transpose_out_size(in[a], k[a], stride[a], dilation[a], padding[2 * a],
                                          padding[2 * a + 1], output_padding[a]);
}

conv_status conv_transpose3d_forward(void *y, const void *x, const void *w, const void *b,
                                     const conv3d_geom *g, conv_dtype dt, const conv_exec *ex,
                                     conv_error *err) {
    conv_status st = conv3d_backward_data(y, x, w, g, dt, ex, err);
    if (st == CONV_OK && b) add_bias(y, b, g->n, g->c, g->d * g->h * g->w, dt);
    return st;
}

conv_status conv_transpose3d_backward_data(void *dx, const void *dy, const void *w,
                                           const conv3d_geom *g, conv_dtype dt,
                                           const conv_exec *ex, conv_error *err) {
    return conv3d_forward(dx, dy, w, NULL, g, dt, ex, err);
}

conv_status conv_transpose3d_backward_weights(void *dw, const void *dy, const void *x,
                                              const conv3d_geom *g, conv_dtype dt,
                                              const conv_exec *ex, conv_error *err) {
    return conv3d_backward_weights(dw, x, dy, g, dt, ex, err);
}

conv_status conv_transpose3d_backward_bias(void *db, const void *dy, const conv3d_geom *g,
                                           conv_dtype dt, const conv_exec *ex, conv_error *err) {
    // As in 2-D: a 1x1 layer whose output is dyt, (N, Co, D, H*W) read as images of D x H*W.
    conv_geom one = {.n = g->n, .c = g->c, .h = g->d, .w = g->h * g->w, .f = g->c, .kh = 1,
                     .kw = 1, .groups = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1,
                     .dilation_w = 1};
    return conv2d_backward_bias(db, dy, &one, dt, ex, err);
}
