#include "api/api.h"

#include <stdlib.h>

#include "api/api_buf.h"
#include "api/api_errors.h"
#include "api/api_exec.h"
#include "api/api_json.h"
#include "api/api_model.h"
#include "api/api_validate.h"

void api_options_default(api_options *opt) {
    *opt = (api_options){
        .max_elements = (int64_t)1 << 24, // 64 MiB of float32, 128 MiB of float64
        .max_flops = 50000000000,         // 50 GFLOP: well under a second on a modern core
        .workspace_cap = CONV_WORKSPACE_CAP_DEFAULT,
        .threads = 1,
    };
}

void api_run_json(api_response *out, const char *body, size_t len, const char *op_from_path,
                  const api_options *opt) {
    api_options defaults;
    if (!opt) {
        api_options_default(&defaults);
        opt = &defaults;
    }
    api_request req;
    api_request_init(&req);
    api_plan plan;
    api_result res = {0};
    api_error err;
    bool ok = api_json_decode(&req, body, len, &err) &&
              api_validate(&plan, &req, op_from_path, opt, &err) &&
              api_execute(&res, &req, &plan, opt, &err);
    api_request_free(&req); // the inputs are done with: free them before the body grows
    if (ok) {
        api_buf b = {0};
        api_json_put_result(&b, &req, &plan, &res);
        out->body = api_buf_take(&b, &out->len);
        out->status = 200;
        out->content_type = "application/json";
        if (!out->body) {
            api_fail(&err, API_E_INTERNAL, "", "out of memory while writing the response");
            ok = false;
        }
    }
    api_result_free(&res);
    if (!ok) api_error_response(out, &err);
}
