#include "api/codec/codec_json.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/num/num.h"

_Static_assert(CODEC_JSON_MAX_DEPTH == API_MAX_RANK, "a lifted nesting must fit a tensor");

// ---------------------------------------------------------------------------------------------
// Helpers shared by the decoders below.

const char *codec_json_type_name(const cJSON *item) {
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return cJSON_IsTrue(item) ? "true" : "false";
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsObject(item)) return "an object";
    return "an array";
}

// A whole number in int64 range, or why not.
typedef enum { INT_OK, INT_FRACTION, INT_TOO_LARGE } int_status;

static int_status whole_number(double v, int64_t *out) {
    if (!isfinite(v) || fabs(v) >= 0x1p62) return INT_TOO_LARGE;
    if (v != floor(v)) return INT_FRACTION;
    *out = (int64_t)v;
    return INT_OK;
}

static const char *number_text(char *buf, double v) {
    *num_print_f64(buf, v) = '\0';
    return buf;
}

// "x[0][2][1]" for the flat index `flat` of a nested array of shape `shape`.
static const char *nested_path(char *buf, size_t cap, const char *name, const int64_t *shape,
                               int rank, int64_t flat) {
    int64_t index[API_MAX_RANK];
    for (int i = rank - 1; i >= 0; i--) {
        int64_t size = shape[i] > 0 ? shape[i] : 1; // a ragged nesting has no true shape
        index[i] = flat % size;
        flat /= size;
    }
    size_t len = (size_t)snprintf(buf, cap, "%s", name);
    for (int i = 0; i < rank && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "[%" PRId64 "]", index[i]);
    return buf;
}

static const char *index_path(char *buf, size_t cap, const char *name, const int64_t *index,
                              int depth) {
    size_t len = (size_t)snprintf(buf, cap, "%s", name);
    for (int i = 0; i < depth && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "[%" PRId64 "]", index[i]);
    return buf;
}

// Element `i` of a lifted array, named for messages: "x.data[7]" (flat) or "x[1][3]" (nested).
typedef struct {
    const char *name; // "x.data" or "x"
    bool nested;
} array_naming;

static const char *element_path(char *buf, size_t cap, array_naming as,
                                const codec_json_array *blob, int64_t i) {
    if (as.nested) return nested_path(buf, cap, as.name, blob->shape, blob->rank, i);
    snprintf(buf, cap, "%s[%" PRId64 "]", as.name, i);
    return buf;
}

// Reports what the lifter found wrong inside an array, if anything.
static bool check_blob(const codec_json_array *blob, array_naming as, api_error *err) {
    char path[96], quoted[32];
    if (blob->problem == CODEC_ARRAY_NON_FINITE) {
        // The path of a non-finite number in a nested array needs the (valid) nesting.
        snprintf(path, sizeof path, "%s[%" PRId64 "]", as.name, blob->bad_index);
        if (as.nested)
            nested_path(path, sizeof path, as.name, blob->shape, blob->rank, blob->bad_index);
        const char *token = api_quote(quoted, sizeof quoted, blob->bad_token);
        bool overflow = token[0] == '-' ? token[1] >= '0' && token[1] <= '9'
                                        : token[0] >= '0' && token[0] <= '9';
        if (overflow)
            return api_fail(err, API_E_NON_FINITE_NUMBER, path,
                            "%s is %s, which is too large for any float; every number must be "
                            "finite",
                            path, token);
        return api_fail(err, API_E_NON_FINITE_NUMBER, path,
                        "%s is %s; every number must be finite (JSON has no NaN or Infinity, "
                        "and JavaScript's JSON.stringify writes them as null)",
                        path, token);
    }
    if (blob->problem == CODEC_ARRAY_RAGGED) {
        index_path(path, sizeof path, as.name, blob->ragged_at, blob->ragged_depth);
        if (blob->ragged == CODEC_RAGGED_LENGTH)
            return api_fail(err, API_E_RAGGED_ARRAY, path,
                            "%s has length %" PRId64 " but the arrays before it at the same "
                            "depth have length %" PRId64 "; a tensor's nested arrays must be "
                            "rectangular",
                            path, blob->ragged_got, blob->ragged_want);
        return api_fail(err, API_E_RAGGED_ARRAY, path,
                        "%s is %s where the nesting before it has %s; a tensor's nested arrays "
                        "must all be equally deep",
                        path,
                        blob->ragged == CODEC_RAGGED_ARRAY_FOR_NUMBER ? "an array" : "a number",
                        blob->ragged == CODEC_RAGGED_ARRAY_FOR_NUMBER ? "numbers" : "arrays");
    }
    return true;
}

