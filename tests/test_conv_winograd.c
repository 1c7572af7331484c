// Winograd F(2x2,3x3) (core/conv_winograd.c) against the naive reference: randomized 3x3
// stride-1 layers with any padding (beyond the kernel too), dilations 1-4 (the phase planes),
// odd and even sizes, tiles cut by the borders, groups, both dtypes, every ISA variant, 1-3
// threads and workspaces from the least Winograd accepts to the full size. Also the algorithm
// contract (conv_pick_algorithm) and the accuracy that lets "auto" pick Winograd: float32
// normwise error against float64 within 2x of the direct path's on the same inputs, float64
// within 1e-13.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv.h"
#include "core/conv_ref.h"
#include "server/blas_boot.h"
#include "tests/harness/conv_harness.h"
#include "tests/testlib.h"

enum { SWEEP_CONFIGS = 240 };

// A dilation for one axis: 1 half of the time, else 2..4.
static int64_t random_dilation(uint64_t *rng) {
    return t_rand_int(rng, 0, 1) ? 1 : t_rand_int(rng, 2, 4);
}

// A random 3x3 stride-1 layer: sizes 1..11 (odd and even, so the last tile row and column are
// cut; up to 17 when dilated, so that phases hold several tiles, and phases of different
// sizes), padding 0..2d+1 per side (2d+1 reaches beyond the kernel: dx's offset then lies
// inside dy), 1..3 groups of 1..6 channels and filters.
static void random_winograd_geom(conv_geom *g, bool *bias, uint64_t *rng) {
    memset(g, 0, sizeof *g);
    g->n = t_rand_int(rng, 1, 3);
    g->groups = t_rand_int(rng, 1, 3);
    g->c = g->groups * t_rand_int(rng, 1, 6);
    g->f = g->groups * t_rand_int(rng, 1, 6);
    g->kh = g->kw = 3;
    g->stride_h = g->stride_w = 1;
    g->dilation_h = random_dilation(rng);
    g->dilation_w = random_dilation(rng);
    g->h = t_rand_int(rng, 1, g->dilation_h > 1 ? 17 : 11);
    g->w = t_rand_int(rng, 1, g->dilation_w > 1 ? 17 : 11);
    g->pad_top = t_rand_int(rng, 0, 2 * g->dilation_h + 1);
    g->pad_bottom = t_rand_int(rng, 0, 2 * g->dilation_h + 1);
    g->pad_left = t_rand_int(rng, 0, 2 * g->dilation_w + 1);
    g->pad_right = t_rand_int(rng, 0, 2 * g->dilation_w + 1);
    while (conv_ref_out_size(g->h, 3, 1, g->dilation_h, g->pad_top, g->pad_bottom) < 1)
        g->pad_bottom++;
    while (conv_ref_out_size(g->w, 3, 1, g->dilation_w, g->pad_left, g->pad_right) < 1)
        g->pad_right++;
    *bias = t_rand_int(rng, 0, 1);
}

