#include "api/codec/codec_v2.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_buf.h"
#include "api/api_errors.h"
#include "api/api_exec.h"
#include "api/codec/codec_json.h"
#include "api/codec/codec_json_parse.h"
#include "api/api_model.h"
#include "api/api_validate.h"
#include "api/codec/codec.h"

static const char *datatype_of(conv_dtype dt) { return dt == CONV_FLOAT32 ? "FP32" : "FP64"; }

const char *codec_v2_model_name(char *buf, size_t cap, const char *op) {
    snprintf(buf, cap, "%s", op);
    for (char *p = buf; *p; p++)
        if (*p == '.') *p = '_';
    return buf;
}

// ---------------------------------------------------------------------------------------------
// Decoding.

// The layer's per-axis parameters, in api_request's order, and how each was written in
// "parameters": not at all, one integer for every axis ("stride"), one per axis ("stride_h",
// "stride_w"), or conv2d's four sides of padding ("pad_top", ...).
enum { AXIS_STRIDE, AXIS_DILATION, AXIS_PADDING, AXIS_OUTPUT_PADDING, AXIS_FIELDS };
enum { FORM_NONE, FORM_ALL, FORM_AXES, FORM_SIDES };
static const char *const axis_fields[AXIS_FIELDS] = {"stride", "dilation", "padding",
                                                     "output_padding"};
static const char *const pad_sides[4] = {"pad_top", "pad_bottom", "pad_left", "pad_right"};
// Padding sides in answers: the op's last 2 * spatial of these (api_plan_padding's order).
static const char *const answer_sides[6] = {"pad_front", "pad_back", "pad_top",
                                            "pad_bottom", "pad_left", "pad_right"};
static const char *const other_parameters[] = {"groups",   "padding_mode",       "algorithm",
                                               "binary_data_output", "priority", "timeout"};

// The letters that name an op's axes in "parameters" ("stride_d"): conv3d's d, h, w; the 2-d
// ops' h, w; none for the 1-d ops, whose one axis takes the plain name ("stride").
static const char *axis_letters(const api_op *op) {
    return op->spatial == 3 ? "dhw" : op->spatial == 2 ? "hw" : "";
}

// What a v2 request says beyond the api_request it fills.
typedef struct {
    codec_json_doc doc;
    const api_op *op;
    const char *id;                // the request's id (in doc), or NULL
    int input_index[API_IN_COUNT]; // where each input is in "inputs" (-1: absent), for paths
    int form[AXIS_FIELDS];         // FORM_*: how each per-axis parameter was written, for paths
    bool binary_output;            // parameters.binary_data_output
    int n_outputs;                 // "outputs" as asked, in order (0: the op's own)
    struct {
        api_output which;
        int binary; // -1 not said, else the output's parameters.binary_data
    } outputs[API_OUT_COUNT];
} v2_request;

static const char *type_name(const cJSON *item) {
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsObject(item)) return "an object";
    return "an array";
}

