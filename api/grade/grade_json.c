#include "api/grade/grade_json.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_buf.h"
#include "api/api_errors.h"
#include "api/codec/codec_json.h"
#include "api/codec/codec_json_parse.h"
#include "api/api_exec.h"
#include "api/api_model.h"
#include "api/api_validate.h"
#include "api/grade/grade.h"
#include "api/grade/grade_render.h"

_Static_assert(API_MAX_RANK <= GRADE_MAX_RANK, "a decoded tensor's shape must fit a grade_shape");

// ---------------------------------------------------------------------------------------------
// Reading the document. Tensors go through the v1 codec (codec_json_tensor); what is read here
// are the fields around them.

typedef struct {
    const codec_json_doc *doc;
    api_error *err;
    const char *format;        // the report format the caller asks for, over the body's; or NULL
    const char **content_type; // what the answer is (JSON, or HTML for the html format)
} reader;

// The member `name` of obj, or NULL when absent or null.
static const cJSON *field(const cJSON *obj, const char *name) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return item && !cJSON_IsNull(item) ? item : NULL;
}

// Appends s to buf (of cap bytes, holding *used), cutting it to fit: paths are for people.
static void append(char *buf, size_t cap, size_t *used, const char *s) {
    while (*s && *used + 1 < cap) buf[(*used)++] = *s++;
    buf[*used] = '\0';
}

// "path.name" ("name" at the top).
static const char *join(char *buf, size_t cap, const char *path, const char *name) {
    size_t used = 0;
    append(buf, cap, &used, path);
    append(buf, cap, &used, *path ? "." : "");
    append(buf, cap, &used, name);
    return buf;
}

