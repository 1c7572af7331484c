// The Open Inference Protocol v2 door in-process (codec_v2_infer): every golden case with JSON
// data (flat and nested), binary inputs (Triton's extension), binary outputs (all, per output,
// mixed), outputs picked and ordered, ids echoed, FP32 and FP64; malformed bodies (header
// length beyond the body, negative, not a number; missing binary_data_size; sizes not matching
// shapes; bytes left over) and invalid requests, each a {"error": "..."} with a status; the
// error restyling of server refusals, the header split, and the metadata bodies.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_errors.h"
#include "api/codec/codec_v2.h"
#include "server/blas_boot.h"
#include "tests/harness/binary_harness.h"
#include "tests/testlib.h"

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
    codec_v2_infer(&r, body.data, body.len, header, backward ? "conv2d.backward" : "conv2d.forward",
                   NULL);
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
              strcmp(model->valuestring, backward ? "conv2d_backward" : "conv2d_forward") == 0,
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
    for (int o = 0; o < 4; o++) bh_tensor_free(&outs[o]);
    cJSON_Delete(doc);
done:
    free(r.body);
    bh_free(&body);
}

static void test_golden(void) {
    static bh_golden cases[32];
    int n = bh_golden_load(cases, 32);
    CHECK(n >= 8, "golden cases: %d", n);
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
         "{\"parameters\":{\"stride\":2},\"inputs\":[" X4 "," W4 "]}", "unknown_field",
         "stride_h", "parameters.stride", 422},
        {"a list parameter", "conv2d.forward",
         "{\"parameters\":{\"stride_h\":[2]},\"inputs\":[" X4 "," W4 "]}", "invalid_type",
         "an integer", "parameters.stride_h", 422},
        {"a fractional parameter", "conv2d.forward",
         "{\"parameters\":{\"groups\":1.5},\"inputs\":[" X4 "," W4 "]}", "invalid_value",
         "an integer", "parameters.groups", 422},
        {"padding both ways", "conv2d.forward",
         "{\"parameters\":{\"padding\":\"same\",\"pad_top\":1},\"inputs\":[" X4 "," W4 "]}",
         "invalid_value", "not both", "parameters.padding", 422},
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
    test_restyle_and_metadata();
    return t_finish("test_v2");
}