// Why an array was not lifted as numbers: the first element that is neither a number nor an
// array, or numbers nested too deep. Returns true when neither (only empty arrays).
static bool explain_array(const cJSON *array, const char *path, int depth, api_error *err) {
    char inner[96];
    int64_t i = 0;
    for (const cJSON *e = array->child; e; e = e->next, i++) {
        snprintf(inner, sizeof inner, "%s[%" PRId64 "]", path, i);
        if (cJSON_IsArray(e)) {
            if (!explain_array(e, inner, depth + 1, err)) return false;
        } else if (!cJSON_IsNumber(e)) {
            return api_fail(err, API_E_INVALID_TYPE, inner, "%s is %s; tensors hold numbers only",
                            inner, codec_json_type_name(e));
        } else if (depth >= API_MAX_RANK) { // the only numbers the lifter leaves behind
            return api_fail(err, API_E_INVALID_SHAPE, inner,
                            "%s is nested %d arrays deep; tensors have at most 4 dimensions", inner,
                            depth + 1);
        }
    }
    return true;
}

static bool array_not_numbers(const cJSON *array, const char *path, api_error *err) {
    if (!explain_array(array, path, 0, err)) return false;
    return api_fail(err, API_E_INVALID_SHAPE, path,
                    "%s holds no numbers; a tensor needs at least one element", path);
}

// Rewrites the doubles of `values` as floats, in place, front to back: a block of doubles is
// read before its floats (half the bytes) are written. Returns the index of the first value
// beyond float32's range, or -1.
static int64_t doubles_to_floats(double *values, int64_t n) {
    enum { BLOCK = 256 };
    char *bytes = (char *)values;
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t count = n - start < BLOCK ? n - start : BLOCK;
        double in[BLOCK];
        float out[BLOCK];
        memcpy(in, bytes + 8 * start, (size_t)count * sizeof *in);
        bool overflow = false;
        for (int64_t i = 0; i < count; i++) {
            out[i] = (float)in[i];
            overflow |= fabsf(out[i]) > FLT_MAX;
        }
        if (overflow)
            for (int64_t i = 0; i < count; i++)
                if (fabsf(out[i]) > FLT_MAX) return start + i;
        memcpy(bytes + 4 * start, out, (size_t)count * sizeof *out);
    }
    return -1;
}

// The lifted numbers become the tensor's data, converted to the dtype in place.
static bool adopt_numbers(api_tensor *t, codec_json_array *blob, array_naming as, conv_dtype dt,
                          api_error *err) {
    if (dt == CONV_FLOAT32) {
        int64_t bad = doubles_to_floats(blob->values, blob->count);
        if (bad >= 0) {
            char path[96], text[NUM_MAX_CHARS + 1];
            double v;
            memcpy(&v, (char *)blob->values + 8 * bad, sizeof v); // not yet overwritten
            element_path(path, sizeof path, as, blob, bad);
            return api_fail(err, API_E_VALUE_OUT_OF_RANGE, path,
                            "%s is %s, beyond float32's largest value 3.4028235e+38; send "
                            "\"dtype\": \"float64\" or scale the values",
                            path, number_text(text, v));
        }
        void *shrunk = realloc(blob->values, (size_t)blob->count * sizeof(float));
        if (shrunk) blob->values = shrunk;
    }
    t->data = t->owned = blob->values;
    blob->values = NULL;
    return true;
}

