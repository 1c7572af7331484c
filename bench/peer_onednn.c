// peer_onednn: oneDNN's side of `make bench`, through its C API (Debian libdnnl-dev, 2.6).
//   peer_onednn THREADS     forward and backward (dx + dw + db) of every zero-padded conv2d
//                           layer (BENCH_LAYERS selects), JSON lines
// oneDNN is used as its users would use it: every tensor described with format_tag any so that
// the primitives pick their preferred (blocked) layouts, and only the primitives are timed.
// The reorders an NCHW caller would add (inputs in, outputs out) are timed the same way and
// reported beside, as "reorder_ms". Threads: OpenMP (the Debian build's runtime).
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bench/benchlib.h"

static dnnl_engine_t engine;
static dnnl_stream_t stream;

static void must(dnnl_status_t st, const char *what) {
    if (st == dnnl_success) return;
    fprintf(stderr, "peer_onednn: %s: %s\n", what, dnnl_status2str(st));
    exit(1);
}

static void md_init(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims,
                    dnnl_format_tag_t tag) {
    must(dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag), "memory_desc_init");
}

// "plain" or the inner blocks, e.g. "blocked b16" for nChw16c, "blocked b16a16" for OIhw16i16o.
static void describe_layout(char *out, size_t size, const dnnl_memory_desc_t *md) {
    const dnnl_blocking_desc_t *blk = &md->format_desc.blocking;
    int used = snprintf(out, size, "%s", blk->inner_nblks ? "blocked " : "plain");
    for (int i = 0; i < blk->inner_nblks && used > 0 && (size_t)used < size; i++)
        used += snprintf(out + used, size - (size_t)used, "%c%lld",
                         (char)('a' + blk->inner_idxs[i]), (long long)blk->inner_blks[i]);
}

// The ISA oneDNN dispatches to, by name (the enum's values of dnnl_types.h).
static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

static dnnl_memory_t memory_new(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m;
    must(dnnl_memory_create(&m, md, engine, DNNL_MEMORY_ALLOCATE), "memory_create");
    return m;
}

static const dnnl_memory_desc_t *memory_md(dnnl_memory_t m) {
    const dnnl_memory_desc_t *md;
    must(dnnl_memory_get_memory_desc(m, &md), "memory_get_memory_desc");
    return md;
}

static void execute(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
    must(dnnl_primitive_execute(p, stream, nargs, args), "primitive_execute");
    must(dnnl_stream_wait(stream), "stream_wait");
}

// A reorder between a user (plain) tensor and a primitive's tensor; NULL primitive when both
// layouts are the same and the caller would pass its buffer straight through.
typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t from, to;
} reorder;

static reorder reorder_new(dnnl_memory_t from, dnnl_memory_t to) {
    reorder r = {NULL, from, to};
    if (dnnl_memory_desc_equal(memory_md(from), memory_md(to))) return r;
    dnnl_primitive_desc_t pd;
    must(dnnl_reorder_primitive_desc_create(&pd, memory_md(from), engine, memory_md(to), engine,
                                            NULL),
         "reorder_primitive_desc_create");
    must(dnnl_primitive_create(&r.prim, pd), "primitive_create(reorder)");
    dnnl_primitive_desc_destroy(pd);
    return r;
}

static void reorder_run(const reorder *r) {
    if (!r->prim) return;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, r->from}, {DNNL_ARG_TO, r->to}};
    execute(r->prim, 2, args);
}

// Copies user data into a primitive's tensor (whatever its layout): once, at set-up.
static void load(dnnl_memory_t user, dnnl_memory_t prim_mem) {
    reorder r = reorder_new(user, prim_mem);
    if (r.prim) {
        reorder_run(&r);
        dnnl_primitive_destroy(r.prim);
    } else {
        size_t bytes = dnnl_memory_desc_get_size(memory_md(user));
        void *src, *dst;
        must(dnnl_memory_get_data_handle(user, &src), "get_data_handle");
        must(dnnl_memory_get_data_handle(prim_mem, &dst), "get_data_handle");
        memcpy(dst, src, bytes);
    }
}