// The index of `name` in `names`, or -1.
static int name_index(const char *const *names, int count, const char *name) {
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

// Fails with unknown_field unless every key of `object` is in `known` (at most once).
static bool known_keys(const cJSON *object, const char *const *known, int count,
                       const char *where, api_error *err) {
    char path[96], quoted[48], list[320];
    for (const cJSON *e = object->child; e; e = e->next) {
        api_quote(quoted, sizeof quoted, e->string);
        snprintf(path, sizeof path, "%s%s%s", where, *where ? "." : "", quoted);
        if (name_index(known, count, e->string) < 0) {
            size_t len = 0;
            list[0] = '\0';
            for (int k = 0; k < count && len < sizeof list; k++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "",
                                        known[k]);
            return api_fail(err, API_E_UNKNOWN_FIELD, path,
                            "unknown field \"%s\"%s%s; the fields there are %s", quoted,
                            *where ? " in " : "", where, list);
        }
        for (const cJSON *f = e->next; f; f = f->next)
            if (strcmp(f->string, e->string) == 0)
                return api_fail(err, API_E_DUPLICATE_FIELD, path,
                                "\"%s\" appears more than once; give each field once", quoted);
    }
    return true;
}

// A whole number for a parameter or a size: a JSON number without a fraction, |v| < 2^62.
static bool whole(int64_t *out, const cJSON *item, const char *path, const char *expected,
                  api_error *err) {
    if (!cJSON_IsNumber(item))
        return api_fail(err, API_E_INVALID_TYPE, path, "%s must be %s; got %s", path, expected,
                        type_name(item));
    double v = item->valuedouble;
    if (!(fabs(v) < 0x1p62) || v != floor(v))
        return api_fail(err, API_E_INVALID_VALUE, path, "%s is %g; it must be %s", path, v,
                        expected);
    *out = (int64_t)v;
    return true;
}

static bool boolean(bool *out, const cJSON *item, const char *path, api_error *err) {
    if (!cJSON_IsBool(item))
        return api_fail(err, API_E_INVALID_TYPE, path, "%s must be true or false; got %s", path,
                        type_name(item));
    *out = cJSON_IsTrue(item);
    return true;
}

// The names an op's "parameters" take, into names[] (pointing into store); returns how many.
static int parameter_names(const api_op *op, char store[][24], const char *names[]) {
    const char *letters = axis_letters(op);
    int n = 0;
    for (int f = 0; f < AXIS_FIELDS; f++) {
        names[n++] = axis_fields[f];
        for (const char *l = letters; *l; l++) {
            snprintf(store[n], 24, "%s_%c", axis_fields[f], *l);
            names[n] = store[n];
            n++;
        }
    }
    if (op->spatial == 2 && !op->transposed) // v1's four sides: conv2d's alone
        for (int side = 0; side < 4; side++) names[n++] = pad_sides[side];
    for (size_t i = 0; i < sizeof other_parameters / sizeof *other_parameters; i++)
        names[n++] = other_parameters[i];
    return n;
}

// Fails with unknown_field, naming the family's axes, when `name` is a per-axis parameter
// ("stride_d") of an axis the op's family does not have (conv1d's stride_h, conv2d's stride_d).
static bool axis_of_family(const char *name, const api_op *op, api_error *err) {
    for (int f = 0; f < AXIS_FIELDS; f++) {
        size_t len = strlen(axis_fields[f]);
        if (strncmp(name, axis_fields[f], len) != 0 || name[len] != '_' || !name[len + 1] ||
            name[len + 2] || !strchr("dhw", name[len + 1]) ||
            strchr(axis_letters(op), name[len + 1]))
            continue;
        char path[64], family[32], axes[16] = "", per_axis[64] = "";
        snprintf(path, sizeof path, "parameters.%s", name);
        snprintf(family, sizeof family, "%.*s", (int)strcspn(op->name, "."), op->name);
        for (const char *l = axis_letters(op); *l; l++) {
            snprintf(axes + strlen(axes), sizeof axes - strlen(axes), "%s%c",
                     *axes ? ", " : " (", *l);
            snprintf(per_axis + strlen(per_axis), sizeof per_axis - strlen(per_axis),
                     "%s%s_%c", *per_axis ? ", " : " or one per axis: ", axis_fields[f], *l);
        }
        return api_fail(err, API_E_UNKNOWN_FIELD, path,
                        "%s: %s has %d spatial ax%s%s%s; give %s (one integer for every "
                        "axis)%s",
                        path, family, op->spatial, op->spatial == 1 ? "is" : "es", axes,
                        *axes ? ")" : "", axis_fields[f], per_axis);
    }
    return true;
}

// Which per-axis field `name` sets, how (FORM_*), and at which axis or side; false for the
// other parameters. `name` is one of the op's (known_keys has passed).
static bool axis_parameter(const char *name, const api_op *op, int *field, int *form, int *slot) {
    for (int f = 0; f < AXIS_FIELDS; f++) {
        size_t len = strlen(axis_fields[f]);
        if (strncmp(name, axis_fields[f], len) != 0) continue;
        *field = f;
        *slot = 0;
        if (!name[len]) {
            *form = FORM_ALL;
            return true;
        }
        if (name[len] == '_' && name[len + 1] && !name[len + 2]) { // not padding_mode
            *form = FORM_AXES;
            *slot = (int)(strchr(axis_letters(op), name[len + 1]) - axis_letters(op));
            return true;
        }
    }
    int side = name_index(pad_sides, 4, name);
    *field = AXIS_PADDING;
    *form = FORM_SIDES;
    *slot = side;
    return side >= 0;
}

// Sets the per-axis fields of `req` from the values read (by axis, or by side for FORM_SIDES),
// as the v1 decoder does: one number fills every entry (given = 1); one per axis goes to
// [0, spatial) (given = spatial); conv2d's sides to padding[0..3] (given = 4).
static void put_axis_fields(api_request *req, const v2_request *v2, int64_t values[][4]) {
    int64_t *const lists[AXIS_FIELDS] = {req->stride, req->dilation, NULL, req->output_padding};
    int *const given[AXIS_FIELDS] = {&req->stride_given, &req->dilation_given,
                                     &req->padding_given, &req->output_padding_given};
    const int spatial = v2->op->spatial;
    for (int f = 0; f < AXIS_FIELDS; f++) {
        const int64_t *v = values[f];
        int form = v2->form[f];
        if (form == FORM_NONE) continue;
        *given[f] = form == FORM_ALL ? 1 : form == FORM_AXES ? spatial : 4;
        if (f != AXIS_PADDING) {
            for (int a = 0; a < 3; a++) lists[f][a] = v[form == FORM_ALL ? 0 : a];
        } else if (form == FORM_SIDES) {
            memcpy(req->padding, v, 4 * sizeof *v);
        } else if (req->pad_mode == API_PAD_EXPLICIT) {
            for (int a = 0; a < 3; a++)
                req->padding[2 * a] = req->padding[2 * a + 1] = v[form == FORM_ALL ? 0 : a];
        }
    }
}

// The request's "parameters": the layer's parameters as scalars (the protocol has no lists
// there), and the protocol's own. Each per-axis field is one integer for every axis ("stride"),
// or one per axis of the op ("stride_d", "stride_h", "stride_w"); padding may also be "same" or
// "valid", and conv2d's the four sides pad_top, pad_bottom, pad_left, pad_right.
static bool decode_parameters(api_request *req, v2_request *v2, const cJSON *params,
                              api_error *err) {
    char store[32][24];
    const char *names[32];
    int count = parameter_names(v2->op, store, names);
    if (!cJSON_IsObject(params))
        return api_fail(err, API_E_INVALID_TYPE, "parameters",
                        "parameters must be an object such as {\"stride\": 2, \"padding\": 1}; "
                        "got %s", type_name(params));
    for (const cJSON *p = params->child; p; p = p->next)
        if (!axis_of_family(p->string, v2->op, err)) return false;
    if (!known_keys(params, names, count, "parameters", err)) return false;
    int64_t values[AXIS_FIELDS][4] = {{1, 1, 1, 1}, {1, 1, 1, 1}}; // padding: 0 by default
    const char *first[AXIS_FIELDS] = {NULL};
    char path[64];
    for (const cJSON *p = params->child; p; p = p->next) {
        snprintf(path, sizeof path, "parameters.%s", p->string);
        int field, form, slot;
        if (axis_parameter(p->string, v2->op, &field, &form, &slot)) {
            if (v2->form[field] && v2->form[field] != form)
                return api_fail(err, API_E_INVALID_VALUE, path,
                                "%s and parameters.%s both give the %s; give one integer for "
                                "every axis or one per axis, not both",
                                path, first[field], axis_fields[field]);
            v2->form[field] = form;
            first[field] = p->string;
            if (field == AXIS_PADDING && form == FORM_ALL && cJSON_IsString(p)) {
                if (strcmp(p->valuestring, "same") == 0) req->pad_mode = API_PAD_SAME;
                else if (strcmp(p->valuestring, "valid") == 0) req->pad_mode = API_PAD_VALID;
                else
                    return api_fail(err, API_E_INVALID_VALUE, path,
                                    "%s must be \"same\", \"valid\" or an integer (or one "
                                    "integer per axis)", path);
            } else if (!whole(&values[field][slot], p, path, "an integer", err)) {
                return false;
            }
        } else if (strcmp(p->string, "groups") == 0) {
            if (!whole(&req->groups, p, path, "an integer", err)) return false;
        } else if (strcmp(p->string, "padding_mode") == 0) {
            if (!cJSON_IsString(p) || !api_padding_mode_parse(p->valuestring, &req->padding_mode))
                return api_fail(err, cJSON_IsString(p) ? API_E_INVALID_VALUE : API_E_INVALID_TYPE,
                                path, "%s must be \"zeros\", \"reflect\", \"replicate\" or "
                                "\"circular\"", path);
        } else if (strcmp(p->string, "binary_data_output") == 0) {
            if (!boolean(&v2->binary_output, p, path, err)) return false;
        } else if (strcmp(p->string, "algorithm") == 0) {
            if (!cJSON_IsString(p) || !api_algorithm_parse(p->valuestring, &req->algorithm))
                return api_fail(err, cJSON_IsString(p) ? API_E_INVALID_VALUE : API_E_INVALID_TYPE,
                                path, "%s must be \"auto\", \"direct\" or \"winograd\"", path);
        } else if (!cJSON_IsNumber(p)) { // priority, timeout: scheduling hints convd has no use for
            return api_fail(err, API_E_INVALID_TYPE, path, "%s must be a number; got %s", path,
                            type_name(p));
        }
    }
    put_axis_fields(req, v2, values);
    return true;
}

typedef struct {
    const char *at;
    size_t left;
} binary_cursor;

static bool input_data(api_tensor *t, v2_request *v2, const cJSON *input, const char *path,
                       conv_dtype dt, binary_cursor *bin, api_error *err) {
    char where[96], dims[160];
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(input, "data");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(input, "parameters");
    const cJSON *size_item = NULL;
    if (params) {
        static const char *const keys[] = {"binary_data_size"};
        snprintf(where, sizeof where, "%s.parameters", path);
        if (!cJSON_IsObject(params))
            return api_fail(err, API_E_INVALID_TYPE, where, "%s must be an object; got %s", where,
                            type_name(params));
        if (!known_keys(params, keys, 1, where, err)) return false;
        size_item = cJSON_GetObjectItemCaseSensitive(params, "binary_data_size");
    }
    if (data && size_item)
        return api_fail(err, API_E_INVALID_VALUE, path,
                        "%s has both \"data\" and parameters.binary_data_size; give one", path);
    if (!data && !size_item)
        return api_fail(err, API_E_MISSING_FIELD, path,
                        "%s has neither \"data\" nor parameters.binary_data_size (binary data "
                        "after the JSON, with the Inference-Header-Content-Length header)", path);
    if (size_item) {
        int64_t size;
        snprintf(where, sizeof where, "%s.parameters.binary_data_size", path);
        if (!whole(&size, size_item, where, "a byte count", err)) return false;
        uint64_t need = (uint64_t)t->numel * conv_dtype_size(dt);
        if (size < 0 || (uint64_t)size != need)
            return api_fail(err, API_E_DATA_LENGTH_MISMATCH, where,
                            "%s is %" PRId64 " but shape %s of %s takes %" PRIu64 " bytes",
                            where, size, api_shape_str(dims, sizeof dims, t->shape, t->rank),
                            datatype_of(dt), need);
        if (need > bin->left)
            return api_fail(err, API_E_INVALID_JSON, where,
                            "%s is %" PRId64 " but only %zu bytes of binary data are left after "
                            "the JSON header and the inputs before it (is "
                            "Inference-Header-Content-Length right?)",
                            where, size, bin->left);
        bool ok = api_tensor_from_bytes(t, bin->at, dt, path, err);
        bin->at += need;
        bin->left -= need;
        return ok;
    }
    snprintf(where, sizeof where, "%s.data", path);
    if (!cJSON_IsArray(data))
        return api_fail(err, API_E_INVALID_TYPE, where,
                        "%s must be an array of numbers (flat, row-major, or nested); got %s",
                        where, type_name(data));
    api_tensor flat = {0};
    if (!codec_json_tensor(&flat, &v2->doc, data, where, dt, err)) {
        api_tensor_free(&flat);
        return false;
    }
    if (flat.numel != t->numel) {
        api_fail(err, API_E_DATA_LENGTH_MISMATCH, where,
                 "%s has %" PRId64 " numbers but shape %s needs %" PRId64, where, flat.numel,
                 api_shape_str(dims, sizeof dims, t->shape, t->rank), t->numel);
        api_tensor_free(&flat);
        return false;
    }
    t->data = flat.data;
    t->owned = flat.owned;
    return true;
}

static bool decode_input(api_request *req, v2_request *v2, const cJSON *input, int i,
                         binary_cursor *bin, bool *dtype_set, api_error *err) {
    static const char *const keys[] = {"name", "shape", "datatype", "data", "parameters"};
    char path[32], where[64], quoted[48];
    snprintf(path, sizeof path, "inputs[%d]", i);
    if (!cJSON_IsObject(input))
        return api_fail(err, API_E_INVALID_TYPE, path,
                        "%s must be an object {\"name\", \"shape\", \"datatype\", \"data\"}; got %s",
                        path, type_name(input));
    if (!known_keys(input, keys, 5, path, err)) return false;
    for (int k = 0; k < 3; k++)
        if (!cJSON_GetObjectItemCaseSensitive(input, keys[k])) {
            snprintf(where, sizeof where, "%s.%s", path, keys[k]);
            return api_fail(err, API_E_MISSING_FIELD, where, "%s has no \"%s\"", path, keys[k]);
        }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(input, "name");
    snprintf(where, sizeof where, "%s.name", path);
    if (!cJSON_IsString(name))
        return api_fail(err, API_E_INVALID_TYPE, where, "%s must be a string; got %s", where,
                        type_name(name));
    int which = name_index(api_input_names, API_IN_COUNT, name->valuestring);
    if (which < 0)
        return api_fail(err, API_E_UNKNOWN_FIELD, where,
                        "%s is \"%s\"; the inputs are x, w, dy (backward) and b (optional)", where,
                        api_quote(quoted, sizeof quoted, name->valuestring));
    if (v2->input_index[which] >= 0)
        return api_fail(err, API_E_DUPLICATE_FIELD, where,
                        "the input %s is given twice (inputs[%d] and inputs[%d])",
                        api_input_names[which], v2->input_index[which], i);
    v2->input_index[which] = i;
    const cJSON *datatype = cJSON_GetObjectItemCaseSensitive(input, "datatype");
    snprintf(where, sizeof where, "%s.datatype", path);
    if (!cJSON_IsString(datatype))
        return api_fail(err, API_E_INVALID_TYPE, where, "%s must be \"FP32\" or \"FP64\"; got %s",
                        where, type_name(datatype));
    bool fp32 = strcmp(datatype->valuestring, "FP32") == 0;
    if (!fp32 && strcmp(datatype->valuestring, "FP64") != 0)
        return api_fail(err, API_E_UNSUPPORTED_DTYPE, where,
                        "%s is \"%s\"; convd computes in FP32 or FP64", where,
                        api_quote(quoted, sizeof quoted, datatype->valuestring));
    conv_dtype dt = fp32 ? CONV_FLOAT32 : CONV_FLOAT64;
    if (*dtype_set && dt != req->dtype)
        return api_fail(err, API_E_UNSUPPORTED_DTYPE, where,
                        "%s is %s but the inputs before it are %s; send every input in one "
                        "datatype", where, datatype_of(dt), datatype_of(req->dtype));
    req->dtype = dt;
    *dtype_set = true;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(input, "shape");
    snprintf(where, sizeof where, "%s.shape", path);
    int64_t dims[API_MAX_RANK];
    int rank = 0;
    const codec_json_array *lifted =
        codec_json_array_of(&v2->doc, shape); // a list of numbers is lifted
    if (!lifted || lifted->problem != CODEC_ARRAY_OK || lifted->rank != 1 ||
        lifted->count > API_MAX_RANK)
        return api_fail(err, API_E_INVALID_SHAPE, where,
                        "%s must be a list of 1 to %d whole numbers such as [2, 3, 5, 5]", where,
                        API_MAX_RANK);
    for (int d = 0; d < (int)lifted->count; d++) {
        double v = lifted->values[d];
        if (!(fabs(v) < 0x1p62) || v != floor(v))
            return api_fail(err, API_E_INVALID_SHAPE, where,
                            "%s[%d] is %g; sizes are whole numbers", where, d, v);
        dims[rank++] = (int64_t)v;
    }
    api_tensor *t = &req->in[which];
    return api_tensor_set_shape(t, dims, rank, where, err) &&
           input_data(t, v2, input, path, dt, bin, err);
}

static bool decode_output(v2_request *v2, const cJSON *output, int i, const api_op *op,
                          api_error *err) {
    static const char *const keys[] = {"name", "parameters"}, *const params[] = {"binary_data"};
    char path[32], where[64], quoted[48];
    snprintf(path, sizeof path, "outputs[%d]", i);
    if (!cJSON_IsObject(output))
        return api_fail(err, API_E_INVALID_TYPE, path, "%s must be an object {\"name\"}; got %s",
                        path, type_name(output));
    if (!known_keys(output, keys, 2, path, err)) return false;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(output, "name");
    snprintf(where, sizeof where, "%s.name", path);
    if (!cJSON_IsString(name))
        return api_fail(err, name ? API_E_INVALID_TYPE : API_E_MISSING_FIELD, where,
                        "%s must be a string (an output's name)", where);
    int which = name_index(api_output_names, API_OUT_COUNT, name->valuestring);
    if (which < 0 || !(op->outputs & API_BIT(which))) {
        char model[32];
        return api_fail(err, API_E_UNKNOWN_OUTPUT, where, "%s is \"%s\"; %s returns %s", where,
                        api_quote(quoted, sizeof quoted, name->valuestring),
                        codec_v2_model_name(model, sizeof model, op->name),
                        op->outputs & API_BIT(API_OUT_Y) ? "y" : "dx, dw and db");
    }
    for (int k = 0; k < v2->n_outputs; k++)
        if (v2->outputs[k].which == (api_output)which)
            return api_fail(err, API_E_DUPLICATE_FIELD, where, "the output %s is asked for twice",
                            api_output_names[which]);
    int binary = -1;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(output, "parameters");
    if (p) {
        snprintf(where, sizeof where, "%s.parameters", path);
        if (!cJSON_IsObject(p))
            return api_fail(err, API_E_INVALID_TYPE, where, "%s must be an object; got %s", where,
                            type_name(p));
        if (!known_keys(p, params, 1, where, err)) return false;
        const cJSON *flag = cJSON_GetObjectItemCaseSensitive(p, "binary_data");
        bool b;
        snprintf(where, sizeof where, "%s.parameters.binary_data", path);
        if (flag && !boolean(&b, flag, where, err)) return false;
        if (flag) binary = b;
    }
    v2->outputs[v2->n_outputs].which = (api_output)which;
    v2->outputs[v2->n_outputs++].binary = binary;
    return true;
}

// Inference-Header-Content-Length: a byte count within the body.
static bool header_split(size_t *json_len, const char *value, size_t len, api_error *err) {
    *json_len = len;
    if (!value || !*value) return true;
    char quoted[48];
    const char *p = value;
    uint64_t n = 0;
    bool digits = *p >= '0' && *p <= '9', overflow = false;
    for (; *p >= '0' && *p <= '9'; p++)
        overflow |= __builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, *p - '0', &n);
    if (!digits || *p)
        return api_fail(err, API_E_INVALID_JSON, "",
                        "the Inference-Header-Content-Length header is '%s'; it must be the byte "
                        "count of the JSON header (0 to %zu, the body's length)",
                        api_quote(quoted, sizeof quoted, value), len);
    if (overflow || n > len)
        return api_fail(err, API_E_INVALID_JSON, "",
                        "the Inference-Header-Content-Length header is %s but the body has only "
                        "%zu bytes; it must be the byte count of the JSON header that starts the "
                        "body", api_quote(quoted, sizeof quoted, value), len);
    *json_len = (size_t)n;
    return true;
}

