#include "tests/harness/ref_transpose.h"

#include <string.h>

int64_t ref_t_out_h(const ref_tgeom *t) {
    return (t->h - 1) * t->stride[0] - t->padding[0] - t->padding[1] +
           t->dilation[0] * (t->kh - 1) + t->output_padding[0] + 1;
}

int64_t ref_t_out_w(const ref_tgeom *t) {
    return (t->w - 1) * t->stride[1] - t->padding[2] - t->padding[3] +
           t->dilation[1] * (t->kw - 1) + t->output_padding[1] + 1;
}

int64_t ref_t_numel_x(const ref_tgeom *t) { return t->n * t->c * t->h * t->w; }
int64_t ref_t_numel_w(const ref_tgeom *t) { return t->c * (t->f / t->groups) * t->kh * t->kw; }
int64_t ref_t_numel_y(const ref_tgeom *t) { return t->n * t->f * ref_t_out_h(t) * ref_t_out_w(t); }

typedef enum { TO_Y, TO_X, TO_W } ref_t_target;

// Every term x[xi] * w[wi] -> y[yi] of the scatter formula, once; adds the product of the two
// tensors other than `target` into `out` (laid out like `target`). One map read three ways.
static void walk(double *out, ref_t_target target, const double *y, const double *x,
                 const double *w, const ref_tgeom *t) {
    const int64_t ho = ref_t_out_h(t), wo = ref_t_out_w(t);
    const int64_t c_per_group = t->c / t->groups, f_per_group = t->f / t->groups;
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t ci = 0; ci < t->c; ci++)
            for (int64_t r = 0; r < t->h; r++)
                for (int64_t s = 0; s < t->w; s++) {
                    const int64_t xi = ((n * t->c + ci) * t->h + r) * t->w + s;
                    for (int64_t fo = 0; fo < f_per_group; fo++) {
                        const int64_t f = (ci / c_per_group) * f_per_group + fo;
                        for (int64_t a = 0; a < t->kh; a++) {
                            const int64_t i = r * t->stride[0] + a * t->dilation[0] - t->padding[0];
                            if (i < 0 || i >= ho) continue;
                            for (int64_t b = 0; b < t->kw; b++) {
                                const int64_t j =
                                    s * t->stride[1] + b * t->dilation[1] - t->padding[2];
                                if (j < 0 || j >= wo) continue;
                                const int64_t yi = ((n * t->f + f) * ho + i) * wo + j;
                                const int64_t wi = ((ci * f_per_group + fo) * t->kh + a) * t->kw + b;
                                switch (target) {
                                case TO_Y: out[yi] += x[xi] * w[wi]; break;
                                case TO_X: out[xi] += y[yi] * w[wi]; break;
                                case TO_W: out[wi] += y[yi] * x[xi]; break;
                                }
                            }
                        }
                    }
                }
}

void ref_t_forward(double *y, const double *x, const double *w, const double *b,
                   const ref_tgeom *t) {
    const int64_t pixels = ref_t_out_h(t) * ref_t_out_w(t);
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t f = 0; f < t->f; f++)
            for (int64_t p = 0; p < pixels; p++) y[(n * t->f + f) * pixels + p] = b ? b[f] : 0.0;
    walk(y, TO_Y, NULL, x, w, t);
}

void ref_t_backward_data(double *dx, const double *dy, const double *w, const ref_tgeom *t) {
    memset(dx, 0, (size_t)ref_t_numel_x(t) * sizeof *dx);
    walk(dx, TO_X, dy, NULL, w, t);
}

void ref_t_backward_weights(double *dw, const double *dy, const double *x, const ref_tgeom *t) {
    memset(dw, 0, (size_t)ref_t_numel_w(t) * sizeof *dw);
    walk(dw, TO_W, dy, x, NULL, t);
}

void ref_t_backward_bias(double *db, const double *dy, const ref_tgeom *t) {
    const int64_t pixels = ref_t_out_h(t) * ref_t_out_w(t);
    for (int64_t f = 0; f < t->f; f++) {
        db[f] = 0.0;
        for (int64_t n = 0; n < t->n; n++)
            for (int64_t p = 0; p < pixels; p++) db[f] += dy[(n * t->f + f) * pixels + p];
    }
}