static dnnl_memory_t user_tensor(int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag,
                                 uint64_t seed) {
    dnnl_memory_desc_t md;
    md_init(&md, ndims, dims, tag);
    dnnl_memory_t m = memory_new(&md);
    void *p;
    must(dnnl_memory_get_data_handle(m, &p), "get_data_handle");
    bench_fill(p, (int64_t)(dnnl_memory_desc_get_size(&md) / sizeof(float)), seed);
    return m;
}

// A primitive and a tensor in its own layout for every argument it takes.
#define MAX_ARGS 4
typedef struct {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    int nargs;
    dnnl_exec_arg_t args[MAX_ARGS];
} op;

static void op_create(op *o, const_dnnl_op_desc_t desc, const_dnnl_primitive_desc_t hint,
                      const char *what) {
    must(dnnl_primitive_desc_create(&o->pd, desc, NULL, engine, hint), what);
    must(dnnl_primitive_create(&o->prim, o->pd), what);
    o->nargs = 0;
}

// Gives the op a tensor for `arg` in the layout it chose (query, index), filled from `user` when
// given.
static dnnl_memory_t op_arg(op *o, int arg, dnnl_query_t query, int index, dnnl_memory_t user) {
    dnnl_memory_t m = memory_new(dnnl_primitive_desc_query_md(o->pd, query, index));
    if (user) load(user, m);
    o->args[o->nargs++] = (dnnl_exec_arg_t){arg, m};
    return m;
}

static const char *op_impl(const op *o) {
    const char *name = "?";
    dnnl_primitive_desc_query(o->pd, dnnl_query_impl_info_str, 0, &name);
    return name;
}

static void op_destroy(op *o) {
    for (int i = 0; i < o->nargs; i++) dnnl_memory_destroy(o->args[i].memory);
    dnnl_primitive_destroy(o->prim);
    dnnl_primitive_desc_destroy(o->pd);
}

// The three primitives of one layer, the user's plain tensors, and the reorders an NCHW user
// adds to each pass.
#define MAX_REORDERS 6
enum { U_X, U_W, U_B, U_DY, U_Y, U_DX, U_DW, U_COUNT };
typedef struct {
    op fwd, bwd_data, bwd_weights;
    dnnl_memory_t user[U_COUNT];
    reorder io[2][MAX_REORDERS]; // [0] forward, [1] backward
    int nio[2];
    char layouts[192];
} layer_ops;

static void add_io(layer_ops *L, int pass, dnnl_memory_t from, dnnl_memory_t to) {
    L->io[pass][L->nio[pass]++] = reorder_new(from, to);
}

