// The Open Inference Protocol v2 door in-process (codec_v2_infer): every golden case of every
// family (conv2d, conv1d, conv3d, conv_transpose1d/2d/3d: their <family>_forward and
// <family>_backward models) against PyTorch's answers and against the v1 answer to the same
// request, with JSON data (flat and nested), binary inputs (Triton's extension), binary outputs
// (all, per output, mixed), outputs picked and ordered, ids echoed, FP32 and FP64, the layer's
// per-axis parameters as v2 scalars; malformed bodies (header length beyond the body, negative,
// not a number; missing binary_data_size; sizes not matching shapes; bytes left over) and
// invalid requests (each family's wrong ranks, unknown and mixed parameters), each a
// {"error": "..."} with a status and the v2 path; the error restyling of server refusals, the
// header split, and the metadata bodies of every model.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_errors.h"
#include "api/codec/codec.h"
#include "api/codec/codec_v2.h"
#include "server/blas_boot.h"
#include "tests/harness/binary_harness.h"
#include "tests/testlib.h"

static const char *const families[] = {"conv2d",           "conv1d",           "conv3d",
                                       "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"};

// The v1 JSON answer to golden case g's request sent to `op` (dy dropped for a forward op), as
// parsed JSON (the caller deletes it), or NULL when it is not a 200.
static cJSON *v1_answer(const bh_golden *g, const char *op, bool backward) {
    cJSON *req = cJSON_Duplicate(g->request, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(req, "op");
    if (!backward) cJSON_DeleteItemFromObjectCaseSensitive(req, "dy");
    char *text = cJSON_PrintUnformatted(req);
    api_response r = {0};
    codec_run_json(&r, text, strlen(text), op, NULL);
    cJSON *doc = r.status == 200 ? cJSON_ParseWithLength(r.body, r.len) : NULL;
    free(r.body);
    free(text);
    cJSON_Delete(req);
    return doc;
}

// The v2 answer's outputs and padding against the v1 answer to the same request: the same
// numbers (both run the same passes; a float32 read from binary and from its shortest decimal
// text differ by up to half its last place), and parameters.pad_* in order equal to meta.padding.
static void check_against_v1(const char *what, const cJSON *v2_doc, const bh_tensor outs[4],
                             const bh_golden *g, const char *op, bool backward) {
    cJSON *v1 = v1_answer(g, op, backward);
    if (!CHECK(v1 != NULL, "%s: the v1 answer to the same request", what)) return;
    for (int o = 0; o < 4; o++) {
        if (!outs[o].data) continue;
        bh_tensor want = {0};
        char why[160];
        CHECK(bh_from_json(&want, bh_outputs[o],
                           cJSON_GetObjectItemCaseSensitive(v1, bh_outputs[o])) &&
                  bh_close(&outs[o], &want, g->f64 ? 1e-14 : 1e-7, why, sizeof why),
              "%s %s against v1: %s", what, bh_outputs[o], why);
        bh_tensor_free(&want);
    }
    const cJSON *padding = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(v1, "meta"), "padding");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(v2_doc, "parameters");
    int i = 0;
    bool same = true;
    for (const cJSON *p = params ? params->child : NULL; p; p = p->next)
        if (strncmp(p->string, "pad_", 4) == 0) {
            const cJSON *side = cJSON_GetArrayItem(padding, i++);
            same &= side && cJSON_IsNumber(p) && p->valuedouble == side->valuedouble;
        }
    CHECK(same && i == cJSON_GetArraySize(padding) && i >= 2,
          "%s: parameters.pad_* (%d) are v1's meta.padding (%d)", what, i,
          cJSON_GetArraySize(padding));
    cJSON_Delete(v1);
}

