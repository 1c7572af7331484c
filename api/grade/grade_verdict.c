#include "api/grade/grade_verdict.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void grade_tolerance_default(grade_tolerance *t, conv_dtype dt) {
    if (dt == CONV_FLOAT64) {
        t->atol = 1e-9;
        t->rtol = 1e-7;
    } else {
        t->atol = 1e-4;
        t->rtol = 1e-4;
    }
}

const char *grade_pattern_name(grade_pattern p) {
    static const char *const names[] = {"none",     "leftover", "stride_skipped", "unreached",
                                        "border",   "interior", "everywhere"};
    return names[p];
}

const char *grade_area_name(grade_area a) {
    static const char *const names[GRADE_NAREAS] = {"leftover", "stride_skipped", "border",
                                                    "interior"};
    return names[a];
}

bool grade_verdict_add_diagnosis(grade_verdict *v, const char *id, const char *hint,
                                 const char *evidence_fmt, ...) {
    if (v->n_diag >= GRADE_MAX_DIAGNOSES) return false;
    grade_diagnosis *d = &v->diag[v->n_diag++];
    d->id = id;
    d->hint = hint;
    va_list ap;
    va_start(ap, evidence_fmt);
    vsnprintf(d->evidence, sizeof d->evidence, evidence_fmt, ap);
    va_end(ap);
    return true;
}

void grade_unflatten(int64_t *out, int64_t index, const grade_shape *shape) {
    for (int i = shape->rank - 1; i >= 0; i--) {
        const int64_t d = shape->dim[i] > 0 ? shape->dim[i] : 1;
        out[i] = index % d;
        index /= d;
    }
}

// Appends "a, b, c" (the integers vals[0..n)) to buf at *used, never past cap.
static void format_list(char *buf, size_t cap, size_t *used, const int64_t *vals, int n) {
    for (int i = 0; i < n && *used < cap; i++) {
        const int w = snprintf(buf + *used, cap - *used, "%s%lld", i ? ", " : "",
                               (long long)vals[i]);
        *used += w > 0 ? (size_t)w : 0;
    }
    if (*used >= cap) *used = cap - 1;
}

void grade_format_shape(char *buf, size_t cap, const grade_shape *shape) {
    size_t used = (size_t)snprintf(buf, cap, "(");
    format_list(buf, cap, &used, shape->dim, shape->rank);
    snprintf(buf + used, cap - used, shape->rank == 1 ? ",)" : ")");
}

void grade_format_index(char *buf, size_t cap, const char *name, int64_t index,
                        const grade_shape *shape) {
    int64_t idx[GRADE_MAX_RANK];
    grade_unflatten(idx, index, shape);
    int w = snprintf(buf, cap, "%s[", name);
    size_t used = w > 0 && (size_t)w < cap ? (size_t)w : cap - 1;
    format_list(buf, cap, &used, idx, shape->rank);
    snprintf(buf + used, cap - used, "]");
}

void grade_axis_areas(grade_area *out, const grade_layer *L, grade_tensor t, bool rows) {
    const conv_geom *g = &L->g;
    const int64_t in = rows ? g->h : g->w, k = rows ? g->kh : g->kw;
    const int64_t s = rows ? g->stride_h : g->stride_w, d = rows ? g->dilation_h : g->dilation_w;
    const int64_t lo = rows ? g->pad_top : g->pad_left, hi = rows ? g->pad_bottom : g->pad_right;
    const int64_t outs = conv_out_size(in, k, s, d, lo, hi);
    if (grade_conv_role(L, t) == GRADE_Y) {
        for (int64_t r = 0; r < outs; r++) {
            const bool padded = r * s - lo < 0 || r * s + d * (k - 1) - lo >= in;
            out[r] = padded ? GRADE_AREA_BORDER : GRADE_AREA_INTERIOR;
        }
        return;
    }
    // dx: a pixel no tap of any window reaches is leftover when it lies beyond the first or
    // last pixel reached, and skipped when it lies between reached ones.
    for (int64_t i = 0; i < in; i++) out[i] = GRADE_AREA_LEFTOVER; // "not reached" for now
    int64_t first = in, last = -1;
    for (int64_t r = 0; r < outs; r++)
        for (int64_t a = 0; a < k; a++) {
            const int64_t i = r * s + a * d - lo;
            if (i < 0 || i >= in) continue;
            out[i] = GRADE_AREA_INTERIOR;
            if (i < first) first = i;
            if (i > last) last = i;
        }
    for (int64_t i = 0; i < in; i++) {
        if (out[i] == GRADE_AREA_INTERIOR)
            out[i] = i < lo || i >= in - hi ? GRADE_AREA_BORDER : GRADE_AREA_INTERIOR;
        else if (i > first && i < last)
            out[i] = GRADE_AREA_STRIDE_SKIPPED;
    }
}

bool grade_within(double s, double r, const grade_tolerance *tol) {
    return isfinite(s) && fabs(s - r) <= tol->atol + tol->rtol * fabs(r);
}