// Every key of obj is one of known[0..n) and appears once.
static bool check_keys(const reader *r, const cJSON *obj, const char *const *known, int n,
                       const char *path) {
    char where[96], quoted[48], list[240];
    size_t used = 0;
    for (int k = 0; k < n && used < sizeof list; k++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", known[k]);
    for (const cJSON *e = obj->child; e; e = e->next) {
        const char *key = e->string ? e->string : "";
        join(where, sizeof where, path, api_quote(quoted, sizeof quoted, key));
        int k = 0;
        while (k < n && strcmp(known[k], key) != 0) k++;
        if (k == n)
            return api_fail(r->err, API_E_UNKNOWN_FIELD, where,
                            "unknown field \"%s\" in %s; the fields are %s", quoted,
                            *path ? path : "the body", list);
        for (const cJSON *f = obj->child; f != e; f = f->next)
            if (f->string && strcmp(f->string, key) == 0)
                return api_fail(r->err, API_E_DUPLICATE_FIELD, where,
                                "\"%s\" appears more than once; give each field once", where);
    }
    return true;
}

static bool need_object(const reader *r, const cJSON *item, const char *path, const char *what) {
    if (cJSON_IsObject(item)) return true;
    return api_fail(r->err, API_E_INVALID_TYPE, path, "%s must be an object (%s); got %s",
                    *path ? path : "the body", what, codec_json_type_name(item));
}

static bool whole(int64_t *out, double v) {
    if (!(v >= 0 && v <= 0x1p53) || v != (double)(int64_t)v) return false;
    *out = (int64_t)v;
    return true;
}

// A whole number >= 0, or a list of 1..max of them; *count gets how many.
static bool int_list(int64_t *out, int *count, int max, const reader *r, const cJSON *item,
                     const char *path, const char *expected) {
    if (!codec_json_whole_numbers(out, count, max, r->doc, item, path, expected,
                                API_E_INVALID_VALUE, r->err))
        return false;
    for (int i = 0; i < *count; i++)
        if (out[i] < 0) {
            char where[96];
            snprintf(where, sizeof where, "%s[%d]", path, i);
            const char *at = cJSON_IsNumber(item) ? path : where;
            return api_fail(r->err, API_E_INVALID_VALUE, at, "%s is %" PRId64 "; %s must be %s",
                            at, out[i], path, expected);
        }
    return true;
}

static bool read_string(const char **out, const reader *r, const cJSON *item, const char *path,
                        const char *expected) {
    if (!cJSON_IsString(item))
        return api_fail(r->err, API_E_INVALID_TYPE, path, "%s must be %s; got %s", path, expected,
                        codec_json_type_name(item));
    *out = item->valuestring;
    return true;
}

// The v1 layer parameters of obj (dtype, stride, padding, padding_mode, dilation, groups,
// output_padding) into req, written as v1 requests write them: one integer for every axis or
// one per spatial axis, padding also per side for conv2d; api_validate checks the counts
// against the op.
static bool read_layer_params(api_request *req, const reader *r, const cJSON *obj,
                              const char *path) {
    char where[96], quoted[48];
    const cJSON *item;
    const char *s = "";
    if ((item = field(obj, "dtype"))) {
        join(where, sizeof where, path, "dtype");
        if (!read_string(&s, r, item, where, "\"float32\" or \"float64\"")) return false;
        if (strcmp(s, "float32") == 0) req->dtype = CONV_FLOAT32;
        else if (strcmp(s, "float64") == 0) req->dtype = CONV_FLOAT64;
        else
            return api_fail(r->err, API_E_UNSUPPORTED_DTYPE, where,
                            "%s \"%s\" is not supported; use \"float32\" or \"float64\"", where,
                            api_quote(quoted, sizeof quoted, s));
    }
    static const char *const lists[] = {"stride", "dilation", "output_padding"};
    int64_t *const values[] = {req->stride, req->dilation, req->output_padding};
    int *const given[] = {&req->stride_given, &req->dilation_given, &req->output_padding_given};
    for (int i = 0; i < 3; i++) {
        if (!(item = field(obj, lists[i]))) continue;
        int64_t v[3];
        int n;
        if (!int_list(v, &n, 3, r, item, join(where, sizeof where, path, lists[i]),
                      "an integer or a list of one integer per spatial axis"))
            return false;
        for (int a = 0; a < 3; a++) values[i][a] = v[n == 1 ? 0 : a < n ? a : n - 1];
        *given[i] = n;
    }
    if ((item = field(obj, "padding"))) {
        const char *expected = "an integer, one per spatial axis, [top, bottom, left, right] "
                               "(conv2d), \"same\" or \"valid\"";
        join(where, sizeof where, path, "padding");
        req->padding_given = 1;
        if (cJSON_IsString(item)) {
            if (strcmp(item->valuestring, "same") == 0) req->pad_mode = API_PAD_SAME;
            else if (strcmp(item->valuestring, "valid") == 0) req->pad_mode = API_PAD_VALID;
            else
                return api_fail(r->err, API_E_INVALID_VALUE, where, "%s \"%s\" is not %s", where,
                                api_quote(quoted, sizeof quoted, item->valuestring), expected);
        } else {
            int64_t v[4];
            int n;
            if (!int_list(v, &n, 4, r, item, where, expected)) return false;
            if (n == 4) memcpy(req->padding, v, sizeof v);
            else
                for (int a = 0; a < 3; a++)
                    req->padding[2 * a] = req->padding[2 * a + 1] = v[n == 1 ? 0 : a < n ? a : 0];
            req->padding_given = n;
        }
    }
    if ((item = field(obj, "padding_mode"))) {
        const char *expected = "\"zeros\", \"reflect\", \"replicate\" or \"circular\"";
        join(where, sizeof where, path, "padding_mode");
        if (!read_string(&s, r, item, where, expected)) return false;
        int mode = CONV_PAD_ZEROS;
        while (mode <= CONV_PAD_CIRCULAR && strcmp(s, conv_pad_mode_name((conv_pad_mode)mode)))
            mode++;
        if (mode > CONV_PAD_CIRCULAR)
            return api_fail(r->err, API_E_INVALID_VALUE, where, "%s \"%s\" is not one of %s",
                            where, api_quote(quoted, sizeof quoted, s), expected);
        req->padding_mode = (conv_pad_mode)mode;
    }
    if ((item = field(obj, "groups"))) {
        int n;
        join(where, sizeof where, path, "groups");
        if (!cJSON_IsNumber(item))
            return api_fail(r->err, API_E_INVALID_TYPE, where, "%s must be an integer; got %s",
                            where, codec_json_type_name(item));
        if (!int_list(&req->groups, &n, 1, r, item, where, "an integer")) return false;
    }
    return true;
}

// The problem's op, the family's name ("conv2d" when absent), into L.
static bool read_op(grade_layer *L, const reader *r, const cJSON *obj, const char *path) {
    const char *families = "\"conv1d\", \"conv2d\", \"conv3d\", \"conv_transpose1d\", "
                           "\"conv_transpose2d\" or \"conv_transpose3d\"";
    const cJSON *item = field(obj, "op");
    char where[96], quoted[48];
    const char *name = "conv2d";
    join(where, sizeof where, path, "op");
    if (item && !read_string(&name, r, item, where, families)) return false;
    if (!grade_family_parse(L, name))
        return api_fail(r->err, API_E_INVALID_VALUE, where,
                        "%s \"%s\" is not one of %s: a problem names the family, and a check "
                        "grades its forward (y) and backward (dx, dw, db) answers alike",
                        where, api_quote(quoted, sizeof quoted, name), families);
    return true;
}

// The v1 op that validates a problem of L's family: its forward, or its backward with dy.
static const char *validating_op(char *buf, size_t cap, const grade_layer *L, bool backward) {
    snprintf(buf, cap, "%s.%s", grade_layer_family(L), backward ? "backward" : "forward");
    return buf;
}

// The layer of a validated request (dtype, bias and family already in L). Grading takes a
// transposed op's output_padding below its stride only (one not below it adds rows that the
// adjoint conv computes beyond x, which the mistakes' index maps do not model).
static bool layer_from_plan(grade_layer *L, const api_plan *plan, const api_request *req,
                            const reader *r, const char *path) {
    L->rank = plan->rank;
    L->pad_mode = req->padding_mode;
    L->g = plan->geom;
    memset(&L->depth, 0, sizeof L->depth);
    memset(L->output_padding, 0, sizeof L->output_padding);
    if (L->spatial == 3) {
        const conv3d_geom *g3 = &plan->geom3;
        L->g = (conv_geom){.n = g3->n, .c = g3->c, .h = g3->h, .w = g3->w, .f = g3->f,
                           .kh = g3->kh, .kw = g3->kw, .groups = g3->groups,
                           .stride_h = g3->stride[1], .stride_w = g3->stride[2],
                           .dilation_h = g3->dilation[1], .dilation_w = g3->dilation[2],
                           .pad_top = g3->padding[2], .pad_bottom = g3->padding[3],
                           .pad_left = g3->padding[4], .pad_right = g3->padding[5]};
        L->depth = (grade_depth){g3->d, g3->kd, g3->stride[0], g3->dilation[0], g3->padding[0],
                                 g3->padding[1]};
    }
    if (!L->transposed) return true;
    // req's output_padding is (h, w) for 1-d and 2-d ops (1-d reads w), (d, h, w) for 3-d
    for (int a = 3 - L->spatial; a < 3; a++) {
        const int axis = L->spatial == 3 ? a : a - 1;
        L->output_padding[a] = req->output_padding[axis];
        if (req->output_padding[axis] < req->stride[axis]) continue;
        char where[96], param[48];
        api_param_path(param, sizeof param, "output_padding", req->output_padding_given,
                       L->spatial == 1 ? 0 : axis, 0);
        join(where, sizeof where, path, param);
        return api_fail(r->err, API_E_INVALID_VALUE, where,
                        "%s is %" PRId64 ", not smaller than the stride (%" PRId64 "): PyTorch "
                        "takes it below the dilation too, but a graded problem keeps "
                        "output_padding below the stride",
                        where, req->output_padding[axis], req->stride[axis]);
    }
    return true;
}

// Points an error of the v1 validation (paths "x.shape[1]", "stride", ...) into the problem
// at `path`; a generator spec names shapes "x_shape", "w_shape" and the bias "bias".
static void locate_error(api_error *err, const char *path, bool generated) {
    char inner[sizeof err->path];
    snprintf(inner, sizeof inner, "%s", err->path);
    static const char *const renames[][2] = {{"x.shape", "x_shape"}, {"w.shape", "w_shape"},
                                             {"b.shape", "bias"}, {"b", "bias"}};
    const char *rest = inner, *renamed = "";
    for (size_t i = 0; generated && i < sizeof renames / sizeof *renames && !*renamed; i++) {
        const size_t n = strlen(renames[i][0]);
        if (strncmp(inner, renames[i][0], n) == 0 && (inner[n] == '\0' || inner[n] == '[')) {
            renamed = renames[i][1];
            rest = strcmp(renamed, "bias") == 0 ? "" : inner + n;
        }
    }
    size_t used = 0;
    append(err->path, sizeof err->path, &used, path);
    append(err->path, sizeof err->path, &used, *path && *inner ? "." : "");
    append(err->path, sizeof err->path, &used, renamed);
    append(err->path, sizeof err->path, &used, rest);
}

// ---------------------------------------------------------------------------------------------
// Problems.

static const char *const suite_keys[] = {"suite", "seed", "index"};
static const char *const spec_keys[] = {
    "name",   "seed",    "op",           "dtype",    "x_shape", "w_shape",       "bias",
    "stride", "padding", "padding_mode", "dilation", "groups",  "output_padding"};
static const char *const explicit_keys[] = {
    "name",   "op",      "dtype",        "x",        "w",      "b",             "dy",
    "stride", "padding", "padding_mode", "dilation", "groups", "output_padding"};
#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

static bool read_seed(uint64_t *seed, const reader *r, const cJSON *obj, const char *path) {
    const cJSON *item = field(obj, "seed");
    *seed = 0;
    if (!item) return true;
    char where[96];
    int64_t v;
    join(where, sizeof where, path, "seed");
    if (!cJSON_IsNumber(item) || !whole(&v, item->valuedouble))
        return api_fail(r->err, API_E_INVALID_VALUE, where,
                        "%s must be a whole number from 0 to 2^53; got %s", where,
                        cJSON_IsNumber(item) ? "another number" : codec_json_type_name(item));
    *seed = (uint64_t)v;
    return true;
}

// {"suite", "seed", "index"}: the suite's entries in *entries/*count, and the index asked
// for (-1 when absent and `index_optional`).
static bool read_suite(const grade_suite_entry **entries, size_t *count, uint64_t *seed,
                       int64_t *index, bool index_optional, const reader *r, const cJSON *obj,
                       const char *path) {
    char where[96], quoted[48];
    const char *name = "";
    if (!check_keys(r, obj, suite_keys, COUNT(suite_keys), path) ||
        !read_string(&name, r, field(obj, "suite"), join(where, sizeof where, path, "suite"),
                     "the name of a suite"))
        return false;
    if (!(*entries = grade_suite(name, count)))
        return api_fail(r->err, API_E_INVALID_VALUE, where,
                        "%s \"%s\" is not a suite; the suites are \"cs231n\", "
                        "\"cs231n_uneven\", \"full\" and \"family\"",
                        where, api_quote(quoted, sizeof quoted, name));
    if (!read_seed(seed, r, obj, path)) return false;
    // Each problem's seed (seed + index) is written into its spec as a JSON number: past 2^53 a
    // client's double would round it, regenerate another problem and grade an exact answer wrong.
    if (*seed > ((uint64_t)1 << 53) - (*count - 1))
        return api_fail(r->err, API_E_INVALID_VALUE, join(where, sizeof where, path, "seed"),
                        "%s must be at most 2^53 - %zu, so that every problem's seed (seed + "
                        "index) is exact in JSON; got %" PRIu64,
                        where, *count - 1, *seed);
    const cJSON *item = field(obj, "index");
    join(where, sizeof where, path, "index");
    *index = -1;
    if (!item && index_optional) return true;
    if (!item)
        return api_fail(r->err, API_E_MISSING_FIELD, where,
                        "%s is required: which of the suite's %zu problems (0 to %zu)", where,
                        *count, *count - 1);
    if (!cJSON_IsNumber(item) || !whole(index, item->valuedouble) || *index >= (int64_t)*count)
        return api_fail(r->err, API_E_INVALID_VALUE, where,
                        "%s must be a whole number from 0 to %zu (the suite has %zu problems)",
                        where, *count - 1, *count);
    return true;
}

static void origin_from_suite(grade_origin *o, const grade_suite_entry *e, uint64_t seed,
                              size_t i) {
    snprintf(o->name, sizeof o->name, "%s", e->name);
    o->layer = e->layer;
    o->generated = true;
    o->seed = grade_suite_problem_seed(seed, i);
}

// The "name" of obj into o->name, which keeps what it holds when there is none.
static bool read_name(grade_origin *o, const reader *r, const cJSON *obj, const char *path) {
    const cJSON *item = field(obj, "name");
    char where[96];
    const char *name = "";
    if (!item) return true;
    if (!read_string(&name, r, item, join(where, sizeof where, path, "name"), "a string"))
        return false;
    snprintf(o->name, sizeof o->name, "%s", name);
    return true;
}

// A generator spec (see grade_put_spec): the layer, checked like a v1 forward request.
static bool read_spec(grade_origin *o, const reader *r, const cJSON *obj, const char *path,
                      const api_options *opt) {
    if (!check_keys(r, obj, spec_keys, COUNT(spec_keys), path) ||
        !read_name(o, r, obj, path) || !read_seed(&o->seed, r, obj, path))
        return false;
    o->generated = true;
    if (!read_op(&o->layer, r, obj, path)) return false;
    api_request req;
    api_request_init(&req);
    req.dtype = CONV_FLOAT64; // grading follows NumPy's default
    if (!read_layer_params(&req, r, obj, path)) return false;
    static const char *const shapes[] = {"x_shape", "w_shape"};
    char where[96];
    for (int i = 0; i < 2; i++) {
        const cJSON *item = field(obj, shapes[i]);
        join(where, sizeof where, path, shapes[i]);
        if (!item)
            return api_fail(r->err, API_E_MISSING_FIELD, where,
                            "%s is required: a generator spec has the shapes of x and w", where);
        int64_t dims[5];
        int n;
        if (!int_list(dims, &n, 5, r, item, where, "a list of sizes such as [2, 3, 5, 5]") ||
            !api_tensor_set_shape(&req.in[i == 0 ? API_IN_X : API_IN_W], dims, n, where, r->err))
            return false;
    }
    const cJSON *bias = field(obj, "bias");
    if (bias && !cJSON_IsBool(bias))
        return api_fail(r->err, API_E_INVALID_TYPE, join(where, sizeof where, path, "bias"),
                        "%s must be true or false; got %s", where, codec_json_type_name(bias));
    const bool with_bias = !bias || cJSON_IsTrue(bias);
    // b has one value per output channel: w's first axis for conv (a rank-2 conv2d w has
    // none: one filter), its second times the groups for a transposed op
    const api_tensor *w = &req.in[API_IN_W];
    const int64_t groups = req.groups > 0 ? req.groups : 1;
    const int64_t filters = w->rank < 3 ? 1 : o->layer.transposed ? w->shape[1] * groups
                                                                   : w->shape[0];
    if (with_bias && !api_tensor_set_shape(&req.in[API_IN_B], &filters, 1, "b", r->err))
        return false;
    api_plan plan;
    char op[48];
    if (!api_validate(&plan, &req, validating_op(op, sizeof op, &o->layer, false), opt,
                      r->err)) {
        locate_error(r->err, path, true);
        return false;
    }
    o->layer.dtype = req.dtype;
    o->layer.bias = with_bias;
    return layer_from_plan(&o->layer, &plan, &req, r, path);
}

// A tensor's values as float64, taken over from t (which is left empty).
static double *take_doubles(api_tensor *t, conv_dtype dt) {
    double *out;
    if (dt == CONV_FLOAT64 && t->owned == t->data) {
        out = t->data;
        t->owned = NULL;
    } else if ((out = malloc((size_t)t->numel * sizeof *out))) {
        for (int64_t i = 0; i < t->numel; i++)
            out[i] = dt == CONV_FLOAT64 ? ((const double *)t->data)[i]
                                        : ((const float *)t->data)[i];
    }
    api_tensor_free(t);
    return out;
}

// Explicit tensors x, w, b?, dy? with the v1 fields around them.
static bool read_explicit(grade_problem *p, grade_origin *o, bool *has_dy, const reader *r,
                          const cJSON *obj, const char *path, const api_options *opt) {
    if (!check_keys(r, obj, explicit_keys, COUNT(explicit_keys), path) ||
        !read_name(o, r, obj, path) || !read_op(&o->layer, r, obj, path))
        return false;
    api_request req;
    api_request_init(&req);
    req.dtype = CONV_FLOAT64;
    bool ok = read_layer_params(&req, r, obj, path);
    char where[96];
    for (int i = 0; ok && i < API_IN_COUNT; i++) {
        const cJSON *item = field(obj, api_input_names[i]);
        if (item)
            ok = codec_json_tensor(&req.in[i], r->doc, item,
                                   join(where, sizeof where, path, api_input_names[i]), req.dtype,
                                   r->err);
    }
    *has_dy = req.in[API_IN_DY].rank > 0;
    api_plan plan;
    char op[48];
    if (ok && !api_validate(&plan, &req, validating_op(op, sizeof op, &o->layer, *has_dy), opt,
                            r->err)) {
        locate_error(r->err, path, false);
        ok = false;
    }
    o->layer.dtype = req.dtype;
    o->layer.bias = req.in[API_IN_B].rank > 0;
    ok = ok && layer_from_plan(&o->layer, &plan, &req, r, path);
    if (ok) {
        o->generated = false;
        double *in[API_IN_COUNT] = {NULL};
        for (int i = 0; i < API_IN_COUNT; i++)
            if (req.in[i].rank) in[i] = take_doubles(&req.in[i], req.dtype);
        grade_shape y;
        grade_expected_shape(&y, &o->layer, GRADE_Y);
        if (!*has_dy) in[API_IN_DY] = calloc((size_t)grade_shape_numel(&y), sizeof(double));
        ok = grade_problem_adopt(p, &o->layer, in[API_IN_X], in[API_IN_W], in[API_IN_B],
                                 in[API_IN_DY]) ||
             api_fail(r->err, API_E_OUT_OF_MEMORY, "", "out of memory for the problem");
    }
    api_request_free(&req);
    return ok;
}

// The bytes a problem of layer L holds: its inputs and reference answers as doubles (each
// input is shaped like one answer: x like dx, w like dw, b like db, dy like y), core's
// scratch, and `text_per_number` bytes of answer text per input number.
static size_t problem_bytes(const grade_layer *L, const api_options *opt, size_t text_per_number) {
    int64_t numbers = 0;
    for (int t = 0; t < GRADE_NTENSORS; t++) {
        grade_shape s;
        grade_expected_shape(&s, L, (grade_tensor)t);
        numbers += grade_shape_numel(&s);
    }
    int threads = opt->threads > 0 ? opt->threads : 1;
    return (size_t)numbers * (2 * sizeof(double) + text_per_number) +
           grade_layer_workspace(L, threads, opt->workspace_cap);
}

// Before a problem of layer L is generated (its references computed: four passes): the work
// of the request so far (*work) within max_flops, and its memory admitted.
static bool before_generating(const grade_layer *L, const reader *r, const api_options *opt,
                              int64_t *work, size_t text_per_number, const char *path) {
    *work += 4 * grade_layer_flops(L);
    if (*work > opt->max_flops)
        return api_fail(r->err, API_E_TOO_MUCH_WORK, path,
                        "grading these problems needs %.3g FLOPs; this server takes at most %.3g "
                        "per request (max_flops): send fewer or smaller problems",
                        (double)*work, (double)opt->max_flops);
    return api_admit(opt, problem_bytes(L, opt, text_per_number), 4 * grade_layer_flops(L),
                     "a generated problem", r->err);
}

// A problem in any of its three forms, generated or adopted into *p. *work adds up what
// the problems cost, refused before one is generated past max_flops.
static bool read_problem(grade_problem *p, grade_origin *o, bool *has_dy, const reader *r,
                         const cJSON *obj, const char *path, const api_options *opt,
                         int64_t *work) {
    if (!need_object(r, obj, path,
                     "v1 fields with tensors, a generator spec with a seed, or a suite problem"))
        return false;
    *has_dy = true;
    if (field(obj, "suite")) {
        const grade_suite_entry *entries;
        size_t count;
        uint64_t seed;
        int64_t index;
        if (!read_suite(&entries, &count, &seed, &index, false, r, obj, path)) return false;
        origin_from_suite(o, &entries[index], seed, (size_t)index);
    } else if (field(obj, "seed")) {
        if (!read_spec(o, r, obj, path, opt)) return false;
    } else {
        return read_explicit(p, o, has_dy, r, obj, path, opt);
    }
    return before_generating(&o->layer, r, opt, work, 0, path) &&
           (grade_problem_generate(p, &o->layer, o->seed) ||
            api_fail(r->err, API_E_OUT_OF_MEMORY, "", "out of memory for the problem"));
}

// ---------------------------------------------------------------------------------------------
// Submissions.

// The shape of a nested array holding no numbers at all, [[[], []], [[], []]] say (what
// NumPy's tolist() makes of an empty array), if `a` is one.
static bool nested_empty(grade_shape *s, const cJSON *a, int depth) {
    if (!cJSON_IsArray(a) || depth >= GRADE_MAX_RANK) return false;
    const int64_t n = cJSON_GetArraySize(a);
    if (depth == s->rank) s->dim[s->rank++] = n;
    else if (s->dim[depth] != n) return false;
    for (const cJSON *e = a->child; e; e = e->next)
        if (!nested_empty(s, e, depth + 1)) return false;
    return true;
}

// An answer with no values (dx_pad[:, :, 0:-0] gives one), which the v1 decoder refuses
// since nothing can be computed from it; here it is an answer like any other.
static bool empty_answer(grade_shape *s, const reader *r, const cJSON *item) {
    s->rank = 0;
    if (!cJSON_IsObject(item))
        return !codec_json_array_of(r->doc, item) && nested_empty(s, item, 0);
    const cJSON *shape = field(item, "shape"), *data = field(item, "data");
    const codec_json_array *blob = shape ? codec_json_array_of(r->doc, shape) : NULL;
    if (!data || !cJSON_IsArray(data) || data->child || !blob || blob->rank != 1 ||
        blob->problem != CODEC_ARRAY_OK || blob->count > GRADE_MAX_RANK)
        return false;
    bool zero = false;
    for (int64_t i = 0; i < blob->count; i++) {
        if (!whole(&s->dim[i], blob->values[i])) return false;
        zero = zero || s->dim[i] == 0;
    }
    s->rank = (int)blob->count;
    return zero;
}

// A single number where an array belongs: a bare number, or {"shape": [], "data": [v]}
// (what NumPy's 0-d arrays, np.float64(nan) say, become). A student's wrong answer, judged as
// one of shape (), so not a malformed request.
static bool scalar_answer(double *value, const reader *r, const cJSON *item) {
    if (cJSON_IsNumber(item)) {
        *value = item->valuedouble;
        return true;
    }
    const cJSON *shape = cJSON_IsObject(item) ? field(item, "shape") : NULL;
    const cJSON *data = shape ? field(item, "data") : NULL;
    if (!cJSON_IsArray(shape) || shape->child || !data) return false;
    if (cJSON_IsNumber(data)) {
        *value = data->valuedouble;
        return true;
    }
    const codec_json_array *blob = codec_json_array_of(r->doc, data);
    if (!blob || blob->rank != 1 || blob->count != 1) return false;
    *value = blob->values[0];
    return true;
}

// Submission `item` at `path` into *a; its values live in *t, or in *scalar for one number.
static bool read_answer(api_tensor *t, double *scalar, grade_array *a, const reader *r,
                        const cJSON *item, const char *path, int64_t max_elements) {
    if (scalar_answer(scalar, r, item)) {
        a->present = true;
        a->shape.rank = 0;
        a->data = scalar;
        return true;
    }
    if (empty_answer(&a->shape, r, item)) {
        a->present = true;
        a->data = NULL;
        return true;
    }
    // NaN and infinities are part of the verdict here, not a malformed request: let the codec
    // take them, once the nesting is known to be sound (the lifter notes one problem only).
    codec_json_array *blob =
        codec_json_array_of(r->doc, cJSON_IsObject(item) ? field(item, "data") : item);
    if (blob && blob->problem == CODEC_ARRAY_NON_FINITE) {
        int64_t numel = 1;
        for (int i = 0; i < blob->rank; i++) numel *= blob->shape[i];
        if (!cJSON_IsObject(item) && (blob->rank < 1 || numel != blob->count))
            return api_fail(r->err, API_E_RAGGED_ARRAY, path,
                            "%s is not rectangular: its nested arrays differ in length", path);
        blob->problem = CODEC_ARRAY_OK;
    }
    if (!codec_json_tensor(t, r->doc, item, path, CONV_FLOAT64, r->err)) return false;
    if (t->numel > max_elements)
        return api_fail(r->err, API_E_TOO_MANY_ELEMENTS, path,
                        "%s has %" PRId64 " elements; this server takes at most %" PRId64
                        " per tensor (max_elements)",
                        path, t->numel, max_elements);
    a->present = true;
    a->shape.rank = t->rank;
    memcpy(a->shape.dim, t->shape, (size_t)t->rank * sizeof t->shape[0]);
    a->data = t->data;
    return true;
}

typedef struct {
    api_tensor tensor[GRADE_NTENSORS];
    double scalar[GRADE_NTENSORS];
    grade_array answer[GRADE_NTENSORS];
} submission;

static void submission_free(submission *s) {
    for (int t = 0; t < GRADE_NTENSORS; t++) api_tensor_free(&s->tensor[t]);
}

// A copy of string `item` at `path` into *out (heap); false with the error set.
static bool copy_text(char **out, const reader *r, const cJSON *item, const char *path,
                      const char *expected) {
    const char *text = "";
    if (!read_string(&text, r, item, path, expected)) return false;
    return (*out = strdup(text)) != NULL ||
           api_fail(r->err, API_E_OUT_OF_MEMORY, "", "out of memory for the submission's text");
}

// "error": one string for every tensor the submission lacks, or {"dx": "...", ...} per tensor.
static bool read_errors(grade_case *k, const reader *r, const cJSON *item, const char *path) {
    const char *expected = "a string (what the code raised), or an object of them by tensor";
    if (cJSON_IsString(item)) {
        for (int t = 0; t < GRADE_NTENSORS; t++)
            if (!copy_text(&k->error[t], r, item, path, expected)) return false;
        return true;
    }
    static const char *const keys[] = {"y", "dx", "dw", "db"};
    if (!cJSON_IsObject(item))
        return api_fail(r->err, API_E_INVALID_TYPE, path, "%s must be %s; got %s", path,
                        expected, codec_json_type_name(item));
    if (!check_keys(r, item, keys, COUNT(keys), path)) return false;
    char where[96];
    for (int t = 0; t < GRADE_NTENSORS; t++) {
        const cJSON *e = field(item, keys[t]);
        if (e && !copy_text(&k->error[t], r, e, join(where, sizeof where, path, keys[t]),
                            "a string (what the code raised instead of this tensor)"))
            return false;
    }
    return true;
}

// {"y"?, "dx"?, "dw"?, "db"?, "error"?, "note"?}: the answers, what the student's code
// reported instead of an answer and the grader's note, copied into the case.
static bool read_submission(submission *s, grade_case *k, const reader *r, const cJSON *obj,
                            const char *path, int64_t max_elements) {
    static const char *const keys[] = {"y", "dx", "dw", "db", "error", "note"};
    if (!need_object(r, obj, path, "any of y, dx, dw, db as tensors, error and note") ||
        !check_keys(r, obj, keys, COUNT(keys), path))
        return false;
    char where[96];
    for (int t = 0; t < GRADE_NTENSORS; t++) {
        const cJSON *item = field(obj, keys[t]);
        if (item && !read_answer(&s->tensor[t], &s->scalar[t], &s->answer[t], r, item,
                                 join(where, sizeof where, path, keys[t]), max_elements))
            return false;
    }
    const cJSON *item = field(obj, "error");
    if (item && !read_errors(k, r, item, join(where, sizeof where, path, "error"))) return false;
    item = field(obj, "note");
    return !item || copy_text(&k->note, r, item, join(where, sizeof where, path, "note"),
                              "a string (the grader's note on this case)");
}

// ---------------------------------------------------------------------------------------------
// Check requests.

typedef struct {
    grade_format format;
    bool html;                 // "output_format": "html" for Gradescope and PrairieLearn
    double atol, rtol;
    bool atol_given, rtol_given;
    double points[GRADE_NTENSORS];
    bool required[GRADE_NTENSORS];
} check_settings;

static bool read_tensor_name(grade_tensor *t, const reader *r, const char *name, const char *path) {
    char quoted[48];
    if (grade_tensor_parse(t, name)) return true;
    return api_fail(r->err, API_E_UNKNOWN_OUTPUT, path,
                    "%s is \"%s\", which is not a tensor a submission holds (y, dx, dw, db)",
                    path, api_quote(quoted, sizeof quoted, name));
}

static bool read_number(double *out, const reader *r, const cJSON *item, const char *path) {
    if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0) || item->valuedouble > 1e300)
        return api_fail(r->err, cJSON_IsNumber(item) ? API_E_INVALID_VALUE : API_E_INVALID_TYPE,
                        path, "%s must be a number >= 0; got %s", path,
                        cJSON_IsNumber(item) ? "a negative number" : codec_json_type_name(item));
    *out = item->valuedouble;
    return true;
}

