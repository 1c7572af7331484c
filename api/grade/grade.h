// grade (api/grade/): the autograder. Its engine depends on core/ alone: grade_problem (the
// layer and its float64 reference answers), grade_verdict (one tensor judged, with tolerances),
// grade_mutant (which common mistake a wrong answer matches) and this header, which puts them
// together. grade_render writes a report for Gradescope or PrairieLearn (with api_buf and
// api/num); grade_json is the front door, bytes in and an api_response out, and the only part
// that needs api/ (the v1 request model and its JSON codec).
//
// This header: one problem, one submission, one report. The engine behind `convd check` and
// POST /v1/conv2d/check (for every op of the family): each tensor submitted (or required) gets a verdict, points when it
// passes, and a diagnosis when it fails; the report adds up the score.
#ifndef GRADE_H
#define GRADE_H

#include <stdbool.h>
#include <stdint.h>

#include "api/grade/grade_mutant.h"
#include "api/grade/grade_problem.h"
#include "api/grade/grade_verdict.h"

typedef struct {
    grade_tolerance tol;      // used when tol_given; otherwise the problem dtype's defaults
    bool tol_given;           // a given tolerance is final: no float32 fallback either
    double points[GRADE_NTENSORS];  // what each tensor is worth (default 1 each)
    bool required[GRADE_NTENSORS];  // graded even when not submitted (then failed, 0 points)
    int64_t diagnose_max_flops;     // no diagnosis for layers whose pass costs more (0: none)
} grade_options;

// Default: dtype tolerances with the float32 fallback, 1 point per tensor, nothing required,
// diagnosis for layers up to GRADE_DIAGNOSE_MAX_FLOPS per pass.
#define GRADE_DIAGNOSE_MAX_FLOPS 20000000
void grade_options_default(grade_options *o);

typedef struct {
    bool graded[GRADE_NTENSORS];        // submitted or required
    grade_verdict tensor[GRADE_NTENSORS]; // valid where graded
    bool passed;                        // every graded tensor passed (and at least one graded)
    double score, max_score;
    bool diagnosis_skipped;             // the layer was over the diagnosis budget
} grade_report;

// Judges submission sub[t] (present or not, for each tensor) against problem p.
// Returns false only without memory (the report is then incomplete).
bool grade_check(grade_report *r, const grade_problem *p, const grade_array sub[GRADE_NTENSORS],
                 const grade_options *o);

#endif
