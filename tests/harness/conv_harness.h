// conv_harness: what the conv tests share. Random geometries that reach every configuration
// class, one case's inputs with its reference results, and the comparison of a fast pass
// (core/conv.h) against the reference (core/conv_ref.h).
// Nothing here calls CHECK: results come back as values, so worker threads may use it too.
#ifndef CONV_HARNESS_H
#define CONV_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conv.h"
#include "core/conv_ref.h"
#include "tests/testlib.h"

typedef enum { PASS_FORWARD, PASS_DATA, PASS_WEIGHTS, PASS_BIAS, PASS_COUNT } conv_pass;

// "forward", "backward_data", "backward_weights", "backward_bias".
const char *conv_pass_name(conv_pass p);

// |fast - ref| <= tolerance * (the same sum taken over |terms|), per element: the rounding of
// any summation order stays within a few ulps of the sum of magnitudes, whatever cancels.
double conv_tolerance(conv_dtype dt);

// malloc that aborts the test (with a message) when memory runs out.
void *conv_xmalloc(size_t bytes);

// Kinds of layer conv_random_geom() makes: "same" padding (stride 1, even kernels, dilation);
// 1x1 kernels (stride 1 unpadded, stride 2, padded, strided on one axis); depthwise (groups ==
// C, F a multiple of C); kernels larger than the input that padding makes fit; anything.
typedef enum {
    GEOM_SAME, GEOM_1X1, GEOM_DEPTHWISE, GEOM_KERNEL_OVER_INPUT, GEOM_GENERAL, GEOM_CLASSES,
    GEOM_RANDOM = -1 // 20% same, 10% each of 1x1, depthwise, kernel over input, 50% general
} conv_geom_class;

// A random geometry of class `cls`; small enough that the naive reference of all passes takes
// well under a millisecond. Groups, sizes, strides, dilations and padding (symmetric, per
// side or none) are random within the class; rows and columns left over by the stride come
// from the random sizes. *bias tells whether the case has a bias.
void conv_random_geom(conv_geom *g, bool *bias, conv_geom_class cls, uint64_t *rng);

// A random geometry of class `cls` grown past `flops` within `max_elements` (see above),
// drawing again as needed. Returns false if a thousand draws all grew too large, so that a
// mistuned budget fails a check instead of hanging the test.
bool conv_random_large_geom(conv_geom *g, bool *bias, conv_geom_class cls,
                            double flops, int64_t max_elements, uint64_t *rng);

// Element i of a tensor of dtype dt, as a double.
double conv_dtype_at(const void *t, int64_t i, conv_dtype dt);

// The geometry in one line for failure messages; returns what snprintf returns.
int conv_geom_describe(char *buf, size_t len, const conv_geom *g);

// One layer's inputs (random in [-1, 1), float32-exact when dt is float32) and, per pass, the
// reference output and its error scale (the same pass over |inputs|).
typedef struct {
    conv_geom g;
    conv_dtype dt;
    double *x, *w, *b, *dy;       // b is NULL without bias
    void *x_dt, *w_dt, *b_dt, *dy_dt; // the same in dt, what the fast path reads
    int64_t count[PASS_COUNT];    // elements of y, dx, dw, db
    double *ref[PASS_COUNT];
    double *scale[PASS_COUNT];
    // Winograd's rounding comes from whole transformed tiles, not from an element's own terms
    // (a dw element that meets only padding is 0 exactly in the reference, a few ulps of its
    // neighbours' size there): when set, each element is judged by the largest scale of its
    // pass instead.
    bool tile_scale;
} conv_case;

// Points the fast path at another dtype. Going to float32 needs float32-exact inputs (a case
// made as float32); going to float64 reuses the reference, since float32 values are exact
// doubles and the reference is float64 anyway.
void conv_case_retype(conv_case *cc, conv_dtype dt);

// Makes a case of given inputs, which it takes over (heap blocks, freed by conv_case_free; b
// may be NULL). `g` must be valid (conv_geom_check accepts it); for float32 the values must
// be float32-exact.
void conv_case_adopt(conv_case *cc, const conv_geom *g, double *x, double *w,
                     double *b, double *dy, conv_dtype dt);

// A case of random inputs in [-1, 1), float32-exact when dt is float32.
void conv_case_init(conv_case *cc, const conv_geom *g, bool bias, conv_dtype dt, uint64_t *rng);

// Frees every block of the case.
void conv_case_free(conv_case *cc);

// Runs fast pass p of the case (core/conv.h, in the case's dtype) into `out`.
conv_status conv_case_fast(const conv_case *cc, conv_pass p, void *out,
                           const conv_exec *ex, conv_error *err);

// Scratch for one exec: `bytes` usable bytes starting `misalign` bytes past a 64-byte boundary,
// ending exactly where the allocation ends (so ASan sees any write past it); no bytes means
// a NULL workspace, which passes that need none must accept.
typedef struct {
    void *block;
    conv_exec ex;
} conv_scratch;

void conv_scratch_init(conv_scratch *s, size_t bytes, size_t misalign, int threads);
void conv_scratch_free(conv_scratch *s);

// Runs pass p of the fast path with `ex` (into an output pre-filled with NaN, so a skipped or
// accumulated element shows) and compares it with the reference. Returns true when the status
// is CONV_OK, every element is within tolerance and the inputs are untouched; otherwise writes
// the first reason into why. *worst (if not NULL) grows to the largest |fast-ref| / scale seen.
bool conv_case_check(const conv_case *cc, conv_pass p, const conv_exec *ex,
                     char *why, size_t why_len, double *worst);

#endif
