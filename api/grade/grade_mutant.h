// grade_mutant: the diagnosis. A mutant is the answer a known mistake gives (kernel not
// flipped for dx, stride ignored, `=` instead of `+=`, ...), computed in float64 by naive loops
// over one index map whose flags make the mistakes, or by a transformation of the reference
// (sign, layout, sums over the wrong axes). The map has three spatial axes (1-d and 2-d layers
// use the last ones) and reads x through the layer's padding mode; a transposed op is walked as
// its adjoint conv (its y is conv's dx, its dx conv's y), so one walk serves every op, and the
// ops' own mistakes (output_padding forgotten, a padding mode treated as zeros, ...) are
// mutants like the others. A failing submission is compared with every mutant of its tensor,
// and each one it matches is reported with a hint and the evidence.
//
// A mutant is only ever reported for a tensor that failed, and only when it differs from the
// reference on the problem at hand, so a correct submission is never diagnosed.
#ifndef GRADE_MUTANT_H
#define GRADE_MUTANT_H

#include <stdbool.h>
#include <stddef.h>

#include "api/grade/grade_problem.h"
#include "api/grade/grade_verdict.h"

// One known mistake: a stable id, the hint a student reads, and the tensors it shows in
// (bit 1 << grade_tensor each).
typedef struct {
    const char *id;
    const char *hint;
    unsigned tensors;
} grade_mutant;

extern const grade_mutant grade_mutants[];
extern const size_t grade_n_mutants;

// How a submission is compared with a candidate:
//   VALUES        same shape (up to axes of size 1) and every value within tolerance
//   SINGLE_TERMS  every value is either right or one single term of the sum it should be
//                 (or, for dx, the sum over filters at one window position): `=` where `+=`
//                 belongs, whatever the loop order; `data` holds one such answer
//   EMPTY         the submission has no values at all
//   SHAPE         the submission has the shape the mistake gives (its values are unknown:
//                 NumPy code making this mistake usually raises before it returns)
typedef enum {
    GRADE_MATCH_VALUES,
    GRADE_MATCH_SINGLE_TERMS,
    GRADE_MATCH_EMPTY,
    GRADE_MATCH_SHAPE
} grade_match;

#define GRADE_NO_MUTANT ((size_t)-1)

// One form of one mistake (or two at once) on one problem.
typedef struct {
    size_t mutant;      // index in grade_mutants
    size_t also;        // the second mistake of a pair, or GRADE_NO_MUTANT
    char variant[96];   // which form, for the evidence ("" when there is one form)
    grade_match match;
    grade_shape shape;  // what the mistake gives, in the problem's rank
    double *data;       // owned, row-major (NULL for EMPTY and SHAPE)
} grade_candidate;

typedef struct {
    grade_candidate *items;
    size_t count, cap;
} grade_candidates;

// Every candidate for tensor t of problem p, appended to *out (which starts zeroed).
// Returns false without memory (what was built stays in *out; free it either way).
bool grade_candidates_build(grade_candidates *out, const grade_problem *p, grade_tensor t);
void grade_candidates_free(grade_candidates *c);

// Adds to v (a verdict of grade_verdict_compute for `sub`) one diagnosis per mistake the
// submission matches, under v's tolerance; nothing when v passed. Single mistakes are tried
// first, then pairs of them, then `=` for `+=`; a submission none of them explains but whose
// shape is a mistake's gets that mistake (by its shape), and any other wrong shape gets the
// hint `wrong_shape`. Also notes a right answer in the wrong shape. Returns false without
// memory (v then holds what was found).
bool grade_diagnose(grade_verdict *v, const grade_problem *p, const grade_array *sub);

#endif