static bool read_settings(check_settings *s, const reader *r, const cJSON *root) {
    char where[96], quoted[48];
    const cJSON *item;
    const char *name = "";
    s->format = GRADE_FORMAT_CONVD;
    for (int t = 0; t < GRADE_NTENSORS; t++) s->points[t] = 1;
    const char *formats = "\"convd\", \"gradescope\", \"prairielearn\" or \"html\"";
    if ((item = field(root, "format")) &&
        !read_string(&name, r, item, "format", formats))
        return false;
    if (r->format) name = r->format;
    if (*name && !grade_format_parse(&s->format, name))
        return api_fail(r->err, API_E_INVALID_VALUE, "format", "format \"%s\" is not %s",
                        api_quote(quoted, sizeof quoted, name), formats);
    if ((item = field(root, "output_format"))) {
        if (!read_string(&name, r, item, "output_format", "\"md\" or \"html\"")) return false;
        if (strcmp(name, "html") != 0 && strcmp(name, "md") != 0)
            return api_fail(r->err, API_E_INVALID_VALUE, "output_format",
                            "output_format \"%s\" is not \"md\" or \"html\"",
                            api_quote(quoted, sizeof quoted, name));
        s->html = strcmp(name, "html") == 0;
    }
    if ((item = field(root, "tolerance"))) {
        static const char *const keys[] = {"atol", "rtol"};
        if (!need_object(r, item, "tolerance", "{\"atol\": ..., \"rtol\": ...}") ||
            !check_keys(r, item, keys, 2, "tolerance"))
            return false;
        const cJSON *atol = field(item, "atol"), *rtol = field(item, "rtol");
        if ((atol && !read_number(&s->atol, r, atol, "tolerance.atol")) ||
            (rtol && !read_number(&s->rtol, r, rtol, "tolerance.rtol")))
            return false;
        s->atol_given = atol != NULL;
        s->rtol_given = rtol != NULL;
    }
    if ((item = field(root, "points"))) {
        if (!need_object(r, item, "points", "{\"dx\": 2, ...}")) return false;
        for (const cJSON *e = item->child; e; e = e->next) {
            grade_tensor t;
            join(where, sizeof where, "points", e->string ? e->string : "");
            if (!read_tensor_name(&t, r, e->string ? e->string : "", where) ||
                !read_number(&s->points[t], r, e, where))
                return false;
        }
    }
    if ((item = field(root, "require"))) {
        if (!cJSON_IsArray(item) || codec_json_array_of(r->doc, item))
            return api_fail(r->err, API_E_INVALID_TYPE, "require",
                            "require must be a list of names such as [\"dx\", \"dw\", \"db\"]");
        int i = 0;
        for (const cJSON *e = item->child; e; e = e->next, i++) {
            grade_tensor t;
            snprintf(where, sizeof where, "require[%d]", i);
            if (!read_string(&name, r, e, where, "a tensor name") ||
                !read_tensor_name(&t, r, name, where))
                return false;
            s->required[t] = true;
        }
    }
    return true;
}