bool codec_json_whole_numbers(int64_t *out, int *count, int limit, const codec_json_doc *doc,
                              const cJSON *item, const char *name, const char *expected,
                              api_code bad_value, api_error *err) {
    char path[96], text[NUM_MAX_CHARS + 1];
    const codec_json_array *blob = codec_json_array_of(doc, item);
    const double *values;
    double lone;
    int64_t n;
    if (cJSON_IsNumber(item)) {
        lone = item->valuedouble;
        values = &lone;
        n = 1;
    } else if (blob && blob->rank == 1 && blob->problem == CODEC_ARRAY_OK) {
        values = blob->values;
        n = blob->count;
    } else if (blob && blob->problem == CODEC_ARRAY_NON_FINITE) {
        char quoted[32];
        snprintf(path, sizeof path, "%s[%" PRId64 "]", name, blob->bad_index);
        return api_fail(err, bad_value, path, "%s is %s; %s must be %s", path,
                        api_quote(quoted, sizeof quoted, blob->bad_token), name, expected);
    } else {
        bool empty = cJSON_IsArray(item) && !cJSON_GetArraySize(item);
        return api_fail(err, empty ? API_E_INVALID_VALUE : API_E_INVALID_TYPE, name,
                        "%s must be %s; got %s", name, expected,
                        empty ? "[]" : codec_json_type_name(item));
    }
    if (n > limit)
        return api_fail(err, API_E_INVALID_VALUE, name, "%s must be %s; got %" PRId64 " numbers",
                        name, expected, n);
    for (int64_t i = 0; i < n; i++) {
        if (cJSON_IsNumber(item))
            snprintf(path, sizeof path, "%s", name);
        else
            snprintf(path, sizeof path, "%s[%" PRId64 "]", name, i);
        int_status s = whole_number(values[i], &out[i]);
        if (s != INT_OK)
            return api_fail(err, bad_value, path, "%s is %s; %s must be %s", path,
                            number_text(text, values[i]), name,
                            s == INT_FRACTION ? "whole numbers" : expected);
    }
    *count = (int)n;
    return true;
}

// ---------------------------------------------------------------------------------------------
// Tensors.

static bool unknown_or_duplicate_keys(const cJSON *object, const char *const *known, int count,
                                      const char *prefix, api_error *err);

static bool tensor_object(api_tensor *t, const codec_json_doc *doc, const cJSON *item,
                          const char *name, conv_dtype dt, api_error *err) {
    static const char *const keys[] = {"shape", "data"};
    if (!unknown_or_duplicate_keys(item, keys, 2, name, err)) return false;
    char shape_path[96], data_path[96], dims[160];
    snprintf(shape_path, sizeof shape_path, "%s.shape", name);
    snprintf(data_path, sizeof data_path, "%s.data", name);
    const cJSON *shape_item = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *data_item = cJSON_GetObjectItemCaseSensitive(item, "data");
    if (!shape_item || !data_item)
        return api_fail(err, API_E_MISSING_FIELD, shape_item ? data_path : shape_path,
                        "%s has no \"%s\"; a tensor object is {\"shape\": [...], \"data\": [...]}",
                        name, shape_item ? "data" : "shape");
    int64_t shape[API_MAX_RANK];
    int rank = 0;
    const char *expected = "a list of sizes such as [2, 3, 5, 5]";
    if (cJSON_IsArray(shape_item) && !cJSON_GetArraySize(shape_item))
        return api_fail(err, API_E_INVALID_SHAPE, shape_path,
                        "%s is []; a tensor here has 2 to 4 dimensions", shape_path);
    if (cJSON_IsNumber(shape_item))
        return api_fail(err, API_E_INVALID_TYPE, shape_path, "%s must be %s; got a number",
                        shape_path, expected);
    if (!codec_json_whole_numbers(shape, &rank, API_MAX_RANK, doc, shape_item, shape_path,
                                expected, API_E_INVALID_SHAPE, err))
        return false;
    api_tensor shaped = {0};
    if (!api_tensor_set_shape(&shaped, shape, rank, shape_path, err)) return false;
    codec_json_array *blob = codec_json_array_of(doc, data_item);
    if (!blob) {
        if (cJSON_IsArray(data_item) && !cJSON_GetArraySize(data_item))
            return api_fail(err, API_E_DATA_LENGTH_MISMATCH, data_path,
                            "%s is empty but %s %s needs %" PRId64 " numbers", data_path,
                            shape_path, api_shape_str(dims, sizeof dims, shape, rank),
                            shaped.numel);
        if (!cJSON_IsArray(data_item))
            return api_fail(err, API_E_INVALID_TYPE, data_path,
                            "%s must be an array of numbers; got %s", data_path,
                            codec_json_type_name(data_item));
        return array_not_numbers(data_item, data_path, err);
    }
    array_naming as = {data_path, false};
    if (blob->rank != 1)
        return api_fail(err, API_E_INVALID_TYPE, data_path,
                        "%s must be a flat array of numbers (row-major); it is nested %d deep. "
                        "Flatten it, or send the nested array as %s itself, without \"shape\"",
                        data_path, blob->rank, name);
    if (!check_blob(blob, as, err)) return false;
    if (blob->count != shaped.numel)
        return api_fail(err, API_E_DATA_LENGTH_MISMATCH, data_path,
                        "%s has %" PRId64 " number%s but %s %s needs %" PRId64, data_path,
                        blob->count, blob->count == 1 ? "" : "s", shape_path,
                        api_shape_str(dims, sizeof dims, shape, rank), shaped.numel);
    *t = shaped;
    return adopt_numbers(t, blob, as, dt, err);
}