static void layer_setup(layer_ops *L, const bench_layer *l) {
    dnnl_dims_t xd = {l->n, l->c, l->h, l->w};
    dnnl_dims_t yd = {l->n, l->f, bench_layer_ho(l), bench_layer_wo(l)};
    dnnl_dims_t bd = {l->f};
    dnnl_dims_t strides = {l->stride, l->stride}, pad = {l->pad, l->pad};
    dnnl_dims_t dilates = {l->dilation - 1, l->dilation - 1}; // oneDNN counts the gaps
    // Grouped weights are 5-D (G, F/G, C/G, kh, kw): the same bytes as PyTorch's (F, C/G, kh, kw).
    int grouped = l->groups > 1, wnd = grouped ? 5 : 4;
    dnnl_dims_t wd = {l->f, l->c, l->kh, l->kw};
    dnnl_dims_t gwd = {l->groups, l->f / l->groups, l->c / l->groups, l->kh, l->kw};
    const dnnl_dim_t *wdims = grouped ? gwd : wd;
    dnnl_format_tag_t wtag = grouped ? dnnl_goihw : dnnl_oihw;

    dnnl_memory_t *u = L->user;
    u[U_X] = user_tensor(4, xd, dnnl_nchw, 1);
    u[U_W] = user_tensor(wnd, wdims, wtag, 2);
    u[U_B] = user_tensor(1, bd, dnnl_x, 3);
    u[U_DY] = user_tensor(4, yd, dnnl_nchw, 4);
    u[U_Y] = user_tensor(4, yd, dnnl_nchw, 0);
    u[U_DX] = user_tensor(4, xd, dnnl_nchw, 0);
    u[U_DW] = user_tensor(wnd, wdims, wtag, 0);
    dnnl_memory_desc_t x_any, w_any, y_any, b_md;
    md_init(&x_any, 4, xd, dnnl_format_tag_any);
    md_init(&w_any, wnd, wdims, dnnl_format_tag_any);
    md_init(&y_any, 4, yd, dnnl_format_tag_any);
    md_init(&b_md, 1, bd, dnnl_x);

    dnnl_convolution_desc_t d;
    must(dnnl_dilated_convolution_forward_desc_init(&d, dnnl_forward_training,
                                                    dnnl_convolution_direct, &x_any, &w_any,
                                                    &b_md, &y_any, strides, dilates, pad, pad),
         "convolution_forward_desc_init");
    op_create(&L->fwd, &d, NULL, "forward primitive");
    dnnl_memory_t x = op_arg(&L->fwd, DNNL_ARG_SRC, dnnl_query_src_md, 0, u[U_X]);
    dnnl_memory_t w = op_arg(&L->fwd, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0, u[U_W]);
    op_arg(&L->fwd, DNNL_ARG_BIAS, dnnl_query_weights_md, 1, u[U_B]);
    dnnl_memory_t y = op_arg(&L->fwd, DNNL_ARG_DST, dnnl_query_dst_md, 0, NULL);

    must(dnnl_dilated_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &x_any,
                                                          &w_any, &y_any, strides, dilates, pad,
                                                          pad),
         "convolution_backward_data_desc_init");
    op_create(&L->bwd_data, &d, L->fwd.pd, "backward-data primitive");
    op *bd_op = &L->bwd_data;
    dnnl_memory_t dy_d = op_arg(bd_op, DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, 0, u[U_DY]);
    dnnl_memory_t w_d = op_arg(bd_op, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0, u[U_W]);
    dnnl_memory_t dx = op_arg(bd_op, DNNL_ARG_DIFF_SRC, dnnl_query_diff_src_md, 0, NULL);

    must(dnnl_dilated_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct,
                                                             &x_any, &w_any, &b_md, &y_any,
                                                             strides, dilates, pad, pad),
         "convolution_backward_weights_desc_init");
    op_create(&L->bwd_weights, &d, L->fwd.pd, "backward-weights primitive");
    op *bw_op = &L->bwd_weights;
    dnnl_memory_t x_w = op_arg(bw_op, DNNL_ARG_SRC, dnnl_query_src_md, 0, u[U_X]);
    dnnl_memory_t dy_w = op_arg(bw_op, DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, 0, u[U_DY]);
    dnnl_memory_t dw = op_arg(bw_op, DNNL_ARG_DIFF_WEIGHTS, dnnl_query_diff_weights_md, 0, NULL);
    op_arg(bw_op, DNNL_ARG_DIFF_BIAS, dnnl_query_diff_weights_md, 1, NULL);

    // Forward: x and w come in, y goes out. Backward (a training step already holds x and w in
    // the forward's layouts): dy comes in for each primitive, x and w move to the backward's
    // layouts where they differ, dx and dw go out (db is plain already).
    L->nio[0] = L->nio[1] = 0;
    add_io(L, 0, u[U_X], x);
    add_io(L, 0, u[U_W], w);
    add_io(L, 0, y, u[U_Y]);
    add_io(L, 1, u[U_DY], dy_d);
    add_io(L, 1, u[U_DY], dy_w);
    add_io(L, 1, w, w_d);
    add_io(L, 1, x, x_w);
    add_io(L, 1, dx, u[U_DX]);
    add_io(L, 1, dw, u[U_DW]);

    char lx[32], lw[32], ly[32], lwd[32];
    describe_layout(lx, sizeof lx, memory_md(x));
    describe_layout(lw, sizeof lw, memory_md(w));
    describe_layout(ly, sizeof ly, memory_md(y));
    describe_layout(lwd, sizeof lwd, memory_md(w_d));
    snprintf(L->layouts, sizeof L->layouts,
             "\"layouts\":{\"x\":\"%s\",\"w\":\"%s\",\"y\":\"%s\",\"w_bwd_data\":\"%s\"}", lx, lw,
             ly, lwd);
}

