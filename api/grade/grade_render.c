#include "api/grade/grade_render.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/num/num.h"

void grade_case_free(grade_case *k) {
    for (int t = 0; t < GRADE_NTENSORS; t++) {
        // one string given for every tensor is copied per tensor: each copy is its own
        free(k->error[t]);
        k->error[t] = NULL;
        for (int i = 0; i < 2; i++) {
            free(k->pictured[t][i]);
            k->pictured[t][i] = NULL;
        }
    }
    free(k->note);
    k->note = NULL;
}

bool grade_format_pictures(grade_format f, bool html) {
    return f == GRADE_FORMAT_HTML || (html && f != GRADE_FORMAT_CONVD);
}

bool grade_format_parse(grade_format *f, const char *name) {
    static const char *const names[] = {"convd", "gradescope", "prairielearn", "html"};
    for (int i = 0; i < 4; i++)
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
        char text[NUM_MAX_CHARS];
        api_buf_put(b, text, (size_t)(num_print_f64(text, v) - text));
    }
}

// A number for people: Python's repr.
static const char *number_text(char *buf, double v) {
    if (!isfinite(v)) {
        snprintf(buf, NUM_MAX_CHARS, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return buf;
    }
    *num_print_f64(buf, v) = '\0';
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
    // each input is shaped like the answer that is its gradient (dy like y)
    const grade_tensor like = strcmp(which, "dy") == 0  ? GRADE_Y
                              : strcmp(which, "b") == 0 ? GRADE_DB
                              : strcmp(which, "w") == 0 ? GRADE_DW
                                                        : GRADE_DX;
    grade_expected_shape(s, L, like);
}

// The layer's parameters per spatial axis (d, h, w) and per side (front, back, top, bottom,
// left, right).
typedef struct {
    int64_t stride[3], dilation[3], pad[6];
} layer_params;

static layer_params params_of(const grade_layer *L) {
    const conv_geom *g = &L->g;
    const grade_depth d = grade_layer_depth(L);
    return (layer_params){{d.stride, g->stride_h, g->stride_w},
                          {d.dilation, g->dilation_h, g->dilation_w},
                          {d.pad_front, d.pad_back, g->pad_top, g->pad_bottom, g->pad_left,
                           g->pad_right}};
}

// Whether every own axis has the same padding on both sides (else it came from "same").
static bool pads_symmetric(const grade_layer *L, const layer_params *q) {
    for (int a = 3 - L->spatial; a < 3; a++)
        if (q->pad[2 * a] != q->pad[2 * a + 1]) return false;
    return true;
}

// [v[a] for the family's own axes], as JSON.
static void put_axes(api_buf *b, const grade_layer *L, const int64_t *v, int step) {
    api_buf_put(b, "[", 1);
    for (int a = 3 - L->spatial; a < 3; a++)
        api_buf_printf(b, "%s%" PRId64, a > 3 - L->spatial ? "," : "", v[a * step]);
    api_buf_put(b, "]", 1);
}

void grade_put_layer_params(api_buf *out, const grade_layer *L) {
    const layer_params q = params_of(L);
    const bool conv2d = L->spatial == 2 && !L->transposed;
    api_buf_puts(out, ",\"stride\":");
    put_axes(out, L, q.stride, 1);
    api_buf_puts(out, ",\"padding\":");
    if (conv2d) // per side, as CS231n's graders have always read it
        api_buf_printf(out, "[%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "]", q.pad[2],
                       q.pad[3], q.pad[4], q.pad[5]);
    else if (pads_symmetric(L, &q))
        put_axes(out, L, q.pad, 2);
    else // only "same" pads one side more, and v1 has no per-side form for these ops
        api_buf_puts(out, "\"same\"");
    api_buf_puts(out, ",\"dilation\":");
    put_axes(out, L, q.dilation, 1);
    api_buf_printf(out, ",\"groups\":%" PRId64, L->g.groups);
    if (L->pad_mode != CONV_PAD_ZEROS)
        api_buf_printf(out, ",\"padding_mode\":\"%s\"", conv_pad_mode_name(L->pad_mode));
    if (L->transposed) {
        api_buf_puts(out, ",\"output_padding\":");
        put_axes(out, L, L->output_padding, 1);
    }
}