static bool v2_decode(api_request *req, v2_request *v2, const char *body, size_t len,
                      const char *header_length, const api_op *op, api_error *err) {
    static const char *const keys[] = {"id", "parameters", "inputs", "outputs"};
    size_t json_len;
    if (!header_split(&json_len, header_length, len, err)) return false;
    if (!codec_json_parse(&v2->doc, body, json_len, err)) {
        if (json_len < len && err)
            snprintf(err->message + strlen(err->message),
                     sizeof err->message - strlen(err->message),
                     " (the JSON header is the first %zu bytes, by Inference-Header-Content-Length)",
                     json_len);
        return false;
    }
    const cJSON *root = v2->doc.root;
    if (!cJSON_IsObject(root))
        return api_fail(err, API_E_INVALID_TYPE, "",
                        "the body must be a JSON object {\"inputs\": [...]}; got %s",
                        type_name(root));
    if (!known_keys(root, keys, 4, "", err)) return false;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id && !cJSON_IsString(id))
        return api_fail(err, API_E_INVALID_TYPE, "id", "id must be a string; got %s",
                        type_name(id));
    v2->id = id ? id->valuestring : NULL;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (params && !decode_parameters(req, v2, params, err)) return false;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!inputs)
        return api_fail(err, API_E_MISSING_FIELD, "inputs",
                        "\"inputs\" is required: a list of {\"name\", \"shape\", \"datatype\", "
                        "\"data\"} for x, w%s", op->required & API_BIT(API_IN_DY) ? ", dy" : "");
    if (!cJSON_IsArray(inputs))
        return api_fail(err, API_E_INVALID_TYPE, "inputs", "inputs must be a list; got %s",
                        type_name(inputs));
    binary_cursor bin = {body + json_len, len - json_len};
    bool dtype_set = false;
    int i = 0;
    for (const cJSON *input = inputs->child; input; input = input->next, i++)
        if (!decode_input(req, v2, input, i, &bin, &dtype_set, err)) return false;
    if (bin.left)
        return api_fail(err, API_E_INVALID_JSON, "",
                        "%zu bytes follow the JSON header that no input's "
                        "parameters.binary_data_size claims (is Inference-Header-Content-Length "
                        "right?)", bin.left);
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    if (outputs && !cJSON_IsArray(outputs))
        return api_fail(err, API_E_INVALID_TYPE, "outputs", "outputs must be a list; got %s",
                        type_name(outputs));
    i = 0;
    for (const cJSON *o = outputs ? outputs->child : NULL; o; o = o->next, i++)
        if (!decode_output(v2, o, i, op, err)) return false;
    if (op->selectable)
        for (int k = 0; k < v2->n_outputs; k++) req->outputs |= API_BIT(v2->outputs[k].which);
    return true;
}