static void check_golden(const bh_golden *g, bool backward, bh_v2_form form) {
    bh_bytes body = {0};
    size_t header_len;
    char id[300], what[400], header[32] = "";
    snprintf(id, sizeof id, "req-%s", g->name);
    bh_v2_body(&body, &header_len, g, backward, form, id);
    if (form.binary_in) snprintf(header, sizeof header, "%zu", header_len);
    snprintf(what, sizeof what, "%s %s in=%s%s out=%d pick=%d", g->name,
             backward ? "backward" : "forward", form.binary_in ? "binary" : "json",
             form.nested ? "/nested" : "", form.binary_out, form.pick);
    api_response r = {0};
    char op[48], model_name[48];
    snprintf(op, sizeof op, "%s.%s", g->family, backward ? "backward" : "forward");
    snprintf(model_name, sizeof model_name, "%s_%s", g->family, backward ? "backward" : "forward");
    codec_v2_infer(&r, body.data, body.len, header, op, NULL);
    if (!CHECK(r.status == 200, "%s: status %d %.300s", what, r.status, r.body)) goto done;
    bool any_binary = form.binary_out != 0;
    CHECK(strcmp(r.content_type, any_binary ? "application/octet-stream" : "application/json") == 0,
          "%s: content type %s", what, r.content_type);
    bh_tensor outs[4];
    char names[4][8];
    size_t json_len;
    cJSON *doc = bh_v2_read(r.body, r.len, outs, names, &json_len);
    CHECK(codec_v2_header_length(r.body, r.len) == json_len, "%s: the header split", what);
    const cJSON *got_id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(doc, "model_name");
    CHECK(cJSON_IsString(got_id) && strcmp(got_id->valuestring, id) == 0 &&
              cJSON_IsString(model) &&
              strcmp(model->valuestring, model_name) == 0,
          "%s: id and model_name echoed", what);
    const cJSON *algo = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(doc, "parameters"), "algorithm");
    CHECK(cJSON_IsString(algo) && (strcmp(algo->valuestring, "direct") == 0 ||
                                   strcmp(algo->valuestring, "winograd") == 0),
          "%s: parameters.algorithm says what ran", what);
    if (form.pick && backward)
        CHECK(strcmp(names[0], "dw") == 0 && strcmp(names[1], "dx") == 0 && !names[2][0],
              "%s: outputs in the order asked: %s %s %s", what, names[0], names[1], names[2]);
    for (int o = 0; o < 4; o++) {
        // Named outputs only when named (binary_out 2 names dw alone, or y forward).
        bool named = form.pick ? o == 1 || o == 2 : form.binary_out == 2 ? o == 2 : true;
        bool expected = backward ? o > 0 && g->out[o].rank && named : o == 0;
        if (!expected) {
            CHECK(!outs[o].data, "%s: %s not expected", what, bh_outputs[o]);
            continue;
        }
        char why[160];
        CHECK(bh_close(&outs[o], &g->out[o], bh_tolerance(g), why, sizeof why), "%s %s: %s", what,
              bh_outputs[o], why);
    }
    if (!form.binary_in && !form.nested) // once per case and pass: the forms are checked above
        check_against_v1(what, doc, outs, g, op, backward);
    for (int o = 0; o < 4; o++) bh_tensor_free(&outs[o]);
    cJSON_Delete(doc);
done:
    free(r.body);
    bh_free(&body);
}

// Every golden case: conv2d's (tests/golden) and the other families' (tests/golden/family).
static void test_golden(void) {
    static bh_golden cases[96];
    char dir[600];
    snprintf(dir, sizeof dir, "%s/family", t_golden_dir());
    int conv2d = bh_golden_load(cases, 48);
    int n = conv2d + bh_golden_load_from(dir, cases + conv2d, 48);
    CHECK(conv2d >= 8 && n - conv2d >= 24, "golden cases: %d conv2d, %d of the other families",
          conv2d, n - conv2d);
    int per_family[6] = {0};
    for (int c = 0; c < n; c++)
        for (int f = 0; f < 6; f++) per_family[f] += strcmp(cases[c].family, families[f]) == 0;
    for (int f = 0; f < 6; f++)
        CHECK(per_family[f] >= 3, "%s has golden cases: %d", families[f], per_family[f]);
    const bh_v2_form forms[] = {
        {false, false, 0, false}, {false, true, 0, false}, {true, false, 0, false},
        {true, false, 1, false},  {false, false, 2, false}, {true, false, 2, true},
        {false, true, 0, true},
    };
    for (int c = 0; c < n; c++)
        for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
            check_golden(&cases[c], true, forms[f]);
            if (f < 4) check_golden(&cases[c], false, forms[f]);
        }
    for (int c = 0; c < n; c++) bh_golden_free(&cases[c]);
}

// Expects {"error": "<message holding words>", "code": code} with this status.
static void expect_error(const char *what, const char *body, size_t len, const char *header,
                         const char *op, int status, const char *code, const char *words) {
    api_response r = {0};
    codec_v2_infer(&r, body, len, header, op, NULL);
    cJSON *doc = r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(doc, "error");
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(doc, "code");
    CHECK(r.status == status && cJSON_IsString(error) && strstr(error->valuestring, words) &&
              cJSON_IsString(got) && strcmp(got->valuestring, code) == 0 &&
              strcmp(r.content_type, "application/json") == 0,
          "%s: want %d %s with '%s', got %d %.300s", what, status, code, words, r.status, r.body);
    cJSON_Delete(doc);
    free(r.body);
}

// A 1x1 forward: x [1,1,2,2] FP32 in binary, w [1,1,1,1] in JSON.
#define BIN_HEADER                                                                                 \
    "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\","                      \
    "\"parameters\":{\"binary_data_size\":16}},"                                                   \
    "{\"name\":\"w\",\"shape\":[1,1,1,1],\"datatype\":\"FP32\",\"data\":[3]}]}"