static void case_options(grade_options *go, const check_settings *s, conv_dtype dt) {
    grade_options_default(go);
    grade_tolerance_default(&go->tol, dt);
    if (s->atol_given) go->tol.atol = s->atol;
    if (s->rtol_given) go->tol.rtol = s->rtol;
    go->tol_given = s->atol_given || s->rtol_given;
    memcpy(go->points, s->points, sizeof go->points);
    memcpy(go->required, s->required, sizeof go->required);
}

// Copies the expected and submitted values of every failed tensor whose values were compared
// into k->pictured, for the heatmaps. False without memory.
static bool keep_pictured(grade_case *k, const grade_problem *p,
                          const grade_array answer[GRADE_NTENSORS]) {
    for (int t = 0; t < GRADE_NTENSORS; t++) {
        const grade_verdict *v = &k->report.tensor[t];
        if (!k->report.graded[t] || v->passed || !v->values_compared || v->numel < 1) continue;
        const size_t bytes = (size_t)v->numel * sizeof(double);
        const double *from[2] = {p->ref[t], answer[t].data};
        for (int i = 0; i < 2; i++) {
            if (!(k->pictured[t][i] = malloc(bytes))) return false;
            memcpy(k->pictured[t][i], from[i], bytes);
        }
    }
    return true;
}