// ---------------------------------------------------------------------------------------------
// Errors.

// A v1 error path in the v2 request's terms: "stride[1]" -> "parameters.stride_w" (conv2d),
// "padding[2]" -> "parameters.pad_left" (conv2d's four sides), "stride" -> "parameters.stride"
// (or "parameters" when it was not written so), "x.shape[1]" -> "inputs[0].shape[1]".
static const char *v2_path(char *buf, size_t cap, const char *path, const v2_request *v2) {
    snprintf(buf, cap, "%s", path);
    const char *letters = v2->op ? axis_letters(v2->op) : "";
    for (int f = 0; f < AXIS_FIELDS; f++) {
        size_t len = strlen(axis_fields[f]);
        if (strncmp(path, axis_fields[f], len) != 0 || (path[len] && path[len] != '[')) continue;
        size_t i = path[len] ? strtoul(path + len + 1, NULL, 10) : 0;
        if (!path[len])
            snprintf(buf, cap, "parameters%s%s", v2->form[f] == FORM_ALL ? "." : "",
                     v2->form[f] == FORM_ALL ? axis_fields[f] : "");
        else if (v2->form[f] == FORM_SIDES && i < 4)
            snprintf(buf, cap, "parameters.%s", pad_sides[i]);
        else if (i < strlen(letters))
            snprintf(buf, cap, "parameters.%s_%c", axis_fields[f], letters[i]);
        return buf;
    }
    for (size_t i = 0; i < sizeof other_parameters / sizeof *other_parameters; i++)
        if (strcmp(path, other_parameters[i]) == 0) snprintf(buf, cap, "parameters.%s", path);
    for (int i = 0; i < API_IN_COUNT; i++) {
        size_t n = strlen(api_input_names[i]);
        if (v2->input_index[i] >= 0 && strncmp(path, api_input_names[i], n) == 0 &&
            (path[n] == '\0' || path[n] == '.'))
            snprintf(buf, cap, "inputs[%d]%s", v2->input_index[i], path + n);
    }
    return buf;
}