static void test_binary_framing(void) {
    const float x[4] = {1, 2, 3, 4};
    bh_bytes b = {0};
    bh_puts(&b, BIN_HEADER);
    size_t hlen = b.len;
    bh_put(&b, x, sizeof x);
    char header[32];
    snprintf(header, sizeof header, "%zu", hlen);
    api_response r = {0};
    codec_v2_infer(&r, b.data, b.len, header, "conv2d.forward", NULL);
    CHECK(r.status == 200 && strstr(r.body, "\"data\":[3.0,6.0,9.0,12.0]"), "mixed binary and JSON: %d %s",
          r.status, r.body);
    free(r.body);
    // NaN in binary data is refused as in JSON (issue 12: it passed through).
    bh_bytes nan_body = {0};
    bh_puts(&nan_body, BIN_HEADER);
    const float with_nan[4] = {1, 2, NAN, 4};
    bh_put(&nan_body, with_nan, sizeof with_nan);
    snprintf(header, sizeof header, "%zu", hlen);
    expect_error("NaN in binary data", nan_body.data, nan_body.len, header, "conv2d.forward", 422,
                 "non_finite_number", "(flat index 2) is NaN");
    bh_free(&nan_body);
    // Binary data that starts misaligned (a header of odd length) is copied and still right.
    bh_bytes odd = {0};
    bh_puts(&odd, BIN_HEADER " ");
    bh_put(&odd, x, sizeof x);
    snprintf(header, sizeof header, "%zu", hlen + 1);
    r = (api_response){0};
    codec_v2_infer(&r, odd.data, odd.len, header, "conv2d.forward", NULL);
    CHECK(r.status == 200 && strstr(r.body, "\"data\":[3.0,6.0,9.0,12.0]"), "misaligned binary: %d %s",
          r.status, r.body);
    free(r.body);
    bh_free(&odd);

    const char *fwd = "conv2d.forward";
    char beyond[32], body_len[32];
    snprintf(beyond, sizeof beyond, "%zu", b.len + 1);
    snprintf(body_len, sizeof body_len, "%zu", b.len);
    expect_error("header length beyond the body", b.data, b.len, beyond, fwd, 400, "invalid_json",
                 "has only");
    expect_error("header length 2^64", b.data, b.len, "18446744073709551616", fwd, 400,
                 "invalid_json", "has only");
    expect_error("negative header length", b.data, b.len, "-5", fwd, 400, "invalid_json",
                 "must be the byte count");
    expect_error("header length not a number", b.data, b.len, "12a", fwd, 400, "invalid_json",
                 "must be the byte count");
    expect_error("header length of the whole body", b.data, b.len, body_len, fwd, 400,
                 "invalid_json", "not valid JSON");
    expect_error("header length one short", b.data, b.len, beyond[0] ? "10" : "", fwd, 400,
                 "invalid_json", "first 10 bytes");
    expect_error("binary data without the header", b.data, b.len, "", fwd, 400, "invalid_json",
                 "");
    expect_error("no header and JSON only, binary_data_size given", BIN_HEADER, hlen, "", fwd, 400,
                 "invalid_json", "only 0 bytes");
    snprintf(header, sizeof header, "%zu", hlen);
    // The same header with fewer or more bytes after it than binary_data_size claims.
    expect_error("binary data short", b.data, b.len - 1, header, fwd, 400, "invalid_json",
                 "only 15 bytes");
    bh_put(&b, "\0\0\0\0", 4);
    expect_error("binary data left over", b.data, b.len, header, fwd, 400, "invalid_json",
                 "4 bytes follow");
    bh_free(&b);

    static const struct {
        const char *what, *input, *code, *words;
        int status;
    } inputs[] = {
        {"binary_data_size not the shape's bytes",
         "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\","
         "\"parameters\":{\"binary_data_size\":12}}",
         "data_length_mismatch", "takes 16 bytes", 422},
        {"binary_data_size negative",
         "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\","
         "\"parameters\":{\"binary_data_size\":-16}}",
         "data_length_mismatch", "-16", 422},
        {"binary_data_size a string",
         "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\","
         "\"parameters\":{\"binary_data_size\":\"16\"}}",
         "invalid_type", "byte count", 422},
        {"FP64 bytes counted as FP32",
         "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP64\","
         "\"parameters\":{\"binary_data_size\":16}}",
         "data_length_mismatch", "takes 32 bytes", 422},
        {"missing binary_data_size (and data)",
         "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\",\"parameters\":{}}",
         "missing_field", "neither", 422},
        {"both data and binary_data_size",
         "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\",\"data\":[1,2,3,4],"
         "\"parameters\":{\"binary_data_size\":16}}",
         "invalid_value", "give one", 422},
        {"data not matching the shape",
         "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\",\"data\":[1,2,3]}",
         "data_length_mismatch", "has 3 numbers but shape [1, 1, 2, 2] needs 4", 422},
        {"nested data not matching the shape",
         "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\",\"data\":[[1,2],[3,4],[5,6]]}",
         "data_length_mismatch", "has 6 numbers", 422},
        {"ragged nested data",
         "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\",\"data\":[[1,2],[3]]}",
         "ragged_array", "inputs[0].data[1]", 422},
        {"a NaN", "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\",\"data\":[1,2,NaN,4]}",
         "non_finite_number", "inputs[0].data[2]", 422},
        {"a value beyond FP32",
         "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\",\"data\":[1,2,1e39,4]}",
         "value_out_of_range", "float32", 422},
        {"data that is not a list",
         "{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\",\"data\":\"1,2,3,4\"}",
         "invalid_type", "array of numbers", 422},
        {"a shape with -1", "{\"name\":\"x\",\"shape\":[1,-1,2,2],\"datatype\":\"FP32\",\"data\":[1]}",
         "invalid_shape", "at least 1", 422},
        {"a shape of 9 dimensions",
         "{\"name\":\"x\",\"shape\":[1,1,1,1,1,1,1,1,1],\"datatype\":\"FP32\",\"data\":[1]}",
         "invalid_shape", "1 to 8", 422},
        {"a shape of strings", "{\"name\":\"x\",\"shape\":[\"2\"],\"datatype\":\"FP32\",\"data\":[1]}",
         "invalid_shape", "whole numbers", 422},
        {"an empty shape", "{\"name\":\"x\",\"shape\":[],\"datatype\":\"FP32\",\"data\":[1]}",
         "invalid_shape", "1 to 8", 422},
        {"an unsupported datatype", "{\"name\":\"x\",\"shape\":[4],\"datatype\":\"INT8\",\"data\":[1]}",
         "unsupported_dtype", "INT8", 422},
        {"a datatype other than the first's",
         "{\"name\":\"w\",\"shape\":[1,1,1,1],\"datatype\":\"FP32\",\"data\":[1]},"
         "{\"name\":\"x\",\"shape\":[1,1,1,1],\"datatype\":\"FP64\",\"data\":[1]}",
         "unsupported_dtype", "one datatype", 422},
        {"an unknown input", "{\"name\":\"input\",\"shape\":[4],\"datatype\":\"FP32\",\"data\":[1]}",
         "unknown_field", "the inputs are x, w, dy", 422},
        {"an input twice",
         "{\"name\":\"w\",\"shape\":[1,1,1,1],\"datatype\":\"FP32\",\"data\":[1]},"
         "{\"name\":\"w\",\"shape\":[1,1,1,1],\"datatype\":\"FP32\",\"data\":[1]}",
         "duplicate_field", "given twice", 422},
        {"an input without a datatype", "{\"name\":\"x\",\"shape\":[4],\"data\":[1,2,3,4]}",
         "missing_field", "no \"datatype\"", 422},
        {"an unknown input field",
         "{\"name\":\"x\",\"shape\":[4],\"datatype\":\"FP32\",\"data\":[1,2,3,4],\"content\":1}",
         "unknown_field", "content", 422},
        {"shared memory", "{\"name\":\"x\",\"shape\":[4],\"datatype\":\"FP32\","
                          "\"parameters\":{\"shared_memory_region\":\"r\"}}",
         "unknown_field", "shared_memory_region", 422},
        {"an input that is not an object", "[1,2]", "invalid_type", "must be an object", 422},
    };
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        bh_bytes body = {0};
        bh_printf(&body, "{\"inputs\":[%s]}", inputs[i].input);
        expect_error(inputs[i].what, body.data, body.len, "", fwd, inputs[i].status,
                     inputs[i].code, inputs[i].words);
        bh_free(&body);
    }
}

