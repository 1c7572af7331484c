#include "tests/harness/ref_conv3d.h"

#include <string.h>

int64_t ref3_out(const conv3d_geom *g, int axis) {
    const int64_t in[3] = {g->d, g->h, g->w}, k[3] = {g->kd, g->kh, g->kw};
    const int64_t last = g->dilation[axis] * (k[axis] - 1);
    const int64_t padded = in[axis] + g->padding[2 * axis] + g->padding[2 * axis + 1];
    int64_t count = 0;
    while (count * g->stride[axis] + last <= padded - 1) count++;
    return count;
}

int64_t ref3_numel_x(const conv3d_geom *g) { return g->n * g->c * g->d * g->h * g->w; }
int64_t ref3_numel_w(const conv3d_geom *g) {
    return g->f * (g->c / g->groups) * g->kd * g->kh * g->kw;
}
int64_t ref3_numel_y(const conv3d_geom *g) {
    return g->n * g->f * ref3_out(g, 0) * ref3_out(g, 1) * ref3_out(g, 2);
}

typedef enum { TO_Y, TO_X, TO_W } ref3_target;

// Every term x * w -> y of the formula once, read three ways (as conv_ref.c does in 2-D).
static void walk(double *out, ref3_target target, const double *y, const double *x,
                 const double *w, const conv3d_geom *g) {
    const int64_t od = ref3_out(g, 0), oh = ref3_out(g, 1), ow = ref3_out(g, 2);
    const int64_t cg = g->c / g->groups, fg = g->f / g->groups;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t f = 0; f < g->f; f++)
            for (int64_t p = 0; p < od; p++)
                for (int64_t r = 0; r < oh; r++)
                    for (int64_t c = 0; c < ow; c++) {
                        const int64_t yi = (((n * g->f + f) * od + p) * oh + r) * ow + c;
                        for (int64_t ch = 0; ch < cg; ch++)
                            for (int64_t a = 0; a < g->kd; a++) {
                                const int64_t id = p * g->stride[0] + a * g->dilation[0] - g->padding[0];
                                if (id < 0 || id >= g->d) continue;
                                for (int64_t e = 0; e < g->kh; e++) {
                                    const int64_t ih = r * g->stride[1] + e * g->dilation[1] - g->padding[2];
                                    if (ih < 0 || ih >= g->h) continue;
                                    for (int64_t o = 0; o < g->kw; o++) {
                                        const int64_t iw = c * g->stride[2] + o * g->dilation[2] - g->padding[4];
                                        if (iw < 0 || iw >= g->w) continue;
                                        const int64_t in_ch = (f / fg) * cg + ch;
                                        const int64_t xi = (((n * g->c + in_ch) * g->d + id) * g->h + ih) * g->w + iw;
                                        const int64_t wi = (((f * cg + ch) * g->kd + a) * g->kh + e) * g->kw + o;
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

void ref3_forward(double *y, const double *x, const double *w, const double *b,
                  const conv3d_geom *g) {
    const int64_t per = ref3_numel_y(g) / (g->n * g->f);
    for (int64_t i = 0; i < g->n * g->f; i++)
        for (int64_t p = 0; p < per; p++) y[i * per + p] = b ? b[i % g->f] : 0.0;
    walk(y, TO_Y, NULL, x, w, g);
}

void ref3_backward_data(double *dx, const double *dy, const double *w, const conv3d_geom *g) {
    memset(dx, 0, (size_t)ref3_numel_x(g) * sizeof *dx);
    walk(dx, TO_X, dy, NULL, w, g);
}

void ref3_backward_weights(double *dw, const double *dy, const double *x, const conv3d_geom *g) {
    memset(dw, 0, (size_t)ref3_numel_w(g) * sizeof *dw);
    walk(dw, TO_W, dy, x, NULL, g);
}

void ref3_backward_bias(double *db, const double *dy, const conv3d_geom *g) {
    const int64_t per = ref3_numel_y(g) / (g->n * g->f);
    for (int64_t f = 0; f < g->f; f++) {
        db[f] = 0.0;
        for (int64_t n = 0; n < g->n; n++)
            for (int64_t p = 0; p < per; p++) db[f] += dy[(n * g->f + f) * per + p];
    }
}