// Grades one {"problem", "submission", "name"?} into *k; *work adds up what the cases cost.
static bool grade_case_object(grade_case *k, const reader *r, const cJSON *obj, const char *path,
                              const check_settings *s, const api_options *opt, int64_t *work) {
    char where[96];
    const cJSON *problem = field(obj, "problem"), *answers = field(obj, "submission");
    if (!problem || !answers)
        return api_fail(r->err, API_E_MISSING_FIELD,
                        join(where, sizeof where, path, problem ? "submission" : "problem"),
                        "%s is required: a check needs a problem and a submission", where);
    grade_problem p;
    bool has_dy;
    int64_t work_before = *work;
    if (!read_problem(&p, &k->origin, &has_dy, r, problem,
                      join(where, sizeof where, path, "problem"), opt, work))
        return false;
    if (!read_name(&k->origin, r, obj, path)) {
        grade_problem_free(&p);
        return false;
    }
    // four passes for the reference (counted already for a generated problem); the diagnosis
    // stays within GRADE_DIAGNOSE_MAX_FLOPS
    if (*work == work_before) *work += 4 * grade_layer_flops(&p.layer);
    submission sub = {0};
    grade_options go;
    case_options(&go, s, p.layer.dtype);
    bool ok = true;
    if (*work > opt->max_flops)
        ok = api_fail(r->err, API_E_TOO_MUCH_WORK, path,
                      "grading these problems needs %.3g FLOPs; this server takes at most %.3g "
                      "per request (max_flops): send fewer or smaller problems",
                      (double)*work, (double)opt->max_flops);
    ok = ok && read_submission(&sub, k, r, answers,
                               join(where, sizeof where, path, "submission"), opt->max_elements);
    for (int t = GRADE_DX; ok && !has_dy && t < GRADE_NTENSORS; t++)
        if (sub.answer[t].present || go.required[t])
            ok = api_fail(r->err, API_E_MISSING_FIELD, join(where, sizeof where, path, "problem.dy"),
                          "%s is required to grade %s: gradients need the upstream gradient dy",
                          where, grade_tensor_name((grade_tensor)t));
    if (ok && !grade_check(&k->report, &p, sub.answer, &go))
        ok = api_fail(r->err, API_E_OUT_OF_MEMORY, "", "out of memory while grading");
    if (ok && grade_format_pictures(s->format, s->html) && !keep_pictured(k, &p, sub.answer))
        ok = api_fail(r->err, API_E_OUT_OF_MEMORY, "", "out of memory for the pictures");
    submission_free(&sub);
    grade_problem_free(&p);
    return ok;
}

