#include "api/api.h"


#include "api/codec/codec.h"

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
    codec_v1_run(out, CODEC_JSON, body, len, NULL, op_from_path, opt);
}
