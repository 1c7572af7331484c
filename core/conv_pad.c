#include "core/conv_pad.h"

#include <stdbool.h>
#include <string.h>

const char *conv_pad_mode_name(conv_pad_mode mode) {
    static const char *const names[] = {"zeros", "reflect", "replicate", "circular"};
    return names[mode];
}

int conv_pad_check(conv_pad_mode mode, const int64_t dims[3], const int64_t pad[6]) {
    for (int axis = 0; axis < 3; axis++) {
        int64_t n = dims[axis], lo = pad[2 * axis], hi = pad[2 * axis + 1];
        if ((mode == CONV_PAD_REFLECT && (lo >= n || hi >= n)) ||
            (mode == CONV_PAD_CIRCULAR && (lo > n || hi > n)))
            return axis;
    }
    return -1;
}

// The input index that padded index p copies, along an axis of size n with low pad lo; -1 for
// a zero.
static int64_t source(int64_t p, int64_t n, int64_t lo, conv_pad_mode mode) {
    int64_t i = p - lo;
    if (i >= 0 && i < n) return i;
    switch (mode) {
    case CONV_PAD_ZEROS: return -1;
    case CONV_PAD_REFLECT: return i < 0 ? -i : 2 * (n - 1) - i;
    case CONV_PAD_REPLICATE: return i < 0 ? 0 : n - 1;
    default: return ((i % n) + n) % n; // circular
    }
}

// Walks every padded cell with the input cell it copies; apply copies, fold adds back. A
// padded row's middle is the whole input row in order (a plain copy or add, vectorised); only
// its pl + pr edge cells look their source up.
#define PAD_WALK(T)                                                                               \
    static void walk_##T(T *x, T *xp, int64_t planes, const int64_t dims[3], const int64_t pad[6], \
                         conv_pad_mode mode, bool fold) {                                         \
        const int64_t pd = dims[0] + pad[0] + pad[1], ph = dims[1] + pad[2] + pad[3],             \
                      pw = dims[2] + pad[4] + pad[5], w = dims[2], pl = pad[4];                   \
        const int64_t in_plane = dims[0] * dims[1] * dims[2];                                     \
        if (fold) memset(x, 0, (size_t)(planes * in_plane) * sizeof *x);                          \
        for (int64_t q = 0; q < planes; q++)                                                      \
            for (int64_t a = 0; a < pd; a++) {                                                    \
                const int64_t sa = source(a, dims[0], pad[0], mode);                              \
                for (int64_t b = 0; b < ph; b++) {                                                \
                    const int64_t sb = source(b, dims[1], pad[2], mode);                          \
                    T *row = xp + ((q * pd + a) * ph + b) * pw;                                   \
                    if (sa < 0 || sb < 0) { /* a zero row */                                      \
                        if (!fold) memset(row, 0, (size_t)pw * sizeof *row);                      \
                        continue;                                                                 \
                    }                                                                             \
                    T *restrict in_row = x + q * in_plane + (sa * dims[1] + sb) * w;              \
                    T *restrict mid = row + pl;                                                   \
                    if (fold)                                                                     \
                        for (int64_t c = 0; c < w; c++) in_row[c] += mid[c];                      \
                    else                                                                          \
                        memcpy(mid, in_row, (size_t)w * sizeof *row);                             \
                    for (int64_t c = 0; c < pw; c++) {                                            \
                        if (c == pl) c = pl + w; /* past the middle */                            \
                        if (c >= pw) break;                                                       \
                        const int64_t sc = source(c, w, pl, mode);                                \
                        if (fold && sc >= 0)                                                      \
                            in_row[sc] += row[c];                                                 \
                        else if (!fold)                                                           \
                            row[c] = sc < 0 ? 0 : in_row[sc];                                     \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
    }
PAD_WALK(float)
PAD_WALK(double)
#undef PAD_WALK

void conv_pad_apply(void *xp, const void *x, int64_t planes, const int64_t dims[3],
                    const int64_t pad[6], conv_pad_mode mode, conv_dtype dt) {
    // The walk is shared with fold, which writes x; apply only reads it.
    if (dt == CONV_FLOAT64)
        walk_double((double *)x, xp, planes, dims, pad, mode, false);
    else
        walk_float((float *)x, xp, planes, dims, pad, mode, false);
}

void conv_pad_fold(void *dx, const void *dxp, int64_t planes, const int64_t dims[3],
                   const int64_t pad[6], conv_pad_mode mode, conv_dtype dt) {
    if (dt == CONV_FLOAT64)
        walk_double(dx, (double *)dxp, planes, dims, pad, mode, true);
    else
        walk_float(dx, (float *)dxp, planes, dims, pad, mode, true);
}