bool codec_json_tensor(api_tensor *t, const codec_json_doc *doc, const cJSON *item,
                       const char *name, conv_dtype dt, api_error *err) {
    if (cJSON_IsObject(item)) return tensor_object(t, doc, item, name, dt, err);
    codec_json_array *blob = codec_json_array_of(doc, item);
    if (!blob) {
        if (!cJSON_IsArray(item))
            return api_fail(err, API_E_INVALID_TYPE, name,
                            "%s must be a tensor: a nested array of numbers, or {\"shape\": "
                            "[...], \"data\": [...]}; got %s",
                            name, codec_json_type_name(item));
        return array_not_numbers(item, name, err);
    }
    array_naming as = {name, true};
    if (!check_blob(blob, as, err)) return false;
    char shape_path[96];
    snprintf(shape_path, sizeof shape_path, "%s.shape", name);
    return api_tensor_set_shape(t, blob->shape, blob->rank, shape_path, err) &&
           adopt_numbers(t, blob, as, dt, err);
}

// ---------------------------------------------------------------------------------------------
// The request's fields.

typedef struct {
    const codec_json_doc *doc;
    api_request *req;
    api_error *err;
} decoder;

typedef bool (*field_decoder)(decoder *d, const cJSON *item, int which);

static bool decode_op(decoder *d, const cJSON *item, int which) {
    char ops[128], quoted[48];
    if (!cJSON_IsString(item))
        return api_fail(d->err, API_E_INVALID_TYPE, "op", "op must be a string, one of %s; got %s",
                        api_op_list(ops, sizeof ops), codec_json_type_name(item));
    d->req->op = api_op_find(item->valuestring);
    if (!d->req->op)
        return api_fail(d->err, API_E_UNKNOWN_OP, "op", "op \"%s\" is not one of %s",
                        api_quote(quoted, sizeof quoted, item->valuestring),
                        api_op_list(ops, sizeof ops));
    return true;
}

static bool decode_dtype(decoder *d, const cJSON *item, int which) {
    char quoted[48];
    if (!cJSON_IsString(item))
        return api_fail(d->err, API_E_INVALID_TYPE, "dtype",
                        "dtype must be \"float32\" or \"float64\"; got %s",
                        codec_json_type_name(item));
    if (strcmp(item->valuestring, "float32") == 0)
        d->req->dtype = CONV_FLOAT32;
    else if (strcmp(item->valuestring, "float64") == 0)
        d->req->dtype = CONV_FLOAT64;
    else
        return api_fail(d->err, API_E_UNSUPPORTED_DTYPE, "dtype",
                        "dtype \"%s\" is not supported; use \"float32\" or \"float64\"",
                        api_quote(quoted, sizeof quoted, item->valuestring));
    return true;
}