static void cases_free(grade_case *cases, size_t n) {
    for (size_t i = 0; i < n; i++) grade_case_free(&cases[i]);
    free(cases);
}

static bool run_check(api_buf *out, const reader *r, const api_options *opt) {
    static const char *const keys[] = {"problem",   "submission", "name",    "cases",
                                       "format",    "tolerance",  "points",  "require",
                                       "output_format"};
    const cJSON *root = r->doc->root;
    check_settings s = {0};
    if (!need_object(r, root, "", "{\"problem\", \"submission\", \"format\"}") ||
        !check_keys(r, root, keys, COUNT(keys), "") || !read_settings(&s, r, root))
        return false;
    const cJSON *list = field(root, "cases");
    if (list && (field(root, "problem") || field(root, "submission")))
        return api_fail(r->err, API_E_INVALID_VALUE, "cases",
                        "give either \"cases\" or one \"problem\" with its \"submission\", not "
                        "both");
    if (list && (!cJSON_IsArray(list) || !list->child || codec_json_array_of(r->doc, list)))
        return api_fail(r->err, API_E_INVALID_TYPE, "cases",
                        "cases must be a non-empty list of {\"problem\", \"submission\"} objects");
    const size_t n = list ? (size_t)cJSON_GetArraySize(list) : 1;
    if (n > GRADE_MAX_CASES)
        return api_fail(r->err, API_E_INVALID_VALUE, "cases",
                        "cases has %zu entries; one request grades at most %d", n,
                        GRADE_MAX_CASES);
    grade_case *cases = calloc(n, sizeof *cases);
    if (!cases) return api_fail(r->err, API_E_OUT_OF_MEMORY, "", "out of memory for the cases");
    int64_t work = 0;
    bool ok = true;
    if (!list) {
        snprintf(cases[0].origin.name, sizeof cases[0].origin.name, "problem");
        ok = grade_case_object(&cases[0], r, root, "", &s, opt, &work);
    } else {
        size_t i = 0;
        char path[32];
        for (const cJSON *e = list->child; ok && e; e = e->next, i++) {
            snprintf(path, sizeof path, "cases[%zu]", i);
            snprintf(cases[i].origin.name, sizeof cases[i].origin.name, "case %zu", i);
            ok = need_object(r, e, path, "{\"problem\", \"submission\", \"name\"?}") &&
                 check_keys(r, e, keys, 3, path) &&
                 grade_case_object(&cases[i], r, e, path, &s, opt, &work);
        }
    }
    if (ok) grade_render(out, cases, n, list != NULL, s.format, s.html);
    if (ok && s.format == GRADE_FORMAT_HTML) *r->content_type = "text/html; charset=utf-8";
    cases_free(cases, n);
    return ok;
}

