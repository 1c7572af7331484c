// grade_render: grading reports as the platforms read them. "convd" is the project's own JSON
// (the spec's fixed part plus every number of the verdict); "gradescope" is an autograder
// results.json (one test per problem and tensor, markdown or HTML output); "prairielearn" is
// an external grader's results.json (score in [0, 1], kept under 1 MB); "html" is a page for
// people. The HTML outputs draw each wrong tensor as an inline SVG heatmap.
#ifndef GRADE_RENDER_H
#define GRADE_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api_buf.h"
#include "api/grade/grade.h"

typedef enum {
    GRADE_FORMAT_CONVD,
    GRADE_FORMAT_GRADESCOPE,
    GRADE_FORMAT_PRAIRIELEARN,
    GRADE_FORMAT_HTML
} grade_format;

// The format called `name` ("convd", "gradescope", "prairielearn", "html"); false for others.
bool grade_format_parse(grade_format *f, const char *name);

// Where a problem came from: a seed (then its spec regenerates it) or explicit tensors.
typedef struct {
    char name[64];
    grade_layer layer;
    bool generated;
    uint64_t seed;
} grade_origin;

// One graded case: the problem's origin, what the student's code reported instead of each
// answer (error[t], shown when tensor t is not submitted), a note shown with every tensor
// (what the grader did about it, "your forward failed, so the reference cache was used"),
// the report, and for the pictures of a failed tensor t whose values were compared, the
// expected and the submitted values (pictured[t][0] and [1], report.tensor[t].numel each,
// in its expected shape). All heap, owned by the case; NULL when absent.
typedef struct {
    grade_origin origin;
    char *error[GRADE_NTENSORS];
    char *note;
    double *pictured[GRADE_NTENSORS][2];
    grade_report report;
} grade_case;

// Frees what the case owns (not the case itself).
void grade_case_free(grade_case *k);

// Whether format f (with HTML output for the platforms when `html`) draws pictures, so that
// the cases need their `pictured` values.
bool grade_format_pictures(grade_format f, bool html);

// PrairieLearn rejects results over 1 MB.
#define GRADE_PRAIRIELEARN_MAX_BYTES 1000000

// Writes the results of cases[0..n) in format f. In the convd format a single case (`batch`
// false) is the spec's object; a batch lists the cases and sums their scores. `html`: the
// Gradescope output is HTML (output_format "html") with a heatmap per wrong tensor, and
// PrairieLearn's failed tests carry their heatmap as an image.
void grade_render(api_buf *out, const grade_case *cases, size_t n, bool batch, grade_format f,
                  bool html);

// The generator spec of a problem, which `convd problem` and `convd check` accept back:
// {"name", "seed" (generated only), "op" (other families than conv2d), "dtype", "x_shape",
// "w_shape", "bias", "stride", "padding", "dilation", "groups", "padding_mode" (other modes
// than zeros), "output_padding" (transposed ops)}.
void grade_put_spec(api_buf *out, const grade_origin *o);

// The layer's v1 parameters as members of an object being written: ,"stride":[...],
// "padding":..., "dilation":[...], "groups":G, then "padding_mode" and "output_padding" when
// the layer has them. Lists have one entry per spatial axis (conv2d's padding one per side;
// a 1-d or 3-d padding that is one side larger is the "same" it came from).
void grade_put_layer_params(api_buf *out, const grade_layer *L);

// The shape of input `which` ("x", "w", "b" or "dy") of layer L in L's rank.
void grade_input_shape(grade_shape *s, const grade_layer *L, const char *which);

#endif
