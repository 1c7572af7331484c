#include "api/codec/codec.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_buf.h"
#include "api/api_errors.h"
#include "api/api_exec.h"
#include "api/codec/codec_json.h"
#include "api/api_validate.h"
#include "api/codec/codec_safetensors.h"

const char codec_json_type[] = "application/json";
const char codec_binary_type[] = "application/octet-stream";

// The q-value `accept` gives `type` ("application/json"): that of the most specific media range
// matching it (RFC 9110 12.5.1), or -1 when none does.
static double accept_quality(const char *accept, const char *type) {
    double best_q = -1;
    int best_rank = 0;
    size_t slash = strcspn(type, "/");
    for (const char *p = accept; *p;) {
        size_t item = strcspn(p, ",");
        const char *end = p + item;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        size_t range = strcspn(p, ";,");
        if (p + range > end) range = (size_t)(end - p);
        while (range && (p[range - 1] == ' ' || p[range - 1] == '\t')) range--;
        int rank = 0;
        if (range == strlen(type) && strncasecmp(p, type, range) == 0) rank = 3;
        else if (range == slash + 2 && strncasecmp(p, type, slash + 1) == 0 && p[slash + 1] == '*')
            rank = 2;
        else if (range == 3 && strncmp(p, "*/*", 3) == 0) rank = 1;
        if (rank > best_rank) {
            double q = 1;
            for (const char *param = p + range; param < end; param++)
                if (*param == ';') {
                    const char *v = param + 1;
                    while (*v == ' ' || *v == '\t') v++;
                    if ((v[0] == 'q' || v[0] == 'Q') && v[1] == '=') q = strtod(v + 2, NULL);
                }
            best_rank = rank;
            best_q = q < 0 ? 0 : q > 1 ? 1 : q;
        }
        p = *end ? end + 1 : end;
    }
    return best_q;
}

codec_format codec_negotiate(const char *accept, codec_format own) {
    if (!accept || !*accept) return own;
    double json = accept_quality(accept, codec_json_type);
    double binary = accept_quality(accept, codec_binary_type);
    if (json > binary) return CODEC_JSON;
    if (binary > json) return CODEC_BINARY;
    return own;
}

static bool decode(api_request *req, codec_format in, const char *body, size_t len,
                   api_error *err) {
    return in == CODEC_BINARY ? codec_safetensors_decode(req, body, len, err)
                              : codec_json_decode(req, body, len, err);
}

void codec_v1_run(api_response *out, codec_format in, const char *body, size_t len,
                  const char *accept, const char *op_from_path, const api_options *opt) {
    api_options defaults;
    opt = api_options_or_default(opt, &defaults);
    api_request req;
    api_request_init(&req);
    api_plan plan;
    api_result res = {0};
    api_error err;
    codec_format answer = codec_negotiate(accept, in);
    bool ok = decode(&req, in, body, len, &err) &&
              api_validate(&plan, &req, op_from_path, opt, &err) &&
              api_admit(opt,
                        api_working_set(&req, &plan, opt,
                                        answer == CODEC_BINARY ? conv_dtype_size(req.dtype)
                                                               : API_JSON_NUMBER_BYTES),
                        plan.flops,
                        "its outputs, scratch and answer", &err) &&
              api_execute(&res, &req, &plan, opt, &err);
    api_request_free(&req); // inputs are done with: free what was copied before the body grows
    if (ok) {
        api_buf b = {0};
        if (answer == CODEC_BINARY) codec_safetensors_put_result(&b, &req, &plan, &res);
        else codec_json_put_result(&b, &req, &plan, &res);
        out->body = api_buf_take(&b, &out->len);
        out->status = 200;
        out->content_type = answer == CODEC_BINARY ? codec_binary_type : codec_json_type;
        if (!out->body) ok = api_fail(&err, API_E_OUT_OF_MEMORY, "", "out of memory for the response");
    }
    api_result_free(&res);
    if (!ok) api_error_to_response(out, &err);
}

void codec_run_json(api_response *out, const char *body, size_t len, const char *op_from_path,
                    const api_options *opt) {
    codec_v1_run(out, CODEC_JSON, body, len, NULL, op_from_path, opt);
}