static void test_requests(void) {
#define X4 "{\"name\":\"x\",\"shape\":[1,1,3,3],\"datatype\":\"FP64\",\"data\":[1,2,3,4,5,6,7,8,9]}"
#define W4 "{\"name\":\"w\",\"shape\":[1,1,2,2],\"datatype\":\"FP64\",\"data\":[1,0,0,1]}"
#define DY "{\"name\":\"dy\",\"shape\":[1,1,2,2],\"datatype\":\"FP64\",\"data\":[1,1,1,1]}"
    static const struct {
        const char *what, *op, *body, *code, *words, *path;
        int status;
    } cases[] = {
        {"not JSON", "conv2d.forward", "{\"inputs\":", "invalid_json", "", "", 400},
        {"not an object", "conv2d.forward", "[]", "invalid_type", "JSON object", "", 422},
        {"no inputs", "conv2d.forward", "{}", "missing_field", "\"inputs\" is required", "inputs",
         422},
        {"an unknown field", "conv2d.forward", "{\"inputs\":[],\"input\":[]}", "unknown_field",
         "input", "input", 422},
        {"an id that is a number", "conv2d.forward", "{\"id\":7,\"inputs\":[]}", "invalid_type",
         "id must be a string", "id", 422},
        {"an unknown parameter", "conv2d.forward",
         "{\"parameters\":{\"strides\":2},\"inputs\":[" X4 "," W4 "]}", "unknown_field",
         "stride, stride_h, stride_w", "parameters.strides", 422},
        {"a list parameter", "conv2d.forward",
         "{\"parameters\":{\"stride_h\":[2]},\"inputs\":[" X4 "," W4 "]}", "invalid_type",
         "an integer", "parameters.stride_h", 422},
        {"a fractional parameter", "conv2d.forward",
         "{\"parameters\":{\"groups\":1.5},\"inputs\":[" X4 "," W4 "]}", "invalid_value",
         "an integer", "parameters.groups", 422},
        {"padding both ways", "conv2d.forward",
         "{\"parameters\":{\"padding\":\"same\",\"pad_top\":1},\"inputs\":[" X4 "," W4 "]}",
         "invalid_value", "not both", "parameters.pad_top", 422},
        {"an unknown padding word", "conv2d.forward",
         "{\"parameters\":{\"padding\":\"full\"},\"inputs\":[" X4 "," W4 "]}", "invalid_value",
         "\"same\", \"valid\"", "parameters.padding", 422},
        {"an unknown algorithm", "conv2d.forward",
         "{\"parameters\":{\"algorithm\":\"fast\"},\"inputs\":[" X4 "," W4 "]}", "invalid_value",
         "\"winograd\"", "parameters.algorithm", 422},
        {"winograd for a 2x2 kernel (core's check, v2's path)", "conv2d.forward",
         "{\"parameters\":{\"algorithm\":\"winograd\"},\"inputs\":[" X4 "," W4 "]}",
         "invalid_value", "3x3", "parameters.algorithm", 422},
        {"binary_data_output not a boolean", "conv2d.forward",
         "{\"parameters\":{\"binary_data_output\":1},\"inputs\":[" X4 "," W4 "]}", "invalid_type",
         "true or false", "parameters.binary_data_output", 422},
        {"a stride of 0 (core's check, v2's path)", "conv2d.forward",
         "{\"parameters\":{\"stride_w\":0},\"inputs\":[" X4 "," W4 "]}", "invalid_value", "",
         "parameters.stride_w", 422},
        {"a negative pad (core's check, v2's path)", "conv2d.forward",
         "{\"parameters\":{\"pad_left\":-1},\"inputs\":[" X4 "," W4 "]}", "invalid_value", "",
         "parameters.pad_left", 422},
        {"a kernel too large (v2's path)", "conv2d.forward",
         "{\"inputs\":[" W4 ",{\"name\":\"x\",\"shape\":[1,1,1,3],\"datatype\":\"FP64\","
         "\"data\":[1,2,3]}]}",
         "kernel_too_large", "", "inputs[0].shape[2]", 422},
        {"no dy for backward", "conv2d.backward", "{\"inputs\":[" X4 "," W4 "]}", "missing_field",
         "dy is required", "dy", 422},
        {"dy for forward", "conv2d.forward", "{\"inputs\":[" X4 "," W4 "," DY "]}",
         "field_not_allowed", "not an input of conv2d.forward", "inputs[2]", 422},
        {"dy of the wrong shape", "conv2d.backward",
         "{\"parameters\":{\"padding\":1},\"inputs\":[" X4 "," W4 "," DY "]}", "shape_mismatch",
         "dy must have exactly y's shape", "inputs[2].shape[2]", 422},
        {"an output forward does not return", "conv2d.forward",
         "{\"inputs\":[" X4 "," W4 "],\"outputs\":[{\"name\":\"dx\"}]}", "unknown_output",
         "conv2d_forward returns y", "outputs[0].name", 422},
        {"an unknown output", "conv2d.backward",
         "{\"inputs\":[" X4 "," W4 "," DY "],\"outputs\":[{\"name\":\"grad\"}]}", "unknown_output",
         "\"grad\"", "outputs[0].name", 422},
        {"an output twice", "conv2d.backward",
         "{\"inputs\":[" X4 "," W4 "," DY "],\"outputs\":[{\"name\":\"dx\"},{\"name\":\"dx\"}]}",
         "duplicate_field", "twice", "outputs[1].name", 422},
        {"an output parameter unknown", "conv2d.backward",
         "{\"inputs\":[" X4 "," W4 "," DY "],\"outputs\":[{\"name\":\"dx\",\"parameters\":"
         "{\"classification\":2}}]}",
         "unknown_field", "classification", "outputs[0].parameters.classification", 422},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        api_response r = {0};
        codec_v2_infer(&r, cases[i].body, strlen(cases[i].body), NULL, cases[i].op, NULL);
        cJSON *doc = cJSON_ParseWithLength(r.body, r.len);
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(doc, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(doc, "code");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(doc, "path");
        CHECK(r.status == cases[i].status && cJSON_IsString(error) &&
                  strstr(error->valuestring, cases[i].words) && cJSON_IsString(code) &&
                  strcmp(code->valuestring, cases[i].code) == 0 &&
                  strcmp(cJSON_IsString(path) ? path->valuestring : "", cases[i].path) == 0,
              "%s: want %d %s '%s' at '%s', got %d %.300s", cases[i].what, cases[i].status,
              cases[i].code, cases[i].words, cases[i].path, r.status, r.body);
        cJSON_Delete(doc);
        free(r.body);
    }
    // Parameters that pass: "same", "valid", explicit pads; timeout ignored; FP64 answer.
    static const struct {
        const char *params, *y;
    } fine[] = {
        {"{\"padding\":\"valid\",\"timeout\":1000}", "[6.0,8.0,12.0,14.0]"},
        {"{\"pad_top\":0,\"pad_bottom\":0,\"pad_left\":0,\"pad_right\":0}", "[6.0,8.0,12.0,14.0]"},
        {"{\"padding\":\"same\"}", "[6.0,8.0,3.0,12.0,14.0,6.0,7.0,8.0,9.0]"},
        {"{\"stride_h\":2,\"stride_w\":1,\"dilation_h\":1,\"dilation_w\":1,\"groups\":1}",
         "[6.0,8.0]"},
    };
    for (size_t i = 0; i < sizeof fine / sizeof *fine; i++) {
        bh_bytes body = {0};
        bh_printf(&body, "{\"parameters\":%s,\"inputs\":[" X4 "," W4 "]}", fine[i].params);
        api_response r = {0};
        codec_v2_infer(&r, body.data, body.len, NULL, "conv2d.forward", NULL);
        CHECK(r.status == 200 && strstr(r.body, fine[i].y) &&
                  strstr(r.body, "\"datatype\":\"FP64\""),
              "parameters %s: %d %.300s", fine[i].params, r.status, r.body);
        free(r.body);
        bh_free(&body);
    }
}

// The other families' models: wrong ranks, parameters the model does not take, forms mixed,
// per-axis values out of range (each at its v2 path), and layers small enough to work out by
// hand, each parameter written per axis.
static void test_family_requests(void) {
#define T(name, shape, data) \
    "{\"name\":\"" name "\",\"shape\":" shape ",\"datatype\":\"FP64\",\"data\":" data "}"
#define X1 T("x", "[1,1,4]", "[1,2,3,4]")
#define W1 T("w", "[1,1,2]", "[1,1]")
#define X3 T("x", "[1,1,2,2,2]", "[1,2,3,4,5,6,7,8]")
#define W3 T("w", "[1,1,1,1,1]", "[2]")
#define X2 T("x", "[1,1,2,2]", "[1,2,3,4]")
#define W2 T("w", "[1,1,2,2]", "[1,1,1,1]")
#define DY3 T("dy", "[1,1,2,2,2]", "[1,1,1,1,1,1,1,1]")
    static const struct {
        const char *what, *op, *params, *inputs, *code, *path, *words;
    } refused[] = {
        {"conv1d with a 4-D x", "conv1d.forward", "{}", X2 "," W1, "invalid_shape",
         "inputs[0].shape", "[N, C, L] or [C, L]"},
        {"conv3d with a 3-D x", "conv3d.forward", "{}", X1 "," W3, "invalid_shape",
         "inputs[0].shape", "[N, C, D, H, W]"},
        {"conv_transpose2d with a 3-D w", "conv_transpose2d.forward", "{}", X2 "," W1,
         "shape_mismatch", "inputs[1].shape", "[C, F/groups, kh, kw]"},
        {"conv_transpose3d with a 3-D x", "conv_transpose3d.forward", "{}", X1 "," W3,
         "invalid_shape", "inputs[0].shape", "[N, C, D, H, W]"},
        {"stride_h for conv1d (one axis: plain names)", "conv1d.forward", "{\"stride_h\":2}",
         X1 "," W1, "unknown_field", "parameters.stride_h",
         "conv1d has 1 spatial axis; give stride (one integer for every axis)"},
        {"stride_d for conv2d", "conv2d.forward", "{\"stride_d\":2}", X2 "," W2, "unknown_field",
         "parameters.stride_d", "conv2d has 2 spatial axes (h, w); give stride (one integer for "
         "every axis) or one per axis: stride_h, stride_w"},
        {"output_padding_d for conv_transpose2d", "conv_transpose2d.forward",
         "{\"output_padding_d\":0}", X2 "," W2, "unknown_field", "parameters.output_padding_d",
         "conv_transpose2d has 2 spatial axes"},
        {"conv2d's four sides for conv_transpose2d", "conv_transpose2d.forward",
         "{\"pad_top\":1}", X2 "," W2, "unknown_field", "parameters.pad_top", "padding_h"},
        {"a typo in conv3d's", "conv3d.forward", "{\"dilation_x\":1}", X3 "," W3, "unknown_field",
         "parameters.dilation_x", "dilation_d, dilation_h, dilation_w"},
        {"stride for every axis and stride_d both", "conv3d.forward",
         "{\"stride\":1,\"stride_d\":2}", X3 "," W3, "invalid_value", "parameters.stride_d",
         "not both"},
        {"stride_d 0", "conv3d.forward", "{\"stride_d\":0}", X3 "," W3, "invalid_value",
         "parameters.stride_d", ""},
        {"dilation_w 0", "conv3d.backward", "{\"dilation_w\":0}", X3 "," W3 "," DY3,
         "invalid_value", "parameters.dilation_w", ""},
        {"padding_d negative", "conv3d.forward", "{\"padding_d\":-1}", X3 "," W3, "invalid_value",
         "parameters.padding_d", ""},
        {"output_padding_w not below stride or dilation", "conv_transpose3d.forward",
         "{\"output_padding_w\":1}", X3 "," W3, "invalid_value", "parameters.output_padding_w",
         "smaller than the stride"},
        {"output_padding not below stride or dilation", "conv_transpose1d.forward",
         "{\"stride\":2,\"output_padding\":2}", X1 "," W1, "invalid_value",
         "parameters.output_padding", "smaller than the stride (2)"},
        {"output_padding for conv3d", "conv3d.forward", "{\"output_padding\":1}", X3 "," W3,
         "field_not_allowed", "parameters.output_padding", "transposed convolutions only"},
        {"padding \"same\" for conv_transpose2d", "conv_transpose2d.forward",
         "{\"padding\":\"same\"}", X2 "," W2, "invalid_value", "parameters.padding",
         "no \"same\""},
        {"padding_h leaving no output", "conv_transpose2d.forward", "{\"padding_h\":2}",
         X2 "," W2, "invalid_value", "parameters.padding_h", "height would be"},
        {"padding_mode reflect for conv_transpose1d", "conv_transpose1d.forward",
         "{\"padding_mode\":\"reflect\"}", X1 "," W1, "invalid_value", "parameters.padding_mode",
         "only \"zeros\""},
        {"padding_mode unknown", "conv1d.forward", "{\"padding_mode\":\"mirror\"}", X1 "," W1,
         "invalid_value", "parameters.padding_mode", "\"circular\""},
        {"padding_mode a number", "conv1d.forward", "{\"padding_mode\":1}", X1 "," W1,
         "invalid_type", "parameters.padding_mode", "\"reflect\""},
        {"reflect padding as large as x", "conv1d.forward",
         "{\"padding\":4,\"padding_mode\":\"reflect\"}", X1 "," W1, "invalid_value",
         "parameters.padding", "smaller than"},
        {"groups not dividing the channels", "conv1d.forward", "{\"groups\":2}", X1 "," W1,
         "invalid_value", "parameters.groups", ""},
        {"dy of the wrong shape", "conv3d.backward", "{\"stride_h\":2}", X3 "," W3 "," DY3,
         "shape_mismatch", "inputs[2].shape[3]", "dy must have exactly y's shape"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        bh_bytes body = {0};
        bh_printf(&body, "{\"parameters\":%s,\"inputs\":[%s]}", refused[i].params,
                  refused[i].inputs);
        api_response r = {0};
        codec_v2_infer(&r, body.data, body.len, NULL, refused[i].op, NULL);
        cJSON *doc = cJSON_ParseWithLength(r.body, r.len);
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(doc, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(doc, "code");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(doc, "path");
        CHECK(r.status == 422 && cJSON_IsString(error) &&
                  strstr(error->valuestring, refused[i].words) && cJSON_IsString(code) &&
                  strcmp(code->valuestring, refused[i].code) == 0 && cJSON_IsString(path) &&
                  strcmp(path->valuestring, refused[i].path) == 0,
              "%s: want 422 %s '%s' at '%s', got %d %.400s", refused[i].what, refused[i].code,
              refused[i].words, refused[i].path, r.status, r.body);
        cJSON_Delete(doc);
        free(r.body);
        bh_free(&body);
    }
    // Worked by hand: y, and the padding each answer says it applied.
    static const struct {
        const char *what, *op, *params, *inputs, *y, *pads;
    } fine[] = {
        {"conv1d, stride and padding for its axis", "conv1d.forward",
         "{\"stride\":2,\"padding\":1}", X1 "," W1, // [0 1 2 3 4 0] by [1 1], every other
         "\"shape\":[1, 1, 3],\"data\":[1.0,5.0,4.0]", "\"pad_left\":1,\"pad_right\":1,"},
        {"conv3d, a stride per axis", "conv3d.forward",
         "{\"stride_d\":2,\"stride_h\":1,\"stride_w\":2}", X3 "," W3, // x[0, h, 0] * 2
         "\"shape\":[1, 1, 1, 2, 1],\"data\":[2.0,6.0]",
         "\"pad_front\":0,\"pad_back\":0,\"pad_top\":0,\"pad_bottom\":0,\"pad_left\":0,"
         "\"pad_right\":0,"},
        {"conv3d, replicate padding along the width", "conv3d.forward",
         "{\"padding_w\":1,\"padding_mode\":\"replicate\"}",
         T("x", "[1,1,1,1,2]", "[1,2]") "," T("w", "[1,1,1,1,3]", "[1,1,1]"), // [1 1 2 2]
         "\"shape\":[1, 1, 1, 1, 2],\"data\":[4.0,5.0]", "\"pad_left\":1,\"pad_right\":1,"},
        {"conv_transpose1d, output_padding", "conv_transpose1d.forward",
         "{\"stride\":2,\"output_padding\":1}", T("x", "[1,1,2]", "[1,2]") "," W1,
         "\"shape\":[1, 1, 5],\"data\":[1.0,1.0,2.0,2.0,0.0]", "\"pad_left\":0,\"pad_right\":0,"},
        {"conv_transpose2d, padding per axis", "conv_transpose2d.forward",
         "{\"padding_h\":1,\"padding_w\":0}", X2 "," W2, // the middle row of [1 3 2; 4 10 6; 3 7 4]
         "\"shape\":[1, 1, 1, 3],\"data\":[4.0,10.0,6.0]",
         "\"pad_top\":1,\"pad_bottom\":1,\"pad_left\":0,\"pad_right\":0,"},
        {"conv_transpose3d, stride and output_padding along the width", "conv_transpose3d.forward",
         "{\"stride_w\":2,\"output_padding_w\":1}",
         T("x", "[1,1,1,1,2]", "[1,2]") "," T("w", "[1,1,1,1,1]", "[3]"),
         "\"shape\":[1, 1, 1, 1, 4],\"data\":[3.0,0.0,6.0,0.0]", "\"pad_front\":0,"},
    };
    for (size_t i = 0; i < sizeof fine / sizeof *fine; i++) {
        bh_bytes body = {0};
        bh_printf(&body, "{\"parameters\":%s,\"inputs\":[%s]}", fine[i].params, fine[i].inputs);
        api_response r = {0};
        codec_v2_infer(&r, body.data, body.len, NULL, fine[i].op, NULL);
        CHECK(r.status == 200 && strstr(r.body, fine[i].y) && strstr(r.body, fine[i].pads),
              "%s: want %s and %s, got %d %.400s", fine[i].what, fine[i].y, fine[i].pads, r.status,
              r.body);
        free(r.body);
        bh_free(&body);
    }
#undef T
#undef X1
#undef W1
#undef X3
#undef W3
#undef X2
#undef W2
#undef DY3
}

// Every model's metadata: its name, inputs and outputs of the family's rank, the parameters
// it takes; and its readiness.
static void test_model_metadata(void) {
    for (int f = 0; f < 6; f++)
        for (int backward = 0; backward < 2; backward++) {
            char op[48], model[48];
            snprintf(op, sizeof op, "%s.%s", families[f], backward ? "backward" : "forward");
            snprintf(model, sizeof model, "%s_%s", families[f], backward ? "backward" : "forward");
            int spatial = strchr(families[f], '1') ? 1 : strchr(families[f], '3') ? 3 : 2;
            api_response r = {0};
            codec_v2_model_metadata(&r, op);
            cJSON *doc = cJSON_ParseWithLength(r.body, r.len);
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
            const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(doc, "inputs");
            const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(doc, "outputs");
            const cJSON *x = cJSON_GetArrayItem(inputs, 0), *y = cJSON_GetArrayItem(outputs, 0);
            const cJSON *taken = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(doc, "parameters"), "request_parameters");
            bool per_axis = spatial > 1 && cJSON_IsString(taken) &&
                            strstr(taken->valuestring, spatial == 3 ? "stride_d" : "stride_h");
            CHECK(r.status == 200 && cJSON_IsString(name) &&
                      strcmp(name->valuestring, model) == 0 &&
                      cJSON_GetArraySize(inputs) == 3 + backward &&
                      cJSON_GetArraySize(outputs) == (backward ? 3 : 1) &&
                      cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(x, "shape")) ==
                          spatial + 2 &&
                      cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(y, "shape")) ==
                          spatial + 2 &&
                      (spatial == 1 ? !strstr(taken->valuestring, "stride_") : per_axis) &&
                      (spatial == 3) == (strstr(taken->valuestring, "stride_d") != NULL),
                  "%s metadata: %d %s", model, r.status, r.body);
            cJSON_Delete(doc);
            free(r.body);
            codec_v2_model_ready(&r, op);
            char want[96];
            snprintf(want, sizeof want, "{\"name\":\"%s\",\"ready\":true}", model);
            CHECK(strcmp(r.body, want) == 0, "%s ready: %s", model, r.body);
            free(r.body);
        }
}