// The error JSON, or the body of `out_buf` as a 200 answer of `content_type`.
static void respond(api_response *out, bool ok, api_buf *body, api_error *err,
                    const char *content_type) {
    if (ok) {
        out->body = api_buf_take(body, &out->len);
        out->status = 200;
        out->content_type = content_type;
        if (out->body) return;
        api_fail(err, API_E_OUT_OF_MEMORY, "", "out of memory while writing the response");
    }
    api_buf_free(body);
    api_error_to_response(out, err);
}

static bool op_matches(const char *op_from_path, const char *op, api_error *err) {
    if (!op_from_path || strcmp(op_from_path, op) == 0) return true;
    return api_fail(err, API_E_UNKNOWN_OP, "", "this front door grades (%s), it does not run %s",
                    op, op_from_path);
}

// Both grading front doors: the op check, the lifted document, `run`, the answer or the error.
// `format` (or NULL) overrides the body's report format.
static void run_front(api_response *out, const char *body, size_t len, const char *op_from_path,
                      const api_options *opt, const char *op, const char *format,
                      bool (*run)(api_buf *, const reader *, const api_options *)) {
    api_options defaults;
    if (!opt) {
        api_options_default(&defaults);
        opt = &defaults;
    }
    api_error err;
    api_buf b = {0};
    codec_json_doc doc;
    const char *content_type = "application/json";
    bool ok = op_matches(op_from_path, op, &err) && codec_json_parse(&doc, body, len, &err);
    if (ok) {
        const reader r = {&doc, &err, format, &content_type};
        ok = run(&b, &r, opt);
        codec_json_doc_free(&doc);
    }
    respond(out, ok, &b, &err, content_type);
}

