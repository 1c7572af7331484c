#include "api/grade/grade.h"

#include <string.h>

void grade_options_default(grade_options *o) {
    memset(o, 0, sizeof *o);
    for (int t = 0; t < GRADE_NTENSORS; t++) o->points[t] = 1;
    o->diagnose_max_flops = GRADE_DIAGNOSE_MAX_FLOPS;
}

bool grade_check(grade_report *r, const grade_problem *p, const grade_array sub[GRADE_NTENSORS],
                 const grade_options *o) {
    memset(r, 0, sizeof *r);
    grade_tolerance tol = o->tol;
    if (!o->tol_given) grade_tolerance_default(&tol, p->layer.dtype);
    const bool fallback = !o->tol_given && p->layer.dtype == CONV_FLOAT64;
    const bool diagnose = grade_layer_flops(&p->layer) <= o->diagnose_max_flops;
    bool ok = true, any = false;
    r->passed = true;
    for (int t = 0; t < GRADE_NTENSORS; t++) {
        if (!sub[t].present && !o->required[t]) continue;
        r->graded[t] = any = true;
        grade_verdict *v = &r->tensor[t];
        grade_verdict_compute(v, p, (grade_tensor)t, &sub[t], &tol, fallback);
        v->max_points = o->points[t];
        v->points = v->passed ? o->points[t] : 0;
        r->score += v->points;
        r->max_score += v->max_points;
        r->passed = r->passed && v->passed;
        if (v->passed || !sub[t].present) continue;
        if (diagnose) ok = grade_diagnose(v, p, &sub[t]) && ok;
        else r->diagnosis_skipped = true;
    }
    r->passed = r->passed && any;
    return ok;
}