// "auto", "direct" or "winograd" (conv_pick_algorithm; api_validate refuses winograd where it
// does not apply).
static bool decode_algorithm(decoder *d, const cJSON *item, int which) {
    char quoted[48];
    if (!cJSON_IsString(item))
        return api_fail(d->err, API_E_INVALID_TYPE, "algorithm",
                        "algorithm must be \"auto\", \"direct\" or \"winograd\"; got %s",
                        codec_json_type_name(item));
    if (!api_algorithm_parse(item->valuestring, &d->req->algorithm))
        return api_fail(d->err, API_E_INVALID_VALUE, "algorithm",
                        "algorithm \"%s\" is none of \"auto\", \"direct\", \"winograd\"",
                        api_quote(quoted, sizeof quoted, item->valuestring));
    return true;
}

static bool decode_tensor(decoder *d, const cJSON *item, int which) {
    return codec_json_tensor(&d->req->in[which], d->doc, item, api_input_names[which],
                             d->req->dtype, d->err);
}

enum { PARAM_STRIDE, PARAM_DILATION, PARAM_OUTPUT_PADDING };

static bool decode_pair(decoder *d, const cJSON *item, int which) {
    api_request *req = d->req;
    const char *name = which == PARAM_STRIDE     ? "stride"
                       : which == PARAM_DILATION ? "dilation"
                                                 : "output_padding";
    int64_t *pair = which == PARAM_STRIDE     ? req->stride
                    : which == PARAM_DILATION ? req->dilation
                                              : req->output_padding;
    int *given = which == PARAM_STRIDE     ? &req->stride_given
                 : which == PARAM_DILATION ? &req->dilation_given
                                           : &req->output_padding_given;
    int64_t v[3];
    int n;
    if (!codec_json_whole_numbers(v, &n, 3, d->doc, item, name,
                                  "an integer or a list of one integer per spatial axis",
                                  API_E_INVALID_VALUE, d->err))
        return false;
    // One number fills every axis; api_validate checks the count against the op's axes.
    for (int i = 0; i < 3; i++) pair[i] = v[n == 1 ? 0 : i < n ? i : n - 1];
    *given = n;
    return true;
}

static bool decode_padding(decoder *d, const cJSON *item, int which) {
    api_request *req = d->req;
    const char *expected =
        "an integer, [ph, pw], [top, bottom, left, right], [pd, ph, pw] (conv3d), \"same\" or "
        "\"valid\"";
    char quoted[48];
    if (cJSON_IsString(item)) {
        if (strcmp(item->valuestring, "same") == 0)
            req->pad_mode = API_PAD_SAME;
        else if (strcmp(item->valuestring, "valid") == 0)
            req->pad_mode = API_PAD_VALID;
        else
            return api_fail(d->err, API_E_INVALID_VALUE, "padding",
                            "padding \"%s\" is not supported; padding is %s",
                            api_quote(quoted, sizeof quoted, item->valuestring), expected);
        req->padding_given = 1;
        return true;
    }
    int64_t v[4];
    int n;
    if (!codec_json_whole_numbers(v, &n, 4, d->doc, item, "padding", expected, API_E_INVALID_VALUE,
                                d->err))
        return false;
    // Per side; api_validate checks the count against the op's axes (3: [pd, ph, pw]).
    if (n == 4) {
        memcpy(req->padding, v, 4 * sizeof *v);
    } else {
        for (int axis = 0; axis < 3; axis++)
            req->padding[2 * axis] = req->padding[2 * axis + 1] =
                v[n == 1 ? 0 : axis < n ? axis : 0];
    }
    req->pad_mode = API_PAD_EXPLICIT;
    req->padding_given = n;
    return true;
}

static bool decode_padding_mode(decoder *d, const cJSON *item, int which) {
    const char *expected = "\"zeros\", \"reflect\", \"replicate\" or \"circular\"";
    char quoted[48];
    if (!cJSON_IsString(item))
        return api_fail(d->err, API_E_INVALID_TYPE, "padding_mode",
                        "padding_mode must be %s; got %s", expected, codec_json_type_name(item));
    if (api_padding_mode_parse(item->valuestring, &d->req->padding_mode)) return true;
    return api_fail(d->err, API_E_INVALID_VALUE, "padding_mode",
                    "padding_mode \"%s\" is not one of %s",
                    api_quote(quoted, sizeof quoted, item->valuestring), expected);
}