void grade_put_spec(api_buf *out, const grade_origin *o) {
    const grade_layer *L = &o->layer;
    grade_shape x, w;
    grade_input_shape(&x, L, "x");
    grade_input_shape(&w, L, "w");
    api_buf_puts(out, "{\"name\":");
    api_buf_json_string(out, o->name);
    if (o->generated) api_buf_printf(out, ",\"seed\":%" PRIu64, o->seed);
    if (L->spatial != 2 || L->transposed)
        api_buf_printf(out, ",\"op\":\"%s\"", grade_layer_family(L));
    api_buf_printf(out, ",\"dtype\":\"%s\",\"x_shape\":",
                   L->dtype == CONV_FLOAT64 ? "float64" : "float32");
    put_shape(out, &x);
    api_buf_puts(out, ",\"w_shape\":");
    put_shape(out, &w);
    api_buf_printf(out, ",\"bias\":%s", L->bias ? "true" : "false");
    grade_put_layer_params(out, L);
    api_buf_put(out, "}", 1);
}

// "(2, 2)" (the family's own axes of v, every `step`-th entry) for people.
static void put_axes_text(api_buf *b, const grade_layer *L, const int64_t *v, int step) {
    api_buf_put(b, "(", 1);
    for (int a = 3 - L->spatial; a < 3; a++)
        api_buf_printf(b, "%s%" PRId64, a > 3 - L->spatial ? ", " : "", v[a * step]);
    api_buf_puts(b, L->spatial == 1 ? ",)" : ")");
}

// "x (2, 3, 8, 9), w (4, 3, 3, 3), stride (2, 2), padding (1, 1, 1, 1), ..." for people
// (other ops than conv2d named first).
static void put_layer_line(api_buf *b, const grade_origin *o) {
    const grade_layer *L = &o->layer;
    const layer_params q = params_of(L);
    grade_shape x, w;
    char xs[96], ws[96];
    grade_input_shape(&x, L, "x");
    grade_input_shape(&w, L, "w");
    grade_format_shape(xs, sizeof xs, &x);
    grade_format_shape(ws, sizeof ws, &w);
    if (L->spatial != 2 || L->transposed) api_buf_printf(b, "%s: ", grade_layer_family(L));
    api_buf_printf(b, "x %s, w %s, stride ", xs, ws);
    put_axes_text(b, L, q.stride, 1);
    if (L->spatial == 2 && !L->transposed)
        api_buf_printf(b,
                       ", padding (top %" PRId64 ", bottom %" PRId64 ", left %" PRId64
                       ", right %" PRId64 ")",
                       q.pad[2], q.pad[3], q.pad[4], q.pad[5]);
    else if (pads_symmetric(L, &q)) {
        api_buf_puts(b, ", padding ");
        put_axes_text(b, L, q.pad, 2);
    } else {
        api_buf_puts(b, ", padding \"same\"");
    }
    bool dilated = false;
    for (int a = 0; a < 3; a++) dilated = dilated || q.dilation[a] > 1;
    if (dilated) {
        api_buf_puts(b, ", dilation ");
        put_axes_text(b, L, q.dilation, 1);
    }
    if (L->g.groups > 1) api_buf_printf(b, ", groups %" PRId64, L->g.groups);
    if (L->pad_mode != CONV_PAD_ZEROS)
        api_buf_printf(b, ", padding_mode %s", conv_pad_mode_name(L->pad_mode));
    if (L->transposed) {
        api_buf_puts(b, ", output_padding ");
        put_axes_text(b, L, L->output_padding, 1);
    }
    api_buf_printf(b, ", %s, %s", L->bias ? "with bias" : "no bias",
                   L->dtype == CONV_FLOAT64 ? "float64" : "float32");
    if (!grade_layer_divides_evenly(L))
        api_buf_puts(b, L->transposed ? ", output rows or columns that no input reaches (they "
                                        "hold the bias alone)"
                                      : ", the stride does not divide evenly (rows or columns "
                                        "after the last window)");
    if (o->generated) api_buf_printf(b, ", seed %" PRIu64, o->seed);
}