static void test_restyle_and_metadata(void) {
    api_response r = {.status = 404, .content_type = "application/json"};
    api_error_refuse(&r, API_E_NOT_FOUND, "", "there is no \"/v2/models/x\"");
    codec_v2_restyle_error(&r);
    CHECK(r.status == 404 && strcmp(r.body, "{\"error\":\"there is no \\\"/v2/models/x\\\"\","
                                            "\"code\":\"not_found\"}") == 0,
          "restyled 404: %s", r.body);
    char *before = strdup(r.body);
    codec_v2_restyle_error(&r); // already v2: unchanged
    CHECK(strcmp(before, r.body) == 0, "restyling twice changes nothing");
    free(before);
    free(r.body);
    r = (api_response){.status = 200, .body = strdup("{\"error\":{\"code\":\"x\",\"message\":\"m\"}}")};
    r.len = strlen(r.body);
    codec_v2_restyle_error(&r);
    CHECK(strstr(r.body, "\"message\""), "a 200 is never restyled");
    free(r.body);

    CHECK(codec_v2_header_length("{\"a\":\"}\\\"{\"}\x01\x02", 14) == 12,
          "the header split skips braces in strings");
    CHECK(codec_v2_header_length("[1]", 3) == 3 && codec_v2_header_length("{", 1) == 1,
          "not a split: the whole length");

    codec_v2_server_metadata(&r, "1.2.3");
    cJSON *doc = cJSON_Parse(r.body);
    const cJSON *ext = cJSON_GetObjectItemCaseSensitive(doc, "extensions");
    CHECK(cJSON_IsArray(ext) && strcmp(cJSON_GetArrayItem(ext, 0)->valuestring,
                                       "binary_tensor_data") == 0 &&
              strcmp(cJSON_GetObjectItemCaseSensitive(doc, "version")->valuestring, "1.2.3") == 0,
          "server metadata: %s", r.body);
    cJSON_Delete(doc);
    free(r.body);
    codec_v2_model_metadata(&r, "conv2d.backward");
    doc = cJSON_Parse(r.body);
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(doc, "inputs");
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(doc, "outputs");
    CHECK(cJSON_GetArraySize(inputs) == 4 && cJSON_GetArraySize(outputs) == 3 &&
              strcmp(cJSON_GetObjectItemCaseSensitive(doc, "name")->valuestring,
                     "conv2d_backward") == 0,
          "model metadata: %s", r.body);
    cJSON_Delete(doc);
    free(r.body);
    codec_v2_model_ready(&r, "conv2d.forward");
    CHECK(strcmp(r.body, "{\"name\":\"conv2d_forward\",\"ready\":true}") == 0, "ready: %s",
          r.body);
    free(r.body);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    test_golden();
    test_binary_framing();
    test_requests();
    test_family_requests();
    test_model_metadata();
    test_restyle_and_metadata();
    return t_finish("test_v2");
}