// The error statistics of s against r (n values each) under *tol, into v.
static void judge_values(grade_verdict *v, const double *r, const double *s, int64_t n,
                         const grade_tolerance *tol) {
    v->tol = *tol;
    v->numel = n;
    v->mismatches = 0;
    v->n_first = 0;
    v->max_abs_error = v->max_rel_error = v->rel_error = 0;
    bool worst_nonfinite = false;
    double worst_err = -1;
    for (int64_t i = 0; i < n; i++) {
        const bool finite = isfinite(s[i]);
        if (finite) {
            const double err = fabs(s[i] - r[i]);
            if (err > v->max_abs_error) v->max_abs_error = err;
            if (r[i] != 0 && err / fabs(r[i]) > v->max_rel_error)
                v->max_rel_error = err / fabs(r[i]);
            const double denom = fabs(s[i]) + fabs(r[i]);
            const double cs231n = err / (denom > 1e-8 ? denom : 1e-8);
            if (cs231n > v->rel_error) v->rel_error = cs231n;
        }
        if (grade_within(s[i], r[i], tol)) continue;
        const grade_point pt = {.index = i, .expected = r[i], .submitted = s[i]};
        if (v->n_first < GRADE_FIRST_MISMATCHES) v->first[v->n_first++] = pt;
        const double err = finite ? fabs(s[i] - r[i]) : INFINITY;
        if (!worst_nonfinite && (!finite || err > worst_err)) {
            v->worst = pt;
            worst_err = err;
            worst_nonfinite = !finite;
        }
        v->mismatches++;
    }
}

// Tallies the mismatches of y or dx by area and names the pattern they make.
static void find_pattern(grade_verdict *v, const grade_problem *p, const double *s) {
    const grade_layer *L = &p->layer;
    const conv_geom *g = &L->g;
    const bool is_y = grade_conv_role(L, v->tensor) == GRADE_Y;
    const int64_t rows = is_y ? conv_out_h(g) : g->h, cols = is_y ? conv_out_w(g) : g->w;
    // grading layers are small; larger ones are judged without a pattern
    enum { MAX_SIDE = 4096 };
    if (rows > MAX_SIDE || cols > MAX_SIDE) return;
    grade_area row_area[MAX_SIDE], col_area[MAX_SIDE];
    grade_axis_areas(row_area, L, v->tensor, true);
    grade_axis_areas(col_area, L, v->tensor, false);
    // the areas pixels can fall in: one alone (every pixel within the padding width of a
    // small padded image, say) tells the student nothing
    unsigned rows_in = 0, cols_in = 0, possible = 0;
    for (int64_t r = 0; r < rows; r++) rows_in |= 1u << row_area[r];
    for (int64_t c = 0; c < cols; c++) cols_in |= 1u << col_area[c];
    for (int a = 0; a < GRADE_NAREAS; a++)
        for (int b = 0; b < GRADE_NAREAS; b++)
            if ((rows_in >> a & 1) && (cols_in >> b & 1)) possible |= 1u << (a < b ? a : b);
    v->pattern_trivial = __builtin_popcount(possible) == 1;
    for (int64_t i = 0; i < v->numel; i++) {
        if (grade_within(s[i], p->ref[v->tensor][i], &v->tol)) continue;
        const grade_area ra = row_area[(i / cols) % rows], ca = col_area[i % cols];
        v->area_mismatches[ra < ca ? ra : ca]++;
    }
    const int64_t *a = v->area_mismatches;
    const int64_t unreached = a[GRADE_AREA_LEFTOVER] + a[GRADE_AREA_STRIDE_SKIPPED];
    v->has_pattern = true;
    if (v->mismatches == 0)
        v->pattern = GRADE_PATTERN_NONE;
    else if (unreached == v->mismatches)
        v->pattern = a[GRADE_AREA_STRIDE_SKIPPED] == 0 ? GRADE_PATTERN_LEFTOVER
                     : a[GRADE_AREA_LEFTOVER] == 0     ? GRADE_PATTERN_STRIDE_SKIPPED
                                                       : GRADE_PATTERN_UNREACHED;
    else if (a[GRADE_AREA_BORDER] == v->mismatches)
        v->pattern = GRADE_PATTERN_BORDER;
    else if (a[GRADE_AREA_INTERIOR] == v->mismatches)
        v->pattern = GRADE_PATTERN_INTERIOR;
    else
        v->pattern = GRADE_PATTERN_EVERYWHERE;
}

void grade_verdict_compute(grade_verdict *v, const grade_problem *p, grade_tensor t,
                           const grade_array *sub, const grade_tolerance *tol,
                           bool float32_fallback) {
    memset(v, 0, sizeof *v);
    v->tensor = t;
    v->tol = *tol;
    grade_expected_shape(&v->expected_shape, &p->layer, t);
    v->present = sub->present;
    if (!sub->present) return;
    v->submitted_shape = sub->shape;
    const int64_t n = grade_shape_numel(&sub->shape);
    for (int64_t i = 0; i < n; i++) {
        if (isnan(sub->data[i])) v->nan_count++;
        else if (isinf(sub->data[i])) v->inf_count++;
    }
    v->shape_ok = grade_shape_equal(&sub->shape, &v->expected_shape);
    v->values_compared = grade_shape_equal_squeezed(&sub->shape, &v->expected_shape);
    if (!v->values_compared) return;
    const double *ref = p->ref[t];
    judge_values(v, ref, sub->data, n, tol);
    if (v->mismatches > 0 && float32_fallback && v->nan_count + v->inf_count == 0) {
        grade_verdict loose = *v;
        grade_tolerance f32;
        grade_tolerance_default(&f32, CONV_FLOAT32);
        judge_values(&loose, ref, sub->data, n, &f32);
        if (loose.mismatches == 0) {
            *v = loose;
            v->precision_warning = true;
        }
    }
    if (t == GRADE_Y || t == GRADE_DX) find_pattern(v, p, sub->data);
    v->passed = v->shape_ok && v->mismatches == 0;
}
