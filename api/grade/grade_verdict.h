// grade_verdict: one submitted tensor judged against the reference. The numbers a grader
// prints (max absolute and relative error, CS231n's rel_error) and the ones a student needs
// to find the mistake: how many values are wrong, the worst and the first few of them by
// index, and where in the image they lie (only the border, only rows the stride skips, ...).
#ifndef GRADE_VERDICT_H
#define GRADE_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/grade/grade_problem.h"

// A value passes when |submitted - expected| <= atol + rtol * |expected| (and is finite).
typedef struct {
    double atol, rtol;
} grade_tolerance;

// Defaults per dtype (docs/GRADING.md): float64 atol 1e-9, rtol 1e-7 (tight: the problems'
// sums are exact, and an honest float64 answer is within a few ulps); float32 atol 1e-4, rtol
// 1e-4 (a float32 computation of a grading-sized layer is within ~1e-6).
void grade_tolerance_default(grade_tolerance *t, conv_dtype dt);

// Whether submitted value s passes against expected r.
bool grade_within(double s, double r, const grade_tolerance *tol);

// A submitted tensor: a shape and row-major float64 values (non-finite values allowed: they
// are counted, never compared). `present` is false when the submission lacks it.
typedef struct {
    bool present;
    grade_shape shape;
    const double *data;
} grade_array;

// One value: its flat row-major index in the expected shape, expected and submitted value.
typedef struct {
    int64_t index;
    double expected, submitted;
} grade_point;

// Where the wrong values of y or dx lie, from the geometry (docs/GRADING.md):
//   leftover        only rows/columns after the last window, which the stride never reaches
//   stride_skipped  only rows/columns between windows, which a stride larger than the kernel
//                   skips (with leftover ones: "unreached")
//   border          only outputs whose window overlaps the padding (y), or input pixels
//                   within `pad` of the edge (dx)
//   interior        none of those
//   everywhere      interior and border alike
typedef enum {
    GRADE_PATTERN_NONE,
    GRADE_PATTERN_LEFTOVER,
    GRADE_PATTERN_STRIDE_SKIPPED,
    GRADE_PATTERN_UNREACHED,
    GRADE_PATTERN_BORDER,
    GRADE_PATTERN_INTERIOR,
    GRADE_PATTERN_EVERYWHERE,
} grade_pattern;

const char *grade_pattern_name(grade_pattern p); // "none", "leftover", ...

// The areas a pixel of y or dx falls in, the first that applies in this order.
typedef enum {
    GRADE_AREA_LEFTOVER,
    GRADE_AREA_STRIDE_SKIPPED,
    GRADE_AREA_BORDER,
    GRADE_AREA_INTERIOR,
    GRADE_NAREAS
} grade_area;

const char *grade_area_name(grade_area a); // "leftover", "stride_skipped", ...

// A recognised mistake: a stable id, a hint the student can act on (both static strings) and
// the evidence that ties this submission to it.
typedef struct {
    const char *id;
    const char *hint;
    char evidence[360];
} grade_diagnosis;

#define GRADE_FIRST_MISMATCHES 5
#define GRADE_MAX_DIAGNOSES 8

typedef struct {
    grade_tensor tensor;
    bool present;          // in the submission
    bool passed;
    bool shape_ok;         // the submitted shape is exactly the expected one
    bool values_compared;  // shapes equal up to axes of size 1, so values were compared
    bool precision_warning; // passed only within float32 tolerance on a float64 problem
    grade_shape expected_shape, submitted_shape;
    grade_tolerance tol;   // the tolerance the verdict used
    int64_t numel;         // values compared (0 when not compared)
    int64_t nan_count, inf_count;
    int64_t mismatches;    // values outside tolerance, non-finite ones included
    double max_abs_error;  // over finite values (0 when none)
    double max_rel_error;  // |s - r| / |r| over finite values with r != 0 (0 when none)
    double rel_error;      // CS231n: max |s - r| / max(1e-8, |s| + |r|) over finite values
    grade_point worst;     // the largest error (a non-finite value first); valid if mismatches
    grade_point first[GRADE_FIRST_MISMATCHES]; // the first mismatches in index order
    int n_first;
    bool has_pattern;      // y and dx with mismatches
    grade_pattern pattern;
    bool pattern_trivial;  // every pixel lies in one area: the pattern tells nothing
    int64_t area_mismatches[GRADE_NAREAS];
    double points, max_points;
    grade_diagnosis diag[GRADE_MAX_DIAGNOSES];
    int n_diag;
} grade_verdict;

// Judges submission `sub` of tensor t against problem p with tolerance *tol. When it fails
// and `float32_fallback` is set, it is judged again with the float32 defaults and passes with
// precision_warning if that succeeds. Fills everything except points and diagnoses.
void grade_verdict_compute(grade_verdict *v, const grade_problem *p, grade_tensor t,
                           const grade_array *sub, const grade_tolerance *tol,
                           bool float32_fallback);

// Appends a diagnosis (id and hint static, evidence formatted); false when v is full.
bool grade_verdict_add_diagnosis(grade_verdict *v, const char *id, const char *hint,
                                 const char *evidence_fmt, ...)
    __attribute__((format(printf, 4, 5)));

// The area of each row (rows = true) or column of tensor t (GRADE_Y or GRADE_DX) of layer
// L: out[i] for i in [0, H) (dx) or [0, Ho) (y), in terms of L's conv layer (a transposed
// op's y has the areas of its adjoint's dx, and the other way round). Other tensors have no
// areas. A 3-d layer's planes all share the areas of their rows and columns; a 1-d layer has
// one row.
void grade_axis_areas(grade_area *out, const grade_layer *L, grade_tensor t, bool rows);

// `index` (flat, row-major in `shape`) as one index per axis in out[0..shape->rank).
void grade_unflatten(int64_t *out, int64_t index, const grade_shape *shape);

// Writes "(2, 3, 0, 0)" (the shape as Python prints it; "(4,)" for one axis) into buf.
void grade_format_shape(char *buf, size_t cap, const grade_shape *shape);
// Writes "dx[0, 1, 2, 3]": tensor `name` at flat `index` of `shape`.
void grade_format_index(char *buf, size_t cap, const char *name, int64_t index,
                        const grade_shape *shape);

#endif
