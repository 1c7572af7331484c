// conv_rows: one input channel per group (depthwise, or C == 1), any stride, no scratch; and
// db for every layer.
//
// With C/G == 1 the GEMMs of conv_gemm.c have K = kh*kw and are bound by im2col traffic and
// call overhead, not arithmetic. Here each kernel tap (a, b') is one vectorised pass over an
// output row instead: a row of y gains w[f,0,a,b'] times a (strided) row of x. It runs where
// the workspace cannot hold conv_depthwise.c's rings (which are much faster), without scratch.
#include <string.h>

#include "core/conv_internal.h"

// For each kernel tap (a, b') and output row r whose input row lies inside x,
// for_each_row_span calls `fn` with the span of output columns [lo, hi) that meet x through
// the tap: their offset in the output plane, the offset in the input plane of the x element
// that y[r, lo] meets, their count and the tap. Shared by the three passes.
typedef struct {
    int64_t out_offset; // into the output plane (Ho x Wo)
    int64_t in_offset;  // into the input plane (H x W)
    int64_t count;
    int64_t tap;        // a*kw + b'
} row_span;

typedef void (*span_fn)(const conv_run *r, const row_span *s, void *ctx);

static void for_each_row_span(const conv_run *r, span_fn fn, void *ctx) {
    const conv_geom *g = r->g;
    const int64_t ho = conv_out_h(g), wo = conv_out_w(g);
    for (int64_t a = 0; a < g->kh; a++)
        for (int64_t b = 0; b < g->kw; b++) {
            const int64_t off_w = b * g->dilation_w - g->pad_left;
            int64_t lo, hi;
            conv_valid_span(0, wo, g->stride_w, off_w, g->w, &lo, &hi);
            if (hi <= lo) continue;
            for (int64_t row = 0; row < ho; row++) {
                const int64_t ih = row * g->stride_h + a * g->dilation_h - g->pad_top;
                if (ih < 0 || ih >= g->h) continue;
                const row_span s = {row * wo + lo, ih * g->w + lo * g->stride_w + off_w, hi - lo,
                                    a * g->kw + b};
                fn(r, &s, ctx);
            }
        }
}

// The planes one span works on: the pass's output plane, its input plane, the filter's taps.
typedef struct {
    char *out;
    const char *in;
    const void *w_f;
    char *dw_f;
} planes;

static void forward_span(const conv_run *r, const row_span *s, void *ctx) {
    const planes *p = ctx;
    r->k->axpy(conv_at(p->out, s->out_offset, r->elt), conv_at(p->in, s->in_offset, r->elt),
               s->count, r->g->stride_w, conv_load(p->w_f, s->tap, r->dt));
}

// x (N,C,H,W), w (F,1,kh,kw), b (F) or NULL -> y (N,F,Ho,Wo); an item is an (n, f) plane.
static void forward_item(const conv_run *r, int64_t item) {
    const conv_geom *g = r->g;
    const int64_t fg = g->f / g->groups, khw = g->kh * g->kw;
    const int64_t hw = g->h * g->w, pixels = conv_out_h(g) * conv_out_w(g);
    const int64_t n = item / g->f, f = item % g->f;
    planes p = {.out = conv_at(r->out, item * pixels, r->elt),
                .in = conv_at(r->in, (n * g->c + f / fg) * hw, r->elt),
                .w_f = conv_at(r->w, f * khw, r->elt)};
    r->k->fill(p.out, pixels, r->b ? conv_load(r->b, f, r->dt) : 0);
    for_each_row_span(r, forward_span, &p);
}

static void backward_data_span(const conv_run *r, const row_span *s, void *ctx) {
    const planes *p = ctx;
    r->k->scatter(conv_at(p->out, s->in_offset, r->elt), conv_at(p->in, s->out_offset, r->elt),
                  s->count, r->g->stride_w, conv_load(p->w_f, s->tap, r->dt));
}