static bool decode_groups(decoder *d, const cJSON *item, int which) {
    if (!cJSON_IsNumber(item))
        return api_fail(d->err, API_E_INVALID_TYPE, "groups", "groups must be an integer; got %s",
                        codec_json_array_of(d->doc, item) ? "a list" : codec_json_type_name(item));
    int n;
    return codec_json_whole_numbers(&d->req->groups, &n, 1, d->doc, item, "groups", "an integer",
                                    API_E_INVALID_VALUE, d->err);
}

static bool decode_outputs(decoder *d, const cJSON *item, int which) {
    char path[32], quoted[48];
    const char *expected = "a list of names such as [\"dx\", \"dw\"]";
    if (!cJSON_IsArray(item) || codec_json_array_of(d->doc, item))
        return api_fail(d->err, API_E_INVALID_TYPE, "outputs", "outputs must be %s; got %s",
                        expected,
                        codec_json_array_of(d->doc, item) ? "numbers" : codec_json_type_name(item));
    if (!item->child)
        return api_fail(d->err, API_E_INVALID_VALUE, "outputs",
                        "outputs is empty; name at least one output, or leave it out for all");
    int i = 0;
    for (const cJSON *e = item->child; e; e = e->next, i++) {
        snprintf(path, sizeof path, "outputs[%d]", i);
        if (!cJSON_IsString(e))
            return api_fail(d->err, API_E_INVALID_TYPE, path, "%s is %s; outputs must be %s", path,
                            codec_json_type_name(e), expected);
        int o = 0;
        while (o < API_OUT_COUNT && strcmp(api_output_names[o], e->valuestring) != 0) o++;
        if (o == API_OUT_COUNT)
            return api_fail(d->err, API_E_UNKNOWN_OUTPUT, path,
                            "%s is \"%s\", which is not an output; the outputs are y, dx, dw "
                            "and db",
                            path, api_quote(quoted, sizeof quoted, e->valuestring));
        d->req->outputs |= API_BIT(o);
    }
    return true;
}

// Decoded in this order: dtype before the tensors, whose numbers it types.
static const struct {
    const char *name;
    field_decoder decode;
    int which;
} fields[] = {
    {"op", decode_op, 0},
    {"dtype", decode_dtype, 0},
    {"x", decode_tensor, API_IN_X},
    {"w", decode_tensor, API_IN_W},
    {"b", decode_tensor, API_IN_B},
    {"dy", decode_tensor, API_IN_DY},
    {"stride", decode_pair, PARAM_STRIDE},
    {"padding", decode_padding, 0},
    {"padding_mode", decode_padding_mode, 0},
    {"dilation", decode_pair, PARAM_DILATION},
    {"groups", decode_groups, 0},
    {"output_padding", decode_pair, PARAM_OUTPUT_PADDING},
    {"outputs", decode_outputs, 0},
    {"algorithm", decode_algorithm, 0},
};
#define FIELD_COUNT ((int)(sizeof fields / sizeof *fields))

// Names people reach for, from PyTorch, NumPy and course code.
static const struct {
    const char *alias, *field;
} aliases[] = {
    {"input", "x"},      {"inputs", "x"},        {"weight", "w"},       {"weights", "w"},
    {"kernel", "w"},     {"bias", "b"},          {"grad_output", "dy"}, {"dout", "dy"},
    {"grad", "dy"},      {"pad", "padding"},     {"strides", "stride"}, {"dilations", "dilation"},
    {"group", "groups"}, {"precision", "dtype"}, {"type", "dtype"},
};

// Levenshtein distance, capped: enough to catch a typo.
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32) return 99;
    int row[33];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diagonal = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int above = row[j];
            int best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best) best = above + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

