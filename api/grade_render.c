#include "api/grade_render.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/api_numbers.h"

bool grade_format_parse(grade_format *f, const char *name) {
    static const char *const names[] = {"convd", "gradescope", "prairielearn"};
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *f = (grade_format)i;
            return true;
        }
    return false;
}

// ---------------------------------------------------------------------------------------------
// Pieces of JSON and text.

// A number as JSON: the shortest text that reads back to it; non-finite values (which only a
// submission holds) as the strings "nan", "inf", "-inf", since JSON has no such numbers.
static void put_number(api_buf *b, double v) {
    if (isnan(v)) {
        api_buf_puts(b, "\"nan\"");
    } else if (isinf(v)) {
        api_buf_puts(b, v > 0 ? "\"inf\"" : "\"-inf\"");
    } else {
        char text[API_NUMBER_MAX_CHARS];
        api_buf_put(b, text, (size_t)(api_print_f64(text, v) - text));
    }
}

// A number for people: Python's repr.
static const char *number_text(char *buf, double v) {
    if (!isfinite(v)) {
        snprintf(buf, API_NUMBER_MAX_CHARS, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return buf;
    }
    *api_print_f64(buf, v) = '\0';
    return buf;
}

static void put_dims(api_buf *b, const int64_t *dims, int rank) {
    api_buf_put(b, "[", 1);
    for (int i = 0; i < rank; i++) api_buf_printf(b, "%s%" PRId64, i ? "," : "", dims[i]);
    api_buf_put(b, "]", 1);
}

static void put_shape(api_buf *b, const grade_shape *s) { put_dims(b, s->dim, s->rank); }

// {"n": 1, "c": 2, "h": 6, "w": 1}: a flat index of tensor t named by axis.
static void put_index(api_buf *b, const grade_layer *L, const grade_verdict *v, int64_t index) {
    int rank = 0;
    const char *const *axes = grade_axis_names(L, v->tensor, &rank);
    int64_t idx[GRADE_MAX_RANK];
    grade_unflatten(idx, index, &v->expected_shape);
    api_buf_put(b, "{", 1);
    for (int i = 0; i < rank; i++) api_buf_printf(b, "%s\"%s\":%" PRId64, i ? "," : "", axes[i], idx[i]);
    api_buf_put(b, "}", 1);
}

static void put_point(api_buf *b, const grade_layer *L, const grade_verdict *v,
                      const grade_point *p) {
    api_buf_puts(b, "{\"index\":");
    put_index(b, L, v, p->index);
    api_buf_puts(b, ",\"expected\":");
    put_number(b, p->expected);
    api_buf_puts(b, ",\"submitted\":");
    put_number(b, p->submitted);
    api_buf_put(b, "}", 1);
}

// Text for people: markdown (`md`: `*` and `_` outside code spans escaped, so that
// "i*stride" stays as written) or plain text.
static void put_text(api_buf *b, const char *s, bool md) {
    bool code = false;
    for (; *s; s++) {
        if (*s == '`') code = !code;
        if (md && !code && (*s == '*' || *s == '_')) api_buf_put(b, "\\", 1);
        api_buf_put(b, s, 1);
    }
}

// Takes what `text` holds as one JSON string into b, and empties text.
static void put_text_as_string(api_buf *b, api_buf *text) {
    api_buf_json_string(b, text->len ? text->data : "");
    if (text->failed) b->failed = true;
    api_buf_free(text);
}

void grade_input_shape(grade_shape *s, const grade_layer *L, const char *which) {
    const conv_geom *g = &L->g;
    if (strcmp(which, "dy") == 0) {
        grade_expected_shape(s, L, GRADE_Y);
    } else if (strcmp(which, "b") == 0) {
        *s = (grade_shape){1, {g->f}};
    } else if (strcmp(which, "w") == 0) {
        *s = L->rank == 2 ? (grade_shape){2, {g->kh, g->kw}}
                          : (grade_shape){4, {g->f, g->c / g->groups, g->kh, g->kw}};
    } else {
        const int64_t full[4] = {g->n, g->c, g->h, g->w};
        s->rank = L->rank;
        for (int i = 0; i < L->rank; i++) s->dim[i] = full[4 - L->rank + i];
    }
}

void grade_put_spec(api_buf *out, const grade_origin *o) {
    const grade_layer *L = &o->layer;
    const conv_geom *g = &L->g;
    grade_shape x, w;
    grade_input_shape(&x, L, "x");
    grade_input_shape(&w, L, "w");
    api_buf_puts(out, "{\"name\":");
    api_buf_json_string(out, o->name);
    if (o->generated) api_buf_printf(out, ",\"seed\":%" PRIu64, o->seed);
    api_buf_printf(out, ",\"dtype\":\"%s\",\"x_shape\":",
                   L->dtype == CONV_FLOAT64 ? "float64" : "float32");
    put_shape(out, &x);
    api_buf_puts(out, ",\"w_shape\":");
    put_shape(out, &w);
    api_buf_printf(out,
                   ",\"bias\":%s,\"stride\":[%" PRId64 ",%" PRId64 "],\"padding\":[%" PRId64
                   ",%" PRId64 ",%" PRId64 ",%" PRId64 "],\"dilation\":[%" PRId64 ",%" PRId64
                   "],\"groups\":%" PRId64 "}",
                   L->bias ? "true" : "false", g->stride_h, g->stride_w, g->pad_top,
                   g->pad_bottom, g->pad_left, g->pad_right, g->dilation_h, g->dilation_w,
                   g->groups);
}

// "x (2, 3, 8, 9), w (4, 3, 3, 3), stride (2, 2), padding (1, 1, 1, 1), ..." for people.
static void put_layer_line(api_buf *b, const grade_origin *o) {
    const grade_layer *L = &o->layer;
    const conv_geom *g = &L->g;
    grade_shape x, w;
    char xs[96], ws[96];
    grade_input_shape(&x, L, "x");
    grade_input_shape(&w, L, "w");
    grade_format_shape(xs, sizeof xs, &x);
    grade_format_shape(ws, sizeof ws, &w);
    api_buf_printf(b,
                   "x %s, w %s, stride (%" PRId64 ", %" PRId64 "), padding (top %" PRId64
                   ", bottom %" PRId64 ", left %" PRId64 ", right %" PRId64 ")",
                   xs, ws, g->stride_h, g->stride_w, g->pad_top, g->pad_bottom, g->pad_left,
                   g->pad_right);
    if (g->dilation_h > 1 || g->dilation_w > 1)
        api_buf_printf(b, ", dilation (%" PRId64 ", %" PRId64 ")", g->dilation_h, g->dilation_w);
    if (g->groups > 1) api_buf_printf(b, ", groups %" PRId64, g->groups);
    api_buf_printf(b, ", %s, %s", L->bias ? "with bias" : "no bias",
                   L->dtype == CONV_FLOAT64 ? "float64" : "float32");
    if (o->generated) api_buf_printf(b, ", seed %" PRIu64, o->seed);
}

static const char *pattern_sentence(const grade_verdict *v) {
    switch (v->pattern) {
    case GRADE_PATTERN_LEFTOVER:
        return "only in rows/columns after the last window, which the stride never reaches "
               "(their gradient is 0)";
    case GRADE_PATTERN_STRIDE_SKIPPED:
        return "only in rows/columns between windows, which a stride larger than the kernel "
               "skips (their gradient is 0)";
    case GRADE_PATTERN_UNREACHED:
        return "only in pixels that no window reaches, after the last window or between "
               "windows (their gradient is 0)";
    case GRADE_PATTERN_BORDER:
        return v->tensor == GRADE_Y ? "only in outputs whose window overlaps the zero padding"
                                    : "only in pixels within the padding width of the edge";
    case GRADE_PATTERN_INTERIOR:
        return "only away from the border (none near the padding, none in unreached pixels)";
    case GRADE_PATTERN_EVERYWHERE: return "all over the image, border and interior";
    default: return "nowhere";
    }
}

// `text` (a submission's own words) as a markdown code block whose fence is longer than any run
// of backticks in it: CommonMark ends a fenced block at a fence at least as long as the opening
// one, so with a fixed ``` the text could end the block and write markdown of its own.
static void put_fenced(api_buf *b, const char *text) {
    size_t longest = 0, run = 0;
    for (const char *p = text; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        if (run > longest) longest = run;
    }
    size_t fence = longest < 3 ? 3 : longest + 1;
    api_buf_put(b, "\n", 1);
    for (size_t i = 0; i < fence; i++) api_buf_put(b, "`", 1);
    api_buf_put(b, "\n", 1);
    api_buf_puts(b, text);
    api_buf_put(b, "\n", 1);
    for (size_t i = 0; i < fence; i++) api_buf_put(b, "`", 1);
}

// ---------------------------------------------------------------------------------------------
// One verdict for people, in markdown (`md`, Gradescope) or plain text (PrairieLearn).

static void put_verdict_text(api_buf *b, const grade_case *k, grade_tensor t, bool md) {
    const grade_verdict *v = &k->report.tensor[t];
    const char *em = md ? "**" : ""; // strong emphasis
    const char *name = grade_tensor_name(t);
    char want[96], got[96], where[96], e[API_NUMBER_MAX_CHARS], s[API_NUMBER_MAX_CHARS];
    grade_format_shape(want, sizeof want, &v->expected_shape);
    api_buf_puts(b, "Layer: ");
    put_layer_line(b, &k->origin);
    api_buf_puts(b, "\n\n");
    if (!v->present) {
        api_buf_printf(b, "%s%s: not submitted%s (expected shape %s).", em, name, em, want);
        if (k->error) {
            api_buf_puts(b, "\n\nYour code reported:\n");
            if (md)
                put_fenced(b, k->error);
            else
                api_buf_puts(b, k->error);
        }
        return;
    }
    if (v->passed) {
        api_buf_printf(b, "%s%s: correct%s (max abs error %s, rel_error %s).", em, name, em,
                       number_text(e, v->max_abs_error), number_text(s, v->rel_error));
        if (v->precision_warning)
            api_buf_puts(b, "\n\nWarning: your values agree only to float32 precision "
                            "(about 7 digits); compute in float64 to match exactly.");
        return;
    }
    grade_format_shape(got, sizeof got, &v->submitted_shape);
    if (!v->values_compared) {
        api_buf_printf(b, "%s%s: wrong shape%s: expected %s, got %s.", em, name, em, want, got);
    } else {
        if (!v->shape_ok)
            api_buf_printf(b, "%s%s: wrong shape%s %s (expected %s); values compared in order.\n\n",
                           em, name, em, got, want);
        if (v->mismatches == 0) {
            api_buf_printf(b, "The values are right.");
        } else {
            api_buf_printf(b,
                           "%s%s: wrong%s: %" PRId64 " of %" PRId64 " values are off "
                           "(a value passes when |yours - expected| <= %s + %s * |expected|).\n",
                           em, name, em, v->mismatches, v->numel, number_text(e, v->tol.atol),
                           number_text(s, v->tol.rtol));
            grade_format_index(where, sizeof where, name, v->worst.index, &v->expected_shape);
            api_buf_printf(b, "- largest error at %s: expected %s, got %s\n", where,
                           number_text(e, v->worst.expected), number_text(s, v->worst.submitted));
            api_buf_printf(b, "- max abs error %s, max rel error ", number_text(e, v->max_abs_error));
            api_buf_printf(b, "%s, rel_error (CS231n) ", number_text(e, v->max_rel_error));
            api_buf_printf(b, "%s\n", number_text(e, v->rel_error));
            if (v->nan_count + v->inf_count)
                api_buf_printf(b, "- %" PRId64 " values are NaN or infinite\n",
                               v->nan_count + v->inf_count);
            if (v->has_pattern)
                api_buf_printf(b, "- where: %s\n", pattern_sentence(v));
            api_buf_puts(b, "- first wrong values:");
            for (int i = 0; i < v->n_first; i++) {
                grade_format_index(where, sizeof where, name, v->first[i].index,
                                   &v->expected_shape);
                api_buf_printf(b, "%s %s expected %s got %s", i ? ";" : "", where,
                               number_text(e, v->first[i].expected),
                               number_text(s, v->first[i].submitted));
            }
        }
    }
    for (int i = 0; i < v->n_diag; i++) {
        api_buf_printf(b, "\n\n%sLikely mistake: `%s`.%s ", em, v->diag[i].id, em);
        put_text(b, v->diag[i].hint, md);
        api_buf_puts(b, "\n\nEvidence: ");
        put_text(b, v->diag[i].evidence, md);
    }
    if (v->n_diag == 0 && v->values_compared && v->mismatches > 0)
        api_buf_puts(b, k->report.diagnosis_skipped
                            ? "\n\nThe layer is too large for a diagnosis of known mistakes."
                            : "\n\nNo known mistake matches exactly; compare the largest error "
                              "and where the wrong values lie with your loops.");
}

// The mistakes found across cases, most frequent first: "- `id` (dx in 8 problems): hint".
typedef struct {
    const char *id, *hint;
    unsigned tensors;
    int cases;
} mistake_tally;

static int tally_mistakes(mistake_tally *out, int cap, const grade_case *cases, size_t n) {
    int count = 0;
    for (size_t c = 0; c < n; c++)
        for (int t = 0; t < GRADE_NTENSORS; t++) {
            const grade_verdict *v = &cases[c].report.tensor[t];
            if (!cases[c].report.graded[t]) continue;
            for (int d = 0; d < v->n_diag; d++) {
                int i = 0;
                while (i < count && strcmp(out[i].id, v->diag[d].id) != 0) i++;
                if (i == count) {
                    if (count == cap) continue;
                    out[count++] = (mistake_tally){v->diag[d].id, v->diag[d].hint, 0, 0};
                }
                out[i].tensors |= 1u << t;
                out[i].cases++;
            }
        }
    for (int i = 1; i < count; i++) // few entries: insertion sort, stable
        for (int j = i; j > 0 && out[j].cases > out[j - 1].cases; j--) {
            const mistake_tally tmp = out[j];
            out[j] = out[j - 1];
            out[j - 1] = tmp;
        }
    return count;
}

static void totals(const grade_case *cases, size_t n, double *score, double *max_score,
                   bool *passed) {
    *score = *max_score = 0;
    *passed = n > 0;
    for (size_t c = 0; c < n; c++) {
        *score += cases[c].report.score;
        *max_score += cases[c].report.max_score;
        *passed = *passed && cases[c].report.passed;
    }
}

// "Score 24 / 30." and the mistakes found, for the top of a platform's page.
static void put_summary_text(api_buf *b, const grade_case *cases, size_t n, bool md) {
    double score, max_score;
    bool passed;
    totals(cases, n, &score, &max_score, &passed);
    char s[API_NUMBER_MAX_CHARS], m[API_NUMBER_MAX_CHARS];
    api_buf_printf(b, "Score %s / %s over %zu problem%s.", number_text(s, score),
                   number_text(m, max_score), n, n == 1 ? "" : "s");
    mistake_tally tally[32];
    const int found = tally_mistakes(tally, 32, cases, n);
    if (passed) api_buf_puts(b, " Every tensor is correct.");
    if (found) api_buf_puts(b, "\n\nLikely mistakes:\n");
    for (int i = 0; i < found; i++) {
        api_buf_printf(b, "- `%s` (", tally[i].id);
        const char *sep = "";
        for (int t = 0; t < GRADE_NTENSORS; t++)
            if (tally[i].tensors & (1u << t)) {
                api_buf_printf(b, "%s%s", sep, grade_tensor_name((grade_tensor)t));
                sep = ", ";
            }
        api_buf_printf(b, "; %d time%s): ", tally[i].cases, tally[i].cases == 1 ? "" : "s");
        put_text(b, tally[i].hint, md);
        api_buf_put(b, "\n", 1);
    }
}

// ---------------------------------------------------------------------------------------------
// convd.

static void put_verdict_json(api_buf *b, const grade_case *k, const grade_verdict *v) {
    const grade_layer *L = &k->origin.layer;
    api_buf_printf(b, "{\"passed\":%s,\"points\":", v->passed ? "true" : "false");
    put_number(b, v->points);
    api_buf_puts(b, ",\"max_points\":");
    put_number(b, v->max_points);
    api_buf_printf(b, ",\"submitted\":%s", v->present ? "true" : "false");
    if (v->present) {
        api_buf_puts(b, ",\"shape\":{\"expected\":");
        put_shape(b, &v->expected_shape);
        api_buf_puts(b, ",\"submitted\":");
        put_shape(b, &v->submitted_shape);
        api_buf_printf(b, ",\"ok\":%s},\"values_compared\":%s", v->shape_ok ? "true" : "false",
                       v->values_compared ? "true" : "false");
        api_buf_printf(b, ",\"non_finite\":{\"nan\":%" PRId64 ",\"inf\":%" PRId64 "}",
                       v->nan_count, v->inf_count);
    } else if (k->error) {
        api_buf_puts(b, ",\"error\":");
        api_buf_json_string(b, k->error);
    }
    if (v->values_compared) {
        api_buf_printf(b, ",\"compared\":%" PRId64 ",\"mismatches\":%" PRId64, v->numel,
                       v->mismatches);
        api_buf_puts(b, ",\"max_abs_error\":");
        put_number(b, v->max_abs_error);
        api_buf_puts(b, ",\"max_rel_error\":");
        put_number(b, v->max_rel_error);
        api_buf_puts(b, ",\"rel_error\":");
        put_number(b, v->rel_error);
        api_buf_puts(b, ",\"tolerance\":{\"atol\":");
        put_number(b, v->tol.atol);
        api_buf_puts(b, ",\"rtol\":");
        put_number(b, v->tol.rtol);
        api_buf_put(b, "}", 1);
        if (v->mismatches) {
            api_buf_puts(b, ",\"worst\":");
            put_point(b, L, v, &v->worst);
            api_buf_puts(b, ",\"first_mismatches\":[");
            for (int i = 0; i < v->n_first; i++) {
                if (i) api_buf_put(b, ",", 1);
                put_point(b, L, v, &v->first[i]);
            }
            api_buf_put(b, "]", 1);
        }
        if (v->has_pattern) {
            api_buf_printf(b, ",\"pattern\":\"%s\",\"areas\":{", grade_pattern_name(v->pattern));
            for (int a = 0; a < GRADE_NAREAS; a++)
                api_buf_printf(b, "%s\"%s\":%" PRId64, a ? "," : "",
                               grade_area_name((grade_area)a), v->area_mismatches[a]);
            api_buf_put(b, "}", 1);
        }
    }
    api_buf_puts(b, ",\"warnings\":[");
    if (v->precision_warning)
        api_buf_puts(b, "\"passed only within float32 tolerance: compute in float64\"");
    api_buf_puts(b, "],\"diagnosis\":[");
    for (int i = 0; i < v->n_diag; i++) {
        api_buf_printf(b, "%s{\"id\":\"%s\",\"hint\":", i ? "," : "", v->diag[i].id);
        api_buf_json_string(b, v->diag[i].hint);
        api_buf_puts(b, ",\"evidence\":");
        api_buf_json_string(b, v->diag[i].evidence);
        api_buf_put(b, "}", 1);
    }
    api_buf_puts(b, "]}");
}

// The spec's object for one case: passed, score, max_score, tensors; plus the problem, and
// the case's name in a batch.
static void put_case_json(api_buf *b, const grade_case *k, bool named) {
    const grade_report *r = &k->report;
    api_buf_puts(b, "{");
    if (named) {
        api_buf_puts(b, "\"name\":");
        api_buf_json_string(b, k->origin.name);
        api_buf_puts(b, ",");
    }
    api_buf_printf(b, "\"passed\":%s,\"score\":", r->passed ? "true" : "false");
    put_number(b, r->score);
    api_buf_puts(b, ",\"max_score\":");
    put_number(b, r->max_score);
    api_buf_puts(b, ",\"problem\":");
    grade_put_spec(b, &k->origin);
    if (r->diagnosis_skipped) api_buf_puts(b, ",\"diagnosis_skipped\":true");
    api_buf_puts(b, ",\"tensors\":{");
    bool first = true;
    for (int t = 0; t < GRADE_NTENSORS; t++) {
        if (!r->graded[t]) continue;
        api_buf_printf(b, "%s\"%s\":", first ? "" : ",", grade_tensor_name((grade_tensor)t));
        put_verdict_json(b, k, &r->tensor[t]);
        first = false;
    }
    api_buf_puts(b, "}}");
}

static void render_convd(api_buf *b, const grade_case *cases, size_t n, bool batch) {
    if (!batch) {
        put_case_json(b, &cases[0], false);
        return;
    }
    double score, max_score;
    bool passed;
    totals(cases, n, &score, &max_score, &passed);
    api_buf_printf(b, "{\"passed\":%s,\"score\":", passed ? "true" : "false");
    put_number(b, score);
    api_buf_puts(b, ",\"max_score\":");
    put_number(b, max_score);
    mistake_tally tally[32];
    const int found = tally_mistakes(tally, 32, cases, n);
    api_buf_puts(b, ",\"mistakes\":[");
    for (int i = 0; i < found; i++) {
        api_buf_printf(b, "%s{\"id\":\"%s\",\"cases\":%d,\"hint\":", i ? "," : "", tally[i].id,
                       tally[i].cases);
        api_buf_json_string(b, tally[i].hint);
        api_buf_put(b, "}", 1);
    }
    api_buf_puts(b, "],\"cases\":[");
    for (size_t c = 0; c < n; c++) {
        if (c) api_buf_put(b, ",", 1);
        put_case_json(b, &cases[c], true);
    }
    api_buf_puts(b, "]}");
}

// ---------------------------------------------------------------------------------------------
// Gradescope and PrairieLearn: one test per case and graded tensor.

static void put_test_name(api_buf *b, const grade_case *k, grade_tensor t) {
    api_buf b_name = {0};
    api_buf_printf(&b_name, "%s: %s", k->origin.name, grade_tensor_name(t));
    put_text_as_string(b, &b_name);
}

// Writes one JSON object per graded tensor of every case, comma-separated: its "name", then
// what `put_fields` adds (a format's other fields), then the closing brace.
typedef void (*test_fields_fn)(api_buf *b, const grade_case *k, grade_tensor t, bool detailed);

static void put_tests(api_buf *b, const grade_case *cases, size_t n, test_fields_fn put_fields,
                      bool detailed) {
    bool first = true;
    for (size_t c = 0; c < n; c++)
        for (int t = 0; t < GRADE_NTENSORS; t++) {
            if (!cases[c].report.graded[t]) continue;
            api_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
            first = false;
            put_test_name(b, &cases[c], (grade_tensor)t);
            put_fields(b, &cases[c], (grade_tensor)t, detailed);
            api_buf_put(b, "}", 1);
        }
}

static void put_gradescope_fields(api_buf *b, const grade_case *k, grade_tensor t,
                                  bool detailed) {
    const grade_verdict *v = &k->report.tensor[t];
    api_buf_puts(b, ",\"score\":");
    put_number(b, v->points);
    api_buf_puts(b, ",\"max_score\":");
    put_number(b, v->max_points);
    api_buf_printf(b, ",\"status\":\"%s\",\"output\":", v->passed ? "passed" : "failed");
    api_buf text = {0};
    put_verdict_text(&text, k, t, true);
    put_text_as_string(b, &text);
    api_buf_printf(b, ",\"output_format\":\"md\",\"tags\":[\"%s\"", grade_tensor_name(t));
    for (int d = 0; d < v->n_diag; d++) api_buf_printf(b, ",\"%s\"", v->diag[d].id);
    api_buf_puts(b, "],\"visibility\":\"visible\",\"extra_data\":");
    put_verdict_json(b, k, v);
}

static void render_gradescope(api_buf *b, const grade_case *cases, size_t n) {
    double score, max_score;
    bool passed;
    totals(cases, n, &score, &max_score, &passed);
    api_buf_puts(b, "{\"score\":");
    put_number(b, score);
    api_buf_puts(b, ",\"output\":");
    api_buf summary = {0};
    put_summary_text(&summary, cases, n, true);
    put_text_as_string(b, &summary);
    api_buf_puts(b, ",\"output_format\":\"md\",\"visibility\":\"visible\",\"tests\":[");
    put_tests(b, cases, n, put_gradescope_fields, true);
    api_buf_puts(b, "]}");
}

// `detailed`: each test has its full text as "output"; otherwise only its one-line "message"
// (to stay under PrairieLearn's size limit).
static void put_prairielearn_fields(api_buf *b, const grade_case *k, grade_tensor t,
                                    bool detailed) {
    const grade_verdict *v = &k->report.tensor[t];
    api_buf_puts(b, ",\"description\":");
    api_buf layer = {0};
    put_layer_line(&layer, &k->origin);
    put_text_as_string(b, &layer);
    api_buf_puts(b, ",\"points\":");
    put_number(b, v->points);
    api_buf_puts(b, ",\"max_points\":");
    put_number(b, v->max_points);
    api_buf text = {0};
    api_buf_printf(&text, "%s", v->passed ? "correct" : "wrong");
    for (int d = 0; d < v->n_diag; d++)
        api_buf_printf(&text, "%s%s", d ? ", " : "; likely mistake: ", v->diag[d].id);
    api_buf_puts(b, ",\"message\":");
    put_text_as_string(b, &text);
    if (detailed) {
        put_verdict_text(&text, k, t, false);
        api_buf_puts(b, ",\"output\":");
        put_text_as_string(b, &text);
    }
}

static void render_prairielearn(api_buf *b, const grade_case *cases, size_t n, bool detailed) {
    double score, max_score;
    bool passed;
    totals(cases, n, &score, &max_score, &passed);
    api_buf_puts(b, "{\"gradable\":true,\"score\":");
    put_number(b, max_score > 0 ? score / max_score : 0);
    char s[API_NUMBER_MAX_CHARS], m[API_NUMBER_MAX_CHARS];
    api_buf message = {0};
    api_buf_printf(&message, "%s of %s points", number_text(s, score), number_text(m, max_score));
    mistake_tally tally[32];
    const int found = tally_mistakes(tally, 32, cases, n);
    for (int i = 0; i < found; i++)
        api_buf_printf(&message, "%s%s", i ? ", " : "; likely mistakes: ", tally[i].id);
    api_buf_puts(b, ",\"message\":");
    put_text_as_string(b, &message);
    api_buf_puts(b, ",\"output\":");
    api_buf summary = {0};
    put_summary_text(&summary, cases, n, false);
    put_text_as_string(b, &summary);
    api_buf_puts(b, ",\"tests\":[");
    put_tests(b, cases, n, put_prairielearn_fields, detailed);
    api_buf_puts(b, "]}");
}

void grade_render(api_buf *out, const grade_case *cases, size_t n, bool batch, grade_format f) {
    switch (f) {
    case GRADE_FORMAT_CONVD: render_convd(out, cases, n, batch); break;
    case GRADE_FORMAT_GRADESCOPE: render_gradescope(out, cases, n); break;
    case GRADE_FORMAT_PRAIRIELEARN: {
        const size_t start = out->len;
        render_prairielearn(out, cases, n, true);
        if (out->len - start > GRADE_PRAIRIELEARN_MAX_BYTES) {
            out->len = start;
            render_prairielearn(out, cases, n, false);
        }
        break;
    }
    }
}