// dy (N,F,Ho,Wo), w (F,1,kh,kw) -> dx (N,C,H,W); an item is an (n, c) plane of dx.
static void backward_data_item(const conv_run *r, int64_t item) {
    const conv_geom *g = r->g;
    const int64_t fg = g->f / g->groups, khw = g->kh * g->kw;
    const int64_t hw = g->h * g->w, pixels = conv_out_h(g) * conv_out_w(g);
    const int64_t n = item / g->c, c = item % g->c;
    char *dx_plane = conv_at(r->out, item * hw, r->elt);
    memset(dx_plane, 0, (size_t)hw * r->elt);
    for (int64_t f = c * fg; f < (c + 1) * fg; f++) {
        planes p = {.out = dx_plane,
                    .in = conv_at(r->dy, (n * g->f + f) * pixels, r->elt),
                    .w_f = conv_at(r->w, f * khw, r->elt)};
        for_each_row_span(r, backward_data_span, &p);
    }
}

static void backward_weights_span(const conv_run *r, const row_span *s, void *ctx) {
    const planes *p = ctx;
    const double sum = r->k->dot(conv_at(p->out, s->out_offset, r->elt),
                                 conv_at(p->in, s->in_offset, r->elt), s->count, r->g->stride_w);
    conv_store(p->dw_f, s->tap, conv_load(p->dw_f, s->tap, r->dt) + sum, r->dt);
}

// dy (N,F,Ho,Wo), x (N,C,H,W) -> dw (F,1,kh,kw); an item is a filter f.
static void backward_weights_item(const conv_run *r, int64_t f) {
    const conv_geom *g = r->g;
    const int64_t fg = g->f / g->groups, khw = g->kh * g->kw;
    const int64_t hw = g->h * g->w, pixels = conv_out_h(g) * conv_out_w(g);
    char *dw_f = conv_at(r->out, f * khw, r->elt);
    memset(dw_f, 0, (size_t)khw * r->elt);
    for (int64_t n = 0; n < g->n; n++) {
        planes p = {.out = (char *)conv_at(r->dy, (n * g->f + f) * pixels, r->elt),
                    .in = conv_at(r->in, (n * g->c + f / fg) * hw, r->elt),
                    .dw_f = dw_f};
        for_each_row_span(r, backward_weights_span, &p);
    }
}

// dy (N,F,Ho,Wo) -> db (F), summed in double whatever the dtype; an item is a filter f.
static void backward_bias_item(const conv_run *r, int64_t f) {
    const conv_geom *g = r->g;
    const int64_t pixels = conv_out_h(g) * conv_out_w(g);
    double sum = 0;
    for (int64_t n = 0; n < g->n; n++)
        sum += r->k->sum(conv_at(r->dy, (n * g->f + f) * pixels, r->elt), pixels);
    conv_store(r->out, f, sum, r->dt);
}

// A row pass as its workers see it: the pass's run (threads and items set) and what it does
// with one item. The items are independent and need no scratch, so every pass shares one
// worker, which takes its contiguous range of them.
typedef void rows_item_fn(const conv_run *r, int64_t item);
typedef struct {
    const conv_run *r;
    rows_item_fn *item;
} rows_pass;

static void rows_worker(void *arg, int worker) {
    const rows_pass *pass = arg;
    int64_t first, end;
    conv_item_range(pass->r->items, pass->r->threads, worker, &first, &end);
    for (int64_t item = first; item < end; item++) pass->item(pass->r, item);
}

// `items` items of `item` on the r->threads workers the caller chose.
static void run_items(conv_run *r, rows_item_fn *item, int64_t items) {
    r->items = items;
    r->chunks = 1;
    rows_pass pass = {r, item};
    conv_run_workers(r->threads, rows_worker, &pass);
}

static void run_rows(conv_run *r, rows_item_fn *item, int64_t items) {
    r->threads = conv_plan_threads(r, items);
    run_items(r, item, items);
}

void conv_rows_forward(conv_run *r) { run_rows(r, forward_item, r->g->n * r->g->f); }
void conv_rows_backward_data(conv_run *r) { run_rows(r, backward_data_item, r->g->n * r->g->c); }
void conv_rows_backward_weights(conv_run *r) { run_rows(r, backward_weights_item, r->g->f); }

// db reads dy once and needs no scratch: a thread per 2^20 elements of dy at the most.
void conv_rows_backward_bias(conv_run *r) {
    int64_t t = r->ex->threads > 1 ? r->ex->threads : 1;
    int64_t by_size = conv_numel_y(r->g) >> 20;
    if (t > CONV_MAX_THREADS) t = CONV_MAX_THREADS;
    if (t > r->g->f) t = r->g->f;
    if (t > by_size) t = by_size;
    r->threads = t < 1 ? 1 : (int)t;
    run_items(r, backward_bias_item, r->g->f);
}