static void layer_teardown(layer_ops *L) {
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < L->nio[pass]; i++)
            if (L->io[pass][i].prim) dnnl_primitive_destroy(L->io[pass][i].prim);
    op_destroy(&L->fwd);
    op_destroy(&L->bwd_data);
    op_destroy(&L->bwd_weights);
    for (int i = 0; i < U_COUNT; i++) dnnl_memory_destroy(L->user[i]);
}

static void step_forward(void *ctx, double *part_ms) {
    layer_ops *L = ctx;
    double t0 = bench_now_ms();
    execute(L->fwd.prim, L->fwd.nargs, L->fwd.args);
    part_ms[0] = bench_now_ms() - t0;
}

static void step_backward(void *ctx, double *part_ms) {
    layer_ops *L = ctx;
    double t0 = bench_now_ms();
    execute(L->bwd_data.prim, L->bwd_data.nargs, L->bwd_data.args);
    double t1 = bench_now_ms();
    execute(L->bwd_weights.prim, L->bwd_weights.nargs, L->bwd_weights.args);
    part_ms[0] = t1 - t0;
    part_ms[1] = bench_now_ms() - t1;
}

typedef struct {
    const reorder *io;
    int n;
} reorder_set;

static void step_reorders(void *ctx, double *part_ms) {
    const reorder_set *set = ctx;
    double t0 = bench_now_ms();
    for (int i = 0; i < set->n; i++) reorder_run(&set->io[i]);
    part_ms[0] = bench_now_ms() - t0;
}

// Median milliseconds of the reorders an NCHW user adds to one pass.
static double reorder_ms(const layer_ops *L, int pass, const bench_plan *plan, double *samples) {
    reorder_set set = {L->io[pass], L->nio[pass]};
    bench_measure(samples, step_reorders, &set, 1, plan);
    return bench_median(samples, plan->repeats);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    if (threads < 1) {
        fprintf(stderr, "usage: peer_onednn THREADS\n");
        return 2;
    }
    omp_set_num_threads(threads);
    must(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine_create");
    must(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "stream_create");
    const dnnl_version_t *v = dnnl_version();
    bench_plan plan = bench_plan_from_env();
    double *samples = bench_alloc(sizeof(double) * 2 * (size_t)plan.repeats);
    static const char *const fwd_parts[] = {"y"}, *const bwd_parts[] = {"dx", "dw_db"};
    char extra[768];
    for (int i = 0; i < bench_layer_count; i++) {
        const bench_layer *l = &bench_layers[i];
        // conv2d with zero padding only: the family's rows (issue 15) have no oneDNN column.
        if (!bench_layer_selected(l) || l->op != BENCH_CONV2D || l->reflect) continue;
        layer_ops L;
        layer_setup(&L, l);
        const op *passes[2] = {&L.fwd, &L.bwd_weights};
        for (int pass = 0; pass < 2; pass++) {
            double rms = reorder_ms(&L, pass, &plan, samples);
            int n = snprintf(extra, sizeof extra,
                             "\"reorder_ms\":%.6f,\"omp_threads\":%d,\"version\":\"%d.%d.%d\","
                             "\"isa\":\"%s\",%s,\"impl_info\":",
                             rms, omp_get_max_threads(), v->major, v->minor, v->patch,
                             isa_name(dnnl_get_effective_cpu_isa()), L.layouts);
            if (n < 0 || (size_t)n >= sizeof extra - 64) {
                fprintf(stderr, "peer_onednn: record too long\n");
                return 1;
            }
            snprintf(extra + n, sizeof extra - (size_t)n, "\"%s\"", op_impl(passes[pass]));
            if (pass == 0) {
                bench_measure(samples, step_forward, &L, 1, &plan);
                bench_emit_times(stdout, "onednn", l, "forward", threads, &plan, 1, fwd_parts,
                                 samples, extra);
            } else {
                bench_measure(samples, step_backward, &L, 2, &plan);
                bench_emit_times(stdout, "onednn", l, "backward", threads, &plan, 2, bwd_parts,
                                 samples, extra);
            }
        }
        layer_teardown(&L);
    }
    free(samples);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return 0;
}