static const char *suggestion(const char *key, const char *const *known, int count) {
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        for (int k = 0; k < count; k++)
            if (strcmp(key, aliases[i].alias) == 0 && strcmp(aliases[i].field, known[k]) == 0)
                return known[k];
    const char *best = NULL;
    int best_distance = strlen(key) > 3 ? 3 : 2;
    for (int k = 0; k < count; k++) {
        int dist = edit_distance(key, known[k]);
        if (dist < best_distance) best = known[k], best_distance = dist;
    }
    return best;
}

static bool unknown_or_duplicate_keys(const cJSON *object, const char *const *known, int count,
                                      const char *prefix, api_error *err) {
    char path[96], quoted[48], hint[96], list[160];
    for (const cJSON *e = object->child; e; e = e->next) {
        const char *key = e->string ? e->string : "";
        api_quote(quoted, sizeof quoted, key);
        if (prefix)
            snprintf(path, sizeof path, "%s.%s", prefix, quoted);
        else
            snprintf(path, sizeof path, "%s", quoted);
        int k = 0;
        while (k < count && strcmp(known[k], key) != 0) k++;
        if (k == count) {
            const char *near = suggestion(key, known, count);
            hint[0] = '\0';
            if (near) snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", near);
            size_t len = 0;
            for (int j = 0; j < count && len < sizeof list; j++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", j ? ", " : "",
                                        known[j]);
            return api_fail(err, API_E_UNKNOWN_FIELD, path,
                            "unknown field \"%s\"%s; the fields%s%s are %s", quoted, hint,
                            prefix ? " of " : "", prefix ? prefix : "", list);
        }
        for (const cJSON *f = object->child; f != e; f = f->next)
            if (f->string && strcmp(f->string, key) == 0)
                return api_fail(err, API_E_DUPLICATE_FIELD, path,
                                "\"%s\" appears more than once; give each field once", quoted);
    }
    return true;
}

bool codec_json_decode(api_request *req, const char *body, size_t len, api_error *err) {
    codec_json_doc doc;
    if (!codec_json_parse(&doc, body, len, err)) return false;
    bool ok = true;
    if (!cJSON_IsObject(doc.root)) {
        ok = api_fail(err, API_E_INVALID_TYPE, "",
                      "the body must be a JSON object such as {\"op\": \"conv2d.forward\", "
                      "\"x\": ..., \"w\": ...}; got %s",
                      codec_json_type_name(doc.root));
    } else {
        const char *names[FIELD_COUNT];
        for (int f = 0; f < FIELD_COUNT; f++) names[f] = fields[f].name;
        ok = unknown_or_duplicate_keys(doc.root, names, FIELD_COUNT, NULL, err);
        decoder d = {&doc, req, err};
        for (int f = 0; f < FIELD_COUNT && ok; f++) {
            const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc.root, fields[f].name);
            if (item && !cJSON_IsNull(item)) ok = fields[f].decode(&d, item, fields[f].which);
        }
    }
    codec_json_doc_free(&doc);
    return ok;
}

// ---------------------------------------------------------------------------------------------
// Encoding.

int64_t codec_json_put_numbers(api_buf *out, const void *data, int64_t n, conv_dtype dt) {
    enum { CHUNK = 4096 };
    int64_t non_finite = 0;
    api_buf_put(out, "[", 1);
    for (int64_t start = 0; start < n; start += CHUNK) {
        int64_t end = n - start < CHUNK ? n : start + CHUNK;
        if (!api_buf_reserve(out, (size_t)(end - start) * (NUM_MAX_CHARS + 1))) break;
        char *p = out->data + out->len;
        for (int64_t i = start; i < end; i++) {
            double v = dt == CONV_FLOAT32 ? ((const float *)data)[i] : ((const double *)data)[i];
            if (i) *p++ = ',';
            if (!isfinite(v)) {
                memcpy(p, "null", 4);
                p += 4;
                non_finite++;
            } else {
                p = dt == CONV_FLOAT32 ? num_print_f32(p, (float)v) : num_print_f64(p, v);
            }
        }
        out->len = (size_t)(p - out->data);
    }
    api_buf_put(out, "]", 1);
    return non_finite;
}

