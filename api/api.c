#include "api/api.h"

#include "core/conv.h"

void api_options_default(api_options *opt) {
    *opt = (api_options){
        .max_elements = (int64_t)1 << 24, // 64 MiB of float32, 128 MiB of float64
        .max_flops = 50000000000,         // 50 GFLOP: well under a second on a modern core
        .workspace_cap = CONV_WORKSPACE_CAP_DEFAULT,
        .threads = 1,
    };
}

const api_options *api_options_or_default(const api_options *opt, api_options *defaults) {
    if (opt) return opt;
    api_options_default(defaults);
    return defaults;
}