// Where the wrong values of v lie, in words; L's conv layer decides whether they are outputs
// (conv's y, a transposed op's dx) or input pixels.
static const char *pattern_sentence(const grade_verdict *v, const grade_layer *L) {
    // a transposed op's output where no input scatters holds its bias alone
    const bool scattered = L->transposed && v->tensor == GRADE_Y;
    switch (v->pattern) {
    case GRADE_PATTERN_LEFTOVER:
        return scattered ? "only in rows/columns after the last input's window, which no input "
                           "reaches (they hold the bias alone)"
                         : "only in rows/columns after the last window, which the stride never "
                           "reaches (their gradient is 0)";
    case GRADE_PATTERN_STRIDE_SKIPPED:
        return scattered ? "only in rows/columns between the inputs' windows, which a stride "
                           "larger than the kernel skips (they hold the bias alone)"
                         : "only in rows/columns between windows, which a stride larger than "
                           "the kernel skips (their gradient is 0)";
    case GRADE_PATTERN_UNREACHED:
        return scattered ? "only in outputs that no input reaches (they hold the bias alone)"
                         : "only in pixels that no window reaches, after the last window or "
                           "between windows (their gradient is 0)";
    case GRADE_PATTERN_BORDER:
        return grade_conv_role(L, v->tensor) == GRADE_Y
                   ? "only in outputs whose window overlaps the padding"
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
    char want[96], got[96], where[96], e[NUM_MAX_CHARS], s[NUM_MAX_CHARS];
    grade_format_shape(want, sizeof want, &v->expected_shape);
    api_buf_puts(b, "Layer: ");
    put_layer_line(b, &k->origin);
    api_buf_puts(b, "\n\n");
    if (k->note) {
        api_buf_puts(b, "Note: ");
        put_text(b, k->note, md);
        api_buf_puts(b, "\n\n");
    }
    if (!v->present) {
        api_buf_printf(b, "%s%s: no answer, 0 points%s (expected shape %s).", em, name, em, want);
        if (k->error[t]) {
            api_buf_puts(b, "\n\nWhat happened:\n");
            if (md)
                put_fenced(b, k->error[t]);
            else
                api_buf_puts(b, k->error[t]);
        } else {
            api_buf_puts(b, " Your code gave no answer for it.");
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
            if (v->has_pattern && !v->pattern_trivial)
                api_buf_printf(b, "- where: %s\n", pattern_sentence(v, &k->origin.layer));
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

// How many tensors the code gave no answer for, and the first thing it reported: a student
// whose code raised must read that at the top, not find it in each test.
static void put_failures_text(api_buf *b, const grade_case *cases, size_t n, bool md) {
    size_t missing = 0;
    const char *first = NULL;
    for (size_t c = 0; c < n; c++)
        for (int t = 0; t < GRADE_NTENSORS; t++)
            if (cases[c].report.graded[t] && !cases[c].report.tensor[t].present) {
                missing++;
                if (!first) first = cases[c].error[t];
            }
    if (!missing) return;
    api_buf_printf(b, "\n\nYour code gave no answer for %zu of the graded tensors (0 points "
                      "each).", missing);
    if (!first) return;
    // what happened and the grader's hint, without the traceback (each test shows it)
    api_buf_puts(b, md ? " First problem:\n\n```\n" : " First problem:\n");
    const char *end = strstr(first, "\n\nTraceback (most recent call last)");
    const size_t len = end ? (size_t)(end - first) : strlen(first);
    api_buf_put(b, first, len > 1000 ? 1000 : len);
    api_buf_puts(b, md ? "\n```" : "");
}

// "Score 24 / 30." and the mistakes found, for the top of a platform's page.
static void put_summary_text(api_buf *b, const grade_case *cases, size_t n, bool md) {
    double score, max_score;
    bool passed;
    totals(cases, n, &score, &max_score, &passed);
    char s[NUM_MAX_CHARS], m[NUM_MAX_CHARS];
    api_buf_printf(b, "Score %s / %s over %zu problem%s.", number_text(s, score),
                   number_text(m, max_score), n, n == 1 ? "" : "s");
    mistake_tally tally[32];
    const int found = tally_mistakes(tally, 32, cases, n);
    if (passed) api_buf_puts(b, " Every tensor is correct.");
    put_failures_text(b, cases, n, md);
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
// Pictures: HTML and SVG.

// Text as HTML: &, <, >, " and ' escaped (everything a student or a request wrote is text).
static void put_html(api_buf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': api_buf_puts(b, "&amp;"); break;
        case '<': api_buf_puts(b, "&lt;"); break;
        case '>': api_buf_puts(b, "&gt;"); break;
        case '"': api_buf_puts(b, "&quot;"); break;
        case '\'': api_buf_puts(b, "&#39;"); break;
        default: api_buf_put(b, s + i, 1);
        }
    }
}

// What `text` holds, escaped into b, and empties text.
static void put_html_of(api_buf *b, api_buf *text) {
    if (text->failed) b->failed = true;
    put_html(b, text->len ? text->data : "", text->len);
    api_buf_free(text);
}

enum {
    HEAT_WIDTH = 640,     // the picture's width at most, in pixels
    HEAT_MAX_PLANES = 48, // planes drawn at most (grading tensors have far fewer)
    HEAT_GAP = 8,         // between panels
    HEAT_LABEL = 12,      // a panel's label line
};

// An SVG heatmap of tensor t of case k (which must have its pictured values): one panel per
// plane of the last two axes, labelled by the leading indices, one cell per value; right
// values pale, wrong ones red (darker the larger the error, NaN and infinities black), each
// wrong cell with a <title> (shown on hover) giving its index, the expected and the
// submitted value. Wrong cells have class "wrong" and data-index, the flat index.
static void put_heatmap(api_buf *b, const grade_case *k, grade_tensor t) {
    const grade_verdict *v = &k->report.tensor[t];
    const double *want = k->pictured[t][0], *got = k->pictured[t][1];
    const grade_shape *s = &v->expected_shape;
    if (!want || !got || v->numel < 1 || s->rank < 1) return;
    const int64_t cols = s->dim[s->rank - 1], rows = s->rank >= 2 ? s->dim[s->rank - 2] : 1;
    const int64_t planes = v->numel / (rows * cols);
    const int64_t shown = planes < HEAT_MAX_PLANES ? planes : HEAT_MAX_PLANES;
    const int64_t side = rows > cols ? rows : cols;
    int64_t cell = 160 / side;
    cell = cell < 4 ? 4 : cell > 24 ? 24 : cell;
    const int64_t pw = cols * cell, ph = rows * cell + HEAT_LABEL;
    int64_t per_row = (HEAT_WIDTH + HEAT_GAP) / (pw + HEAT_GAP);
    per_row = per_row < 1 ? 1 : per_row > shown ? shown : per_row;
    const int64_t lines = (shown + per_row - 1) / per_row;
    const int64_t width = per_row * (pw + HEAT_GAP), height = lines * (ph + HEAT_GAP) + 14;
    double worst = 0;
    for (int64_t i = 0; i < v->numel; i++)
        if (isfinite(got[i]) && fabs(got[i] - want[i]) > worst) worst = fabs(got[i] - want[i]);
    const char *name = grade_tensor_name(t);
    api_buf_printf(b,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" data-tensor=\"%s\" "
                   "width=\"%" PRId64 "\" height=\"%" PRId64 "\" viewBox=\"0 0 %" PRId64 " %" PRId64
                   "\" role=\"img\" font-family=\"sans-serif\" font-size=\"9\"><title>%s: %" PRId64
                   " of %" PRId64 " values wrong (red; hover a cell for its values)</title>",
                   name, width, height, width, height, name, v->mismatches, v->numel);
    int rank = 0;
    const char *const *axes = grade_axis_names(&k->origin.layer, t, &rank);
    char e[NUM_MAX_CHARS], g[NUM_MAX_CHARS], where[96];
    for (int64_t q = 0; q < shown; q++) {
        const int64_t x0 = (q % per_row) * (pw + HEAT_GAP), y0 = (q / per_row) * (ph + HEAT_GAP);
        int64_t idx[GRADE_MAX_RANK];
        grade_unflatten(idx, q * rows * cols, s);
        api_buf_printf(b, "<text x=\"%" PRId64 "\" y=\"%" PRId64 "\">", x0, y0 + 9);
        for (int a = 0; a + 2 < s->rank && a < rank; a++)
            api_buf_printf(b, "%s%s=%" PRId64, a ? " " : "", axes[a], idx[a]);
        if (s->rank <= 2) api_buf_puts(b, name);
        api_buf_printf(b, "</text><rect x=\"%" PRId64 "\" y=\"%" PRId64 "\" width=\"%" PRId64
                          "\" height=\"%" PRId64 "\" fill=\"#e4ebf1\"/>",
                       x0, y0 + HEAT_LABEL, pw, rows * cell);
        for (int64_t i = 0; i < rows * cols; i++) {
            const int64_t flat = q * rows * cols + i;
            if (grade_within(got[flat], want[flat], &v->tol)) continue;
            const double f = isfinite(got[flat]) && worst > 0 ? fabs(got[flat] - want[flat]) / worst : 1;
            const int red = isfinite(got[flat]) ? 255 - (int)(75 * f) : 34;
            const int other = isfinite(got[flat]) ? 170 - (int)(170 * f) : 34;
            grade_format_index(where, sizeof where, name, flat, s);
            api_buf_printf(b,
                           "<rect class=\"wrong\" data-index=\"%" PRId64 "\" x=\"%" PRId64
                           "\" y=\"%" PRId64 "\" width=\"%" PRId64 "\" height=\"%" PRId64
                           "\" fill=\"rgb(%d,%d,%d)\"><title>%s: expected %s, got %s</title></rect>",
                           flat, x0 + (i % cols) * cell, y0 + HEAT_LABEL + (i / cols) * cell, cell,
                           cell, red, other, other, where, number_text(e, want[flat]),
                           number_text(g, got[flat]));
        }
    }
    if (shown < planes)
        api_buf_printf(b, "<text x=\"0\" y=\"%" PRId64 "\">%" PRId64 " more planes not drawn</text>",
                       height - 3, planes - shown);
    api_buf_puts(b, "</svg>");
}

// One tensor's verdict as HTML: the text report (escaped) and the heatmap when it failed.
static void put_verdict_html(api_buf *b, const grade_case *k, grade_tensor t) {
    const grade_verdict *v = &k->report.tensor[t];
    api_buf text = {0};
    put_verdict_text(&text, k, t, false);
    api_buf_printf(b, "<div class=\"verdict %s\"><pre>", v->passed ? "passed" : "failed");
    put_html_of(b, &text);
    api_buf_puts(b, "</pre>");
    if (!v->passed) put_heatmap(b, k, t);
    api_buf_puts(b, "</div>");
}

// The standard base64 of n bytes (what a data: URL carries).
static void put_base64(api_buf *b, const unsigned char *s, size_t n) {
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        const unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                           (i + 2 < n ? s[i + 2] : 0);
        const char quad[4] = {digits[v >> 18 & 63], digits[v >> 12 & 63],
                              i + 1 < n ? digits[v >> 6 & 63] : '=', i + 2 < n ? digits[v & 63] : '='};
        api_buf_put(b, quad, 4);
    }
}

static const char page_style[] =
    "body{font:15px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:60em;padding:0 1em;"
    "color:#1c2329}h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}"
    "pre{white-space:pre-wrap;background:#f4f6f8;padding:.6em;border-radius:4px}"
    ".passed>pre{border-left:4px solid #3a8a4a}.failed>pre{border-left:4px solid #c0392b}"
    "svg.heatmap{max-width:100%;height:auto}svg.heatmap rect.wrong:hover{stroke:#000}";

// A whole page: the summary, then every case's tensors.
static void render_html(api_buf *b, const grade_case *cases, size_t n) {
    double score, max_score;
    bool passed;
    totals(cases, n, &score, &max_score, &passed);
    char s[NUM_MAX_CHARS], m[NUM_MAX_CHARS];
    api_buf_printf(b,
                   "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta "
                   "name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>convd "
                   "report: %s / %s</title><style>%s</style></head><body><h1>Score %s / %s</h1><pre>",
                   number_text(s, score), number_text(m, max_score), page_style, s, m);
    api_buf summary = {0};
    put_summary_text(&summary, cases, n, false);
    put_html_of(b, &summary);
    api_buf_puts(b, "</pre>");
    for (size_t c = 0; c < n; c++)
        for (int t = 0; t < GRADE_NTENSORS; t++) {
            if (!cases[c].report.graded[t]) continue;
            api_buf h = {0};
            api_buf_printf(&h, "%s: %s", cases[c].origin.name, grade_tensor_name((grade_tensor)t));
            api_buf_puts(b, "<section><h2>");
            put_html_of(b, &h);
            api_buf_puts(b, "</h2>");
            put_verdict_html(b, &cases[c], (grade_tensor)t);
            api_buf_puts(b, "</section>");
        }
    api_buf_puts(b, "</body></html>\n");
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
    } else if (k->error[v->tensor]) {
        api_buf_puts(b, ",\"error\":");
        api_buf_json_string(b, k->error[v->tensor]);
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
    if (k->note) {
        api_buf_puts(b, ",\"note\":");
        api_buf_json_string(b, k->note);
    }
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

// How a platform's tests are written: with each test's full text (`detailed`; otherwise only
// PrairieLearn's one-line message, to stay under its size limit), and as HTML with pictures.
typedef struct {
    bool detailed, html;
} test_style;

// Writes one JSON object per graded tensor of every case, comma-separated: its "name", then
// what `put_fields` adds (a format's other fields), then the closing brace.
typedef void (*test_fields_fn)(api_buf *b, const grade_case *k, grade_tensor t,
                               const test_style *st);

static void put_tests(api_buf *b, const grade_case *cases, size_t n, test_fields_fn put_fields,
                      const test_style *st) {
    bool first = true;
    for (size_t c = 0; c < n; c++)
        for (int t = 0; t < GRADE_NTENSORS; t++) {
            if (!cases[c].report.graded[t]) continue;
            api_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
            first = false;
            put_test_name(b, &cases[c], (grade_tensor)t);
            put_fields(b, &cases[c], (grade_tensor)t, st);
            api_buf_put(b, "}", 1);
        }
}

static void put_gradescope_fields(api_buf *b, const grade_case *k, grade_tensor t,
                                  const test_style *st) {
    const grade_verdict *v = &k->report.tensor[t];
    api_buf_puts(b, ",\"score\":");
    put_number(b, v->points);
    api_buf_puts(b, ",\"max_score\":");
    put_number(b, v->max_points);
    api_buf_printf(b, ",\"status\":\"%s\",\"output\":", v->passed ? "passed" : "failed");
    api_buf text = {0};
    if (st->html) put_verdict_html(&text, k, t);
    else put_verdict_text(&text, k, t, true);
    put_text_as_string(b, &text);
    api_buf_printf(b, ",\"output_format\":\"%s\",\"tags\":[\"%s\"", st->html ? "html" : "md",
                   grade_tensor_name(t));
    for (int d = 0; d < v->n_diag; d++) api_buf_printf(b, ",\"%s\"", v->diag[d].id);
    api_buf_puts(b, "],\"visibility\":\"visible\",\"extra_data\":");
    put_verdict_json(b, k, v);
}

static void render_gradescope(api_buf *b, const grade_case *cases, size_t n, bool html) {
    double score, max_score;
    bool passed;
    totals(cases, n, &score, &max_score, &passed);
    api_buf_puts(b, "{\"score\":");
    put_number(b, score);
    api_buf_puts(b, ",\"output\":");
    api_buf summary = {0};
    if (html) {
        api_buf plain = {0};
        put_summary_text(&plain, cases, n, false);
        api_buf_puts(&summary, "<pre>");
        put_html_of(&summary, &plain);
        api_buf_puts(&summary, "</pre>");
    } else {
        put_summary_text(&summary, cases, n, true);
    }
    put_text_as_string(b, &summary);
    api_buf_printf(b, ",\"output_format\":\"%s\",\"visibility\":\"visible\",\"tests\":[",
                   html ? "html" : "md");
    const test_style st = {true, html};
    put_tests(b, cases, n, put_gradescope_fields, &st);
    api_buf_puts(b, "]}");
}

static void put_prairielearn_fields(api_buf *b, const grade_case *k, grade_tensor t,
                                    const test_style *st) {
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
    if (st->detailed) {
        put_verdict_text(&text, k, t, false);
        api_buf_puts(b, ",\"output\":");
        put_text_as_string(b, &text);
    }
    if (st->html && !v->passed && k->pictured[t][0]) {
        // PrairieLearn shows a test's images: the heatmap as an SVG data URL
        api_buf svg = {0};
        put_heatmap(&svg, k, t);
        api_buf_printf(b, ",\"images\":[{\"label\":\"where %s is wrong\",\"url\":\""
                          "data:image/svg+xml;base64,", grade_tensor_name(t));
        if (svg.failed) b->failed = true;
        put_base64(b, (const unsigned char *)(svg.len ? svg.data : ""), svg.len);
        api_buf_free(&svg);
        api_buf_puts(b, "\"}]");
    }
}

static void render_prairielearn(api_buf *b, const grade_case *cases, size_t n,
                                const test_style *st) {
    double score, max_score;
    bool passed;
    totals(cases, n, &score, &max_score, &passed);
    api_buf_puts(b, "{\"gradable\":true,\"score\":");
    put_number(b, max_score > 0 ? score / max_score : 0);
    char s[NUM_MAX_CHARS], m[NUM_MAX_CHARS];
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
    put_tests(b, cases, n, put_prairielearn_fields, st);
    api_buf_puts(b, "]}");
}

void grade_render(api_buf *out, const grade_case *cases, size_t n, bool batch, grade_format f,
                  bool html) {
    switch (f) {
    case GRADE_FORMAT_CONVD: render_convd(out, cases, n, batch); break;
    case GRADE_FORMAT_GRADESCOPE: render_gradescope(out, cases, n, html); break;
    case GRADE_FORMAT_HTML: render_html(out, cases, n); break;
    case GRADE_FORMAT_PRAIRIELEARN: {
        // the full result, or without each test's text and pictures when it is over the limit
        const size_t start = out->len;
        test_style st = {true, html};
        render_prairielearn(out, cases, n, &st);
        if (out->len - start > GRADE_PRAIRIELEARN_MAX_BYTES) {
            out->len = start;
            st = (test_style){false, false};
            render_prairielearn(out, cases, n, &st);
        }
        break;
    }
    }
}
