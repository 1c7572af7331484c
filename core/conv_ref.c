#include "core/conv_ref.h"

#include <stddef.h>
#include <string.h>

int64_t conv_ref_out_size(int64_t in, int64_t k, int64_t stride, int64_t dilation,
                          int64_t pad_lo, int64_t pad_hi) {
    int64_t last_tap = dilation * (k - 1), padded = in + pad_lo + pad_hi, count = 0;
    while (count * stride + last_tap <= padded - 1) count++;
    return count;
}

// Which of the formula's three tensors a walk writes; the other two are its inputs.
typedef enum { REF_TO_Y, REF_TO_X, REF_TO_W } ref_target;

// Visits every term x[xi] * w[wi] -> y[yi] of the forward formula exactly once (terms that fall
// in the zero padding are skipped) and adds the product of the two tensors that are not
// `target` into `out`, laid out like `target` (whose input pointer is unused and may be NULL).
// The three passes are this one index map read three ways, so forward, dx and dw cannot
// disagree about which pixel meets which weight.
//   REF_TO_Y: y += x * w    REF_TO_X: dx += dy * w    REF_TO_W: dw += dy * x
static void ref_walk(double *out, ref_target target, const double *y, const double *x,
                     const double *w, const conv_geom *g) {
    const int64_t ho = conv_ref_out_size(g->h, g->kh, g->stride_h, g->dilation_h, g->pad_top,
                                         g->pad_bottom);
    const int64_t wo = conv_ref_out_size(g->w, g->kw, g->stride_w, g->dilation_w, g->pad_left,
                                         g->pad_right);
    const int64_t c_per_group = g->c / g->groups, f_per_group = g->f / g->groups;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t f = 0; f < g->f; f++)
            for (int64_t r = 0; r < ho; r++)
                for (int64_t c = 0; c < wo; c++) {
                    const int64_t yi = ((n * g->f + f) * ho + r) * wo + c;
                    for (int64_t ch = 0; ch < c_per_group; ch++) {
                        const int64_t in_ch = (f / f_per_group) * c_per_group + ch;
                        for (int64_t a = 0; a < g->kh; a++) {
                            const int64_t ih = r * g->stride_h + a * g->dilation_h - g->pad_top;
                            if (ih < 0 || ih >= g->h) continue;
                            for (int64_t b = 0; b < g->kw; b++) {
                                const int64_t iw =
                                    c * g->stride_w + b * g->dilation_w - g->pad_left;
                                if (iw < 0 || iw >= g->w) continue;
                                const int64_t xi = ((n * g->c + in_ch) * g->h + ih) * g->w + iw;
                                const int64_t wi = ((f * c_per_group + ch) * g->kh + a) * g->kw + b;
                                switch (target) {
                                case REF_TO_Y: out[yi] += x[xi] * w[wi]; break;
                                case REF_TO_X: out[xi] += y[yi] * w[wi]; break;
                                case REF_TO_W: out[wi] += y[yi] * x[xi]; break;
                                }
                            }
                        }
                    }
                }
}

static int64_t ref_pixels_out(const conv_geom *g) {
    return conv_ref_out_size(g->h, g->kh, g->stride_h, g->dilation_h, g->pad_top,
                             g->pad_bottom) *
           conv_ref_out_size(g->w, g->kw, g->stride_w, g->dilation_w, g->pad_left,
                             g->pad_right);
}

void conv_ref_forward(double *y, const double *x, const double *w, const double *b,
                      const conv_geom *g) {
    const int64_t pixels = ref_pixels_out(g);
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t f = 0; f < g->f; f++)
            for (int64_t p = 0; p < pixels; p++) y[(n * g->f + f) * pixels + p] = b ? b[f] : 0.0;
    ref_walk(y, REF_TO_Y, NULL, x, w, g);
}

void conv_ref_backward_data(double *dx, const double *dy, const double *w, const conv_geom *g) {
    memset(dx, 0, (size_t)(g->n * g->c * g->h * g->w) * sizeof *dx);
    ref_walk(dx, REF_TO_X, dy, NULL, w, g);
}

void conv_ref_backward_weights(double *dw, const double *dy, const double *x,
                               const conv_geom *g) {
    memset(dw, 0, (size_t)(g->f * (g->c / g->groups) * g->kh * g->kw) * sizeof *dw);
    ref_walk(dw, REF_TO_W, dy, x, NULL, g);
}

void conv_ref_backward_bias(double *db, const double *dy, const conv_geom *g) {
    const int64_t pixels = ref_pixels_out(g);
    for (int64_t f = 0; f < g->f; f++) {
        db[f] = 0.0;
        for (int64_t n = 0; n < g->n; n++)
            for (int64_t p = 0; p < pixels; p++) db[f] += dy[(n * g->f + f) * pixels + p];
    }
}