static int64_t put_tensor(api_buf *out, const api_tensor *t, conv_dtype dt) {
    char dims[160];
    api_buf_printf(out,
                   "{\"shape\":%s,\"data\":", api_shape_str(dims, sizeof dims, t->shape, t->rank));
    int64_t non_finite = codec_json_put_numbers(out, t->data, t->numel, dt);
    api_buf_put(out, "}", 1);
    return non_finite;
}

// `,"name":[v0,v1,...]`, or `,"name":"[v0,v1,...]"` as a string.
static void put_list(api_buf *out, const char *name, const int64_t *v, int n, bool as_string) {
    api_buf_printf(out, ",\"%s\":%s[", name, as_string ? "\"" : "");
    for (int i = 0; i < n; i++) api_buf_printf(out, "%s%" PRId64, i ? "," : "", v[i]);
    api_buf_puts(out, as_string ? "]\"" : "]");
}

void codec_json_put_layer(api_buf *out, const api_request *req, const api_plan *plan,
                          bool as_strings) {
    // The request keeps per-axis values at [0, spatial) (conv2d: [h, w]; conv3d: [d, h, w]),
    // except conv1d's one, which the passes read at [1] (one number fills every entry).
    const int spatial = plan->op->spatial, first = spatial == 1 ? 1 : 0;
    int64_t sides[6];
    int n_sides = api_plan_padding(plan, sides);
    put_list(out, "stride", req->stride + first, spatial, as_strings);
    put_list(out, "dilation", req->dilation + first, spatial, as_strings);
    put_list(out, "padding", sides, n_sides, as_strings);
    api_buf_printf(out, as_strings ? ",\"groups\":\"%" PRId64 "\"" : ",\"groups\":%" PRId64,
                   req->groups);
    if (plan->op->transposed)
        put_list(out, "output_padding", req->output_padding + first, spatial, as_strings);
    else
        api_buf_printf(out, ",\"padding_mode\":\"%s\"", conv_pad_mode_name(req->padding_mode));
}

void codec_json_put_result(api_buf *out, const api_request *req, const api_plan *plan,
                           const api_result *res) {
    int64_t non_finite[API_OUT_COUNT] = {0};
    // Room for typical numbers (float32 takes 9-12 bytes with its comma, float64 18-22) at
    // once, so that the body is seldom copied as it grows.
    size_t numbers = 0;
    for (int o = 0; o < API_OUT_COUNT; o++) numbers += (size_t)res->out[o].numel;
    api_buf_reserve(out, numbers * (req->dtype == CONV_FLOAT32 ? 13 : 23) + 1024);
    api_buf_put(out, "{", 1);
    for (int o = 0; o < API_OUT_COUNT; o++) {
        if (!res->out[o].rank) continue;
        api_buf_printf(out, "\"%s\":", api_output_names[o]);
        non_finite[o] = put_tensor(out, &res->out[o], req->dtype);
        api_buf_put(out, ",", 1);
    }
    api_buf_printf(out,
                   "\"meta\":{\"op\":\"%s\",\"dtype\":\"%s\",\"elapsed_ms\":%.3f,"
                   "\"threads\":%d,\"flops\":%" PRId64,
                   plan->op->name, req->dtype == CONV_FLOAT32 ? "float32" : "float64",
                   res->elapsed_ms, res->threads, plan->flops);
    codec_json_put_layer(out, req, plan, false);
    api_buf_printf(out, ",\"algorithm\":\"%s\"", conv_algorithm_name(plan->algorithm));
    bool warned = false;
    for (int o = 0; o < API_OUT_COUNT; o++) {
        if (!non_finite[o]) continue;
        api_buf_printf(out,
                       "%s\"%s has %" PRId64 " non-finite values (overflow or NaN in %s "
                       "arithmetic), written as null\"",
                       warned ? "," : ",\"warnings\":[", api_output_names[o], non_finite[o],
                       req->dtype == CONV_FLOAT32 ? "float32" : "float64");
        warned = true;
    }
    api_buf_puts(out, warned ? "]}}" : "}}");
}