static void test_sweep(void) {
    uint64_t rng = 314159;
    double worst[2] = {0, 0};
    int odd = 0, padded_beyond = 0, grouped = 0, dilated = 0;
    for (int i = 0; i < SWEEP_CONFIGS; i++) {
        conv_geom g;
        bool bias;
        random_winograd_geom(&g, &bias, &rng);
        const conv_isa isa = (conv_isa)(CONV_ISA_PORTABLE + i % conv_isa_best());
        odd += conv_out_h(&g) % 2 || conv_out_w(&g) % 2;
        padded_beyond += g.pad_top > 2 * g.dilation_h || g.pad_bottom > 2 * g.dilation_h ||
                         g.pad_left > 2 * g.dilation_w || g.pad_right > 2 * g.dilation_w;
        grouped += g.groups > 1;
        dilated += g.dilation_h > 1 || g.dilation_w > 1;
        char desc[256];
        conv_geom_describe(desc, sizeof desc, &g);
        for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++) {
            conv_case cc;
            conv_case_init(&cc, &g, bias, dt, &rng);
            cc.tile_scale = true;
            const int threads = 1 + i % 3;
            const size_t full = conv_workspace_size(&g, dt, threads, CONV_WORKSPACE_CAP_DEFAULT);
            // the full size, and a size between the least and the full one (smaller batches)
            const size_t least = conv_workspace_min(&g, dt, threads);
            const size_t sizes[2] = {full, least + (full - least) / 3 + 8};
            for (int s_i = 0; s_i < 2; s_i++) {
                conv_scratch s;
                conv_scratch_init(&s, sizes[s_i], s_i ? 8 : 0, threads);
                s.ex.isa = isa;
                s.ex.algorithm = CONV_ALGO_WINOGRAD;
                conv_algorithm ran = CONV_ALGO_AUTO;
                const bool picked = conv_pick_algorithm(&g, dt, CONV_ALGO_WINOGRAD, sizes[s_i],
                                                        &ran, NULL) == CONV_OK;
                // the smaller size may hold too little for Winograd: then it must be refused
                if (!picked) {
                    CHECK(s_i == 1, "config %d %s: Winograd refused the full workspace", i, desc);
                    void *out = conv_xmalloc((size_t)cc.count[PASS_FORWARD] * 8);
                    CHECK(conv_case_fast(&cc, PASS_FORWARD, out, &s.ex, NULL) == CONV_EWORKSPACE,
                          "config %d: a workspace too small for Winograd is CONV_EWORKSPACE", i);
                    free(out);
                    conv_scratch_free(&s);
                    continue;
                }
                CHECK(ran == CONV_ALGO_WINOGRAD, "config %d: picked %d", i, (int)ran);
                for (conv_pass p = PASS_FORWARD; p < PASS_BIAS; p++) {
                    char why[512] = "";
                    CHECK(conv_case_check(&cc, p, &s.ex, why, sizeof why, &worst[dt]),
                          "config %d %s bias=%d %s isa=%s threads=%d workspace=%zu: %s", i, desc,
                          bias, dt == CONV_FLOAT32 ? "float32" : "float64", conv_isa_name(isa),
                          threads, sizes[s_i], why);
                }
                conv_scratch_free(&s);
            }
            conv_case_free(&cc);
        }
    }
    printf("winograd sweep: %d configs (%d with odd outputs, %d padded beyond the kernel, %d "
           "grouped, %d dilated), worst |fast-ref|/scale float32 %.3g, float64 %.3g\n",
           SWEEP_CONFIGS, odd, padded_beyond, grouped, dilated, worst[0], worst[1]);
    CHECK(odd >= 20 && padded_beyond >= 20 && grouped >= 20 && dilated >= 60,
          "the sweep must reach odd outputs (%d), padding beyond the kernel (%d), groups (%d) "
          "and dilations (%d)", odd, padded_beyond, grouped, dilated);
}

// Dilated layers with large phase planes (tile rows of 4100 tiles, several batches per phase
// plane; a workspace of an eighth gives batches that start and end inside tile rows), and
// dilations far beyond the input: a 1x1 image padded by 100000 under dilation 100000 has one
// output, in one of its 10^10 phases (only phases that hold an output are tiled: a pass must
// not visit the others).
static void test_large_phases(void) {
    const struct {
        int64_t h, w, dh, dw, pad;
    } layers[] = {{260, 250, 2, 2, 2},  {131, 390, 1, 3, 3},   {400, 20, 4, 1, 1},
                  {6, 16400, 2, 2, 2},  {1, 1, 1000, 1000, 1000}, {1, 1, 100000, 100000, 100000},
                  {5, 3, 7, 9, 9}};
    uint64_t rng = 1618;
    for (size_t l = 0; l < sizeof layers / sizeof *layers; l++) {
        const conv_geom g = {.n = 2, .c = 2, .h = layers[l].h, .w = layers[l].w, .f = 3,
                             .kh = 3, .kw = 3, .groups = 1, .stride_h = 1, .stride_w = 1,
                             .dilation_h = layers[l].dh, .dilation_w = layers[l].dw,
                             .pad_top = layers[l].pad, .pad_bottom = layers[l].pad,
                             .pad_left = layers[l].pad, .pad_right = layers[l].pad};
        for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++) {
            conv_case cc;
            conv_case_init(&cc, &g, true, dt, &rng);
            cc.tile_scale = true;
            const size_t full = conv_workspace_size(&g, dt, 2, CONV_WORKSPACE_CAP_DEFAULT);
            const size_t sizes[2] = {full, full / 8};
            for (int s_i = 0; s_i < 2; s_i++) {
                conv_algorithm ran;
                // an eighth of a small layer's workspace may not hold Winograd at all
                if (s_i == 1 && conv_pick_algorithm(&g, dt, CONV_ALGO_WINOGRAD, sizes[s_i], &ran,
                                                    NULL) != CONV_OK)
                    continue;
                conv_scratch s;
                conv_scratch_init(&s, sizes[s_i], 0, 2);
                s.ex.algorithm = CONV_ALGO_WINOGRAD;
                for (conv_pass p = PASS_FORWARD; p < PASS_BIAS; p++) {
                    char why[512] = "";
                    CHECK(conv_case_check(&cc, p, &s.ex, why, sizeof why, NULL),
                          "large phases: layer %zu %s workspace %zu %s: %s", l,
                          dt == CONV_FLOAT32 ? "float32" : "float64", sizes[s_i],
                          conv_pass_name(p), why);
                }
                conv_scratch_free(&s);
            }
            conv_case_free(&cc);
        }
    }
}