void grade_json_check(api_response *out, const char *body, size_t len, const char *op_from_path,
                      const api_options *opt) {
    grade_json_check_as(out, body, len, op_from_path, opt, NULL);
}

void grade_json_check_as(api_response *out, const char *body, size_t len,
                         const char *op_from_path, const api_options *opt, const char *format) {
    run_front(out, body, len, op_from_path, opt, "conv2d.check", format, run_check);
}

// ---------------------------------------------------------------------------------------------
// Problem requests.

static void put_tensor(api_buf *b, const char *name, const grade_layer *L, const double *data) {
    grade_shape s;
    grade_input_shape(&s, L, name);
    api_buf_printf(b, ",\"%s\":{\"shape\":[", name);
    for (int i = 0; i < s.rank; i++) api_buf_printf(b, "%s%" PRId64, i ? "," : "", s.dim[i]);
    api_buf_puts(b, "],\"data\":");
    codec_json_put_numbers(b, data, grade_shape_numel(&s), CONV_FLOAT64);
    api_buf_put(b, "}", 1);
}

// {"name", "spec", "problem"}: the problem as v1 fields with explicit tensors.
static bool put_generated(api_buf *b, const grade_origin *o, api_error *err) {
    grade_problem p;
    if (!grade_problem_generate(&p, &o->layer, o->seed))
        return api_fail(err, API_E_OUT_OF_MEMORY, "", "out of memory for the problem");
    api_buf_puts(b, "{\"name\":");
    api_buf_json_string(b, o->name);
    api_buf_printf(b, ",\"divides_evenly\":%s,\"spec\":",
                   grade_layer_divides_evenly(&o->layer) ? "true" : "false");
    grade_put_spec(b, o);
    api_buf_puts(b, ",\"problem\":{");
    if (o->layer.spatial != 2 || o->layer.transposed)
        api_buf_printf(b, "\"op\":\"%s\",", grade_layer_family(&o->layer));
    api_buf_printf(b, "\"dtype\":\"%s\"", o->layer.dtype == CONV_FLOAT64 ? "float64" : "float32");
    put_tensor(b, "x", &o->layer, p.x);
    put_tensor(b, "w", &o->layer, p.w);
    if (p.b) put_tensor(b, "b", &o->layer, p.b);
    put_tensor(b, "dy", &o->layer, p.dy);
    grade_put_layer_params(b, &o->layer);
    api_buf_puts(b, "}}");
    grade_problem_free(&p);
    return true;
}

static bool run_problem(api_buf *out, const reader *r, const api_options *opt) {
    const cJSON *root = r->doc->root;
    if (!need_object(r, root, "",
                     "a generator spec {\"seed\", \"x_shape\", \"w_shape\", ...} or a suite "
                     "{\"suite\", \"seed\", \"index\"?}"))
        return false;
    grade_origin o = {.name = "problem"};
    int64_t work = 0;
    if (!field(root, "suite")) {
        if (!read_spec(&o, r, root, "", opt) ||
            !before_generating(&o.layer, r, opt, &work, API_JSON_NUMBER_BYTES, ""))
            return false;
        api_buf_puts(out, "{\"problems\":[");
        if (!put_generated(out, &o, r->err)) return false;
        api_buf_puts(out, "]}");
        return true;
    }
    const grade_suite_entry *entries;
    size_t count;
    uint64_t seed;
    int64_t index;
    if (!read_suite(&entries, &count, &seed, &index, true, r, root, "")) return false;
    api_buf_printf(out, "{\"suite\":\"%s\",\"seed\":%" PRIu64 ",\"problems\":[",
                   cJSON_GetObjectItemCaseSensitive(root, "suite")->valuestring, seed);
    for (size_t i = 0; i < count; i++) {
        if (index >= 0 && (size_t)index != i) continue;
        origin_from_suite(&o, &entries[i], seed, i);
        if (!before_generating(&o.layer, r, opt, &work, API_JSON_NUMBER_BYTES, "")) return false;
        if (index < 0 && i) api_buf_put(out, ",", 1);
        if (!put_generated(out, &o, r->err)) return false;
    }
    api_buf_puts(out, "]}");
    return true;
}

void grade_json_problem(api_response *out, const char *body, size_t len, const char *op_from_path,
                        const api_options *opt) {
    run_front(out, body, len, op_from_path, opt, "conv2d.problem", NULL, run_problem);
}