// {"error": "<message>", "code": "...", "path": "..."}, with the status of the code.
static void v2_error(api_response *out, const api_error *err, const v2_request *v2) {
    char path[128];
    api_buf b = {0};
    api_buf_puts(&b, "{\"error\":");
    api_buf_json_string(&b, err->message);
    api_buf_printf(&b, ",\"code\":\"%s\"", api_code_name(err->code));
    if (err->path[0]) {
        api_buf_puts(&b, ",\"path\":");
        api_buf_json_string(&b, v2_path(path, sizeof path, err->path, v2));
    }
    api_buf_puts(&b, "}");
    out->body = api_buf_take(&b, &out->len);
    out->status = out->body ? api_code_status(err->code) : api_code_status(API_E_OUT_OF_MEMORY);
    out->content_type = codec_json_type;
}

void codec_v2_restyle_error(api_response *resp) {
    if (!resp->body || resp->status < 400) return;
    cJSON *doc = cJSON_ParseWithLength(resp->body, resp->len);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(doc, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(error, "message");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(error, "path");
    if (cJSON_IsString(code) && cJSON_IsString(message)) {
        api_buf b = {0};
        api_buf_puts(&b, "{\"error\":");
        api_buf_json_string(&b, message->valuestring);
        api_buf_puts(&b, ",\"code\":");
        api_buf_json_string(&b, code->valuestring);
        if (cJSON_IsString(path) && path->valuestring[0]) {
            api_buf_puts(&b, ",\"path\":");
            api_buf_json_string(&b, path->valuestring);
        }
        api_buf_puts(&b, "}");
        size_t len;
        char *body = api_buf_take(&b, &len);
        if (body) {
            free(resp->body);
            resp->body = body;
            resp->len = len;
        }
    }
    cJSON_Delete(doc);
}

// ---------------------------------------------------------------------------------------------
// Encoding.

static void put_output(api_buf *b, api_output o, bool binary, const api_result *res,
                       conv_dtype dt, int64_t *non_finite) {
    const api_tensor *t = &res->out[o];
    char dims[160];
    api_buf_printf(b, "{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":%s,", api_output_names[o],
                   datatype_of(dt), api_shape_str(dims, sizeof dims, t->shape, t->rank));
    if (binary) {
        api_buf_printf(b, "\"parameters\":{\"binary_data_size\":%zu}}",
                       (size_t)t->numel * conv_dtype_size(dt));
    } else {
        api_buf_puts(b, "\"data\":");
        *non_finite = codec_json_put_numbers(b, t->data, t->numel, dt);
        api_buf_puts(b, "}");
    }
}

static void v2_put_result(api_response *out, const v2_request *v2, const api_request *req,
                          const api_plan *plan, const api_result *res) {
    // The outputs in the order asked, else the op's; each binary or not.
    api_output order[API_OUT_COUNT];
    bool binary[API_OUT_COUNT];
    int n = 0;
    if (v2->n_outputs) {
        for (int k = 0; k < v2->n_outputs; k++) {
            order[n] = v2->outputs[k].which;
            binary[n++] = v2->outputs[k].binary < 0 ? v2->binary_output : v2->outputs[k].binary;
        }
    } else {
        for (int o = 0; o < API_OUT_COUNT; o++)
            if (res->out[o].rank) order[n] = (api_output)o, binary[n++] = v2->binary_output;
    }
    char model[32];
    api_buf b = {0};
    size_t binary_bytes = 0;
    for (int k = 0; k < n; k++)
        if (binary[k]) binary_bytes += (size_t)res->out[order[k]].numel * conv_dtype_size(req->dtype);
    api_buf_reserve(&b, 4096 + binary_bytes); // once: growing by doubling would copy it again
    api_buf_printf(&b, "{\"model_name\":\"%s\",\"model_version\":\"" CODEC_V2_MODEL_VERSION "\"",
                   codec_v2_model_name(model, sizeof model, plan->op->name));
    if (v2->id) {
        api_buf_puts(&b, ",\"id\":");
        api_buf_json_string(&b, v2->id);
    }
    api_buf_printf(&b,
                   ",\"parameters\":{\"op\":\"%s\",\"elapsed_ms\":%.3f,\"threads\":%d,"
                   "\"flops\":%" PRId64,
                   plan->op->name, res->elapsed_ms, res->threads, plan->flops);
    int64_t sides[6];
    int n_sides = api_plan_padding(plan, sides);
    for (int i = 0; i < n_sides; i++)
        api_buf_printf(&b, ",\"%s\":%" PRId64, answer_sides[6 - n_sides + i], sides[i]);
    api_buf_printf(&b, ",\"algorithm\":\"%s\"},\"outputs\":[",
                   conv_algorithm_name(plan->algorithm));
    int64_t non_finite[API_OUT_COUNT] = {0};
    bool any_binary = false;
    for (int k = 0; k < n; k++) {
        if (k) api_buf_puts(&b, ",");
        put_output(&b, order[k], binary[k], res, req->dtype, &non_finite[k]);
        any_binary |= binary[k];
    }
    api_buf_puts(&b, "]");
    int warned = 0; // JSON has no NaN or Infinity: say where nulls stand in for them
    for (int k = 0; k < n; k++)
        if (non_finite[k])
            api_buf_printf(&b, "%s\"%s has %" PRId64 " non-finite values (overflow in %s), "
                           "written as null\"",
                           warned++ ? "," : ",\"warnings\":[", api_output_names[order[k]],
                           non_finite[k], datatype_of(req->dtype));
    api_buf_puts(&b, warned ? "]}" : "}");
    for (int k = 0; k < n; k++)
        if (binary[k])
            api_buf_put(&b, res->out[order[k]].data,
                        (size_t)res->out[order[k]].numel * conv_dtype_size(req->dtype));
    out->body = api_buf_take(&b, &out->len);
    out->status = 200;
    out->content_type = any_binary ? codec_binary_type : codec_json_type;
}

void codec_v2_infer(api_response *out, const char *body, size_t len, const char *header_length,
                    const char *op_name, const api_options *opt) {
    api_options defaults;
    opt = api_options_or_default(opt, &defaults);
    api_request req;
    api_request_init(&req);
    v2_request v2 = {.op = api_op_find(op_name ? op_name : "")};
    for (int i = 0; i < API_IN_COUNT; i++) v2.input_index[i] = -1;
    api_plan plan;
    api_result res = {0};
    api_error err;
    const api_op *op = v2.op;
    bool ok = op ? v2_decode(&req, &v2, body, len, header_length, op, &err) &&
                       api_validate(&plan, &req, op_name, opt, &err) &&
                       api_admit(opt, api_working_set(&req, &plan, opt, API_JSON_NUMBER_BYTES),
                                 plan.flops,
                                 "its outputs, scratch and answer", &err) &&
                       api_execute(&res, &req, &plan, opt, &err)
                 : api_fail(&err, API_E_UNKNOWN_OP, "", "there is no model for op '%s'",
                            op_name ? op_name : "");
    api_request_free(&req);
    if (ok) {
        v2_put_result(out, &v2, &req, &plan, &res);
        if (!out->body) ok = api_fail(&err, API_E_OUT_OF_MEMORY, "", "out of memory for the response");
    }
    if (!ok) v2_error(out, &err, &v2);
    api_result_free(&res);
    codec_json_doc_free(&v2.doc);
}

size_t codec_v2_header_length(const char *body, size_t len) {
    if (!len || body[0] != '{') return len;
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return len;
}

// ---------------------------------------------------------------------------------------------
// Metadata.

static void reply(api_response *out, api_buf *b) {
    out->body = api_buf_take(b, &out->len);
    out->status = out->body ? 200 : api_code_status(API_E_OUT_OF_MEMORY);
    out->content_type = codec_json_type;
}

void codec_v2_server_metadata(api_response *out, const char *version) {
    api_buf b = {0};
    api_buf_puts(&b, "{\"name\":\"convd\",\"version\":");
    api_buf_json_string(&b, version);
    api_buf_puts(&b, ",\"extensions\":[\"binary_tensor_data\"]}");
    reply(out, &b);
}

void codec_v2_model_metadata(api_response *out, const char *op_name) {
    const api_op *op = api_op_find(op_name);
    if (!op) { // the routes name only ops that exist; a programming error, not a client's
        api_error err;
        api_fail(&err, API_E_UNKNOWN_OP, "", "there is no model for op '%s'", op_name);
        v2_error(out, &err, &(v2_request){.op = NULL});
        return;
    }
    char model[32];
    api_buf b = {0};
    api_buf_printf(&b,
                   "{\"name\":\"%s\",\"versions\":[\"" CODEC_V2_MODEL_VERSION "\"],"
                   "\"platform\":\"convd\",\"inputs\":[",
                   codec_v2_model_name(model, sizeof model, op_name));
    // x, w, dy, y, dx and dw have the family's full rank ([N, C, L] to [N, C, D, H, W]); x may
    // also drop N (and conv2d's x be [H, W], w then [kh, kw]). b and db are [F].
    char full[32] = "[-1";
    for (int d = 1; d < op->spatial + 2; d++) strcat(full, ",-1");
    strcat(full, "]");
    int n = 0;
    for (int i = 0; i < API_IN_COUNT; i++)
        if ((op->required | op->optional) & API_BIT(i))
            api_buf_printf(&b, "%s{\"name\":\"%s\",\"datatype\":\"FP32\",\"shape\":%s%s}",
                           n++ ? "," : "", api_input_names[i], i == API_IN_B ? "[-1]" : full,
                           op->optional & API_BIT(i) ? ",\"optional\":true" : "");
    api_buf_puts(&b, "],\"outputs\":[");
    n = 0;
    for (int o = 0; o < API_OUT_COUNT; o++)
        if (op->outputs & API_BIT(o))
            api_buf_printf(&b, "%s{\"name\":\"%s\",\"datatype\":\"FP32\",\"shape\":%s}",
                           n++ ? "," : "", api_output_names[o], o == API_OUT_DB ? "[-1]" : full);
    api_buf_puts(&b, "],\"parameters\":{\"datatypes\":\"FP32, FP64 (all inputs one datatype; "
                     "outputs in it)\",\"request_parameters\":\"");
    char store[32][24];
    const char *names[32];
    int count = parameter_names(op, store, names);
    for (int i = 0; i < count; i++) api_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
    api_buf_puts(&b, "\"}}");
    reply(out, &b);
}

void codec_v2_model_ready(api_response *out, const char *op_name) {
    char model[32];
    api_buf b = {0};
    api_buf_printf(&b, "{\"name\":\"%s\",\"ready\":true}",
                   codec_v2_model_name(model, sizeof model, op_name));
    reply(out, &b);
}