static conv_status pick(const conv_geom *g, const conv_exec *ex, conv_algorithm *algo,
                        conv_error *err) {
    return conv_pick_algorithm(g, CONV_FLOAT32, ex->algorithm, ex->workspace_bytes, algo, err);
}

// Where Winograd applies, and what auto, direct and winograd pick.
static void test_pick(void) {
    conv_geom g = {.n = 1, .c = 32, .h = 8, .w = 8, .f = 32, .kh = 3, .kw = 3, .groups = 1,
                   .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1,
                   .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    const size_t bytes = conv_workspace_size(&g, CONV_FLOAT32, 1, CONV_WORKSPACE_CAP_DEFAULT);
    void *ws = malloc(bytes);
    conv_exec ex = {.workspace = ws, .workspace_bytes = bytes, .threads = 1};
    conv_algorithm algo;
    conv_error err = {0};
    CHECK(pick(&g, &ex, &algo, &err) == CONV_OK &&
              algo == CONV_ALGO_WINOGRAD,
          "auto picks Winograd for a 32-channel 3x3 layer");
    ex.algorithm = CONV_ALGO_DIRECT;
    CHECK(pick(&g, &ex, &algo, &err) == CONV_OK &&
              algo == CONV_ALGO_DIRECT,
          "direct is direct");
    ex.algorithm = CONV_ALGO_AUTO;
    ex.workspace_bytes = conv_workspace_min(&g, CONV_FLOAT32, 1);
    CHECK(pick(&g, &ex, &algo, &err) == CONV_OK &&
              algo == CONV_ALGO_DIRECT,
          "auto falls back to direct when the workspace cannot hold Winograd");
    ex.workspace_bytes = bytes;
    const struct {
        int64_t kh, stride, dilation;
    } not_applying[] = {{5, 1, 1}, {3, 2, 1}, {3, 3, 2}};
    for (size_t i = 0; i < sizeof not_applying / sizeof *not_applying; i++) {
        conv_geom h = g;
        h.kh = h.kw = not_applying[i].kh;
        h.stride_h = h.stride_w = not_applying[i].stride;
        h.dilation_h = h.dilation_w = not_applying[i].dilation;
        ex.algorithm = CONV_ALGO_WINOGRAD;
        memset(&err, 0, sizeof err);
        CHECK(pick(&h, &ex, &algo, &err) == CONV_EINVAL &&
                  err.field && strcmp(err.field, "algorithm") == 0 && strstr(err.message, "3x3"),
              "winograd for k=%lld stride %lld dilation %lld is refused: %s",
              (long long)h.kh, (long long)h.stride_h, (long long)h.dilation_h, err.message);
        ex.algorithm = CONV_ALGO_AUTO;
        CHECK(pick(&h, &ex, &algo, &err) == CONV_OK &&
                  algo == CONV_ALGO_DIRECT,
              "auto is direct where Winograd does not apply");
    }
    // dilated: the phase planes, 8x8 here with dilation 2 on a 16x16 output, must be as large
    // as an undilated layer's output for auto to take Winograd
    conv_geom d = g;
    d.h = d.w = 16;
    d.dilation_h = d.dilation_w = d.pad_top = d.pad_bottom = d.pad_left = d.pad_right = 2;
    CHECK(pick(&d, &ex, &algo, &err) == CONV_OK && algo == CONV_ALGO_WINOGRAD,
          "auto picks Winograd for a dilation-2 layer of 8x8 phases: %s", err.message);
    d.h = d.w = 8;
    CHECK(pick(&d, &ex, &algo, &err) == CONV_OK && algo == CONV_ALGO_DIRECT,
          "auto is direct for dilation 2 on an 8x8 output (4x4 phases)");
    ex.algorithm = CONV_ALGO_WINOGRAD;
    CHECK(pick(&d, &ex, &algo, &err) == CONV_OK && algo == CONV_ALGO_WINOGRAD,
          "winograd is taken for a dilated layer when asked: %s", err.message);
    ex.algorithm = CONV_ALGO_AUTO;
    g.c = g.f = 16;
    CHECK(pick(&g, &ex, &algo, &err) == CONV_OK && algo == CONV_ALGO_DIRECT,
          "auto is direct for 16 channels per group");
    g.c = g.f = 64;
    g.h = g.w = 7;
    CHECK(pick(&g, &ex, &algo, &err) == CONV_OK && algo == CONV_ALGO_DIRECT,
          "auto is direct for a 7x7 output");
    free(ws);
}

// ||a - ref|| / ||ref|| over `count` elements of a dtype array.
static double normwise(const void *a, const double *ref, int64_t count, conv_dtype dt) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < count; i++) {
        const double d = conv_dtype_at(a, i, dt) - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static double gauss(uint64_t *rng) {
    const double u = t_rand_uniform(rng, 1e-12, 1), v = t_rand_uniform(rng, 0, 1);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

// The accuracy contract, on layers "auto" gives Winograd: random normal x, w, dy (float32-
// exact), each pass in float32 with Winograd and with the direct path, and in float64 with
// Winograd, normwise against the float64 reference.
static void test_accuracy(void) {
    const struct {
        int64_t n, c, h, w, f, groups, pad, dilation;
    } layers[] = {
        {2, 32, 14, 14, 32, 1, 1, 1},  {1, 32, 28, 28, 32, 1, 1, 1},  {4, 64, 8, 8, 64, 1, 1, 1},
        {1, 64, 16, 16, 128, 1, 1, 1}, {2, 128, 10, 10, 64, 1, 0, 1}, {1, 32, 13, 11, 48, 1, 2, 1},
        {2, 64, 10, 10, 64, 2, 1, 1},  {1, 256, 9, 9, 256, 1, 1, 1},  {1, 32, 33, 33, 32, 1, 1, 1},
        {3, 48, 12, 12, 32, 1, 1, 1},  {2, 64, 28, 28, 64, 1, 2, 2},  {1, 32, 31, 29, 48, 1, 3, 3},
        {1, 128, 20, 20, 64, 2, 2, 2},
    };
    double worst_ratio = 0, worst32 = 0, worst_direct = 0, worst64 = 0, pass_ratio[3] = {0};
    uint64_t rng = 2718;
    for (size_t l = 0; l < sizeof layers / sizeof *layers; l++) {
        const conv_geom g = {.n = layers[l].n, .c = layers[l].c, .h = layers[l].h,
                             .w = layers[l].w, .f = layers[l].f, .kh = 3, .kw = 3,
                             .groups = layers[l].groups, .stride_h = 1, .stride_w = 1,
                             .dilation_h = layers[l].dilation, .dilation_w = layers[l].dilation,
                             .pad_top = layers[l].pad,
                             .pad_bottom = layers[l].pad, .pad_left = layers[l].pad,
                             .pad_right = layers[l].pad};
        const int64_t counts[3] = {conv_numel_y(&g), conv_numel_x(&g), conv_numel_w(&g)};
        double *x = conv_xmalloc((size_t)counts[1] * sizeof *x);
        double *w = conv_xmalloc((size_t)counts[2] * sizeof *w);
        double *dy = conv_xmalloc((size_t)counts[0] * sizeof *dy);
        for (int64_t i = 0; i < counts[1]; i++) x[i] = (float)gauss(&rng);
        for (int64_t i = 0; i < counts[2]; i++) w[i] = (float)gauss(&rng);
        for (int64_t i = 0; i < counts[0]; i++) dy[i] = (float)gauss(&rng);
        conv_case cc;
        conv_case_adopt(&cc, &g, x, w, NULL, dy, CONV_FLOAT32);
        const size_t bytes = conv_workspace_size(&g, CONV_FLOAT64, 2, CONV_WORKSPACE_CAP_DEFAULT);
        conv_scratch s;
        conv_scratch_init(&s, bytes, 0, 2);
        conv_algorithm picked;
        CHECK(conv_pick_algorithm(&g, CONV_FLOAT32, s.ex.algorithm, s.ex.workspace_bytes, &picked,
                                      NULL) == CONV_OK &&
                  picked == CONV_ALGO_WINOGRAD,
              "layer %zu: auto picks Winograd", l);
        double err[2][3] = {{0}}; // [winograd, direct][pass] in float32
        for (conv_dtype dt = CONV_FLOAT32; dt <= CONV_FLOAT64; dt++) {
            if (dt == CONV_FLOAT64) conv_case_retype(&cc, CONV_FLOAT64);
            for (int a = 0; a < (dt == CONV_FLOAT32 ? 2 : 1); a++) {
                s.ex.algorithm = a ? CONV_ALGO_DIRECT : CONV_ALGO_WINOGRAD;
                for (conv_pass p = PASS_FORWARD; p < PASS_BIAS; p++) {
                    void *out = conv_xmalloc((size_t)cc.count[p] * conv_dtype_size(dt));
                    CHECK(conv_case_fast(&cc, p, out, &s.ex, NULL) == CONV_OK, "layer %zu pass %d",
                          l, (int)p);
                    const double e = normwise(out, cc.ref[p], cc.count[p], dt);
                    if (a == 0) { // and element by element, on layers split over threads
                        char why[512] = "";
                        cc.tile_scale = true;
                        CHECK(conv_case_check(&cc, p, &s.ex, why, sizeof why, NULL),
                              "layer %zu: %s", l, why);
                        cc.tile_scale = false;
                    }
                    if (dt == CONV_FLOAT32) err[a][p] = e;
                    else if (e > worst64) worst64 = e;
                    free(out);
                }
            }
        }
        for (int p = 0; p < 3; p++) {
            const double ratio = err[0][p] / err[1][p];
            if (ratio > worst_ratio) worst_ratio = ratio;
            if (ratio > pass_ratio[p]) pass_ratio[p] = ratio;
            if (err[0][p] > worst32) worst32 = err[0][p];
            if (err[1][p] > worst_direct) worst_direct = err[1][p];
            CHECK(ratio <= 2.0, "layer %zu %s: float32 Winograd error %.3g is more than 2x the "
                  "direct path's %.3g", l, conv_pass_name((conv_pass)p), err[0][p], err[1][p]);
        }
        conv_scratch_free(&s);
        conv_case_free(&cc);
    }
    printf("winograd accuracy (normwise vs float64, %zu layers x 3 passes): float32 winograd "
           "<= %.3g, direct <= %.3g, worst ratio %.3f; float64 winograd <= %.3g\n",
           sizeof layers / sizeof *layers, worst32, worst_direct, worst_ratio, worst64);
    printf("winograd accuracy: worst ratio to direct forward %.3f, backward data %.3f, backward "
           "weights %.3f\n", pass_ratio[0], pass_ratio[1], pass_ratio[2]);
    CHECK(worst64 <= 1e-13, "float64 Winograd normwise error %.3g exceeds 1e-13", worst64);
}

int main(int argc, char **argv) {
    (void)argc;
    blas_boot(argv);
    test_pick();
    test_sweep();
    test_large_phases();
    test_accuracy();
    return t_finish("test_conv_winograd");
}
