// fuzz_common: what the libFuzzer targets share. Limits small enough that any input the decoders
// accept also runs through validation, execution and both encoders in microseconds, so the
// fuzzer spends its time on the decoders and never on arithmetic.
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include "api/api.h"

static inline api_options fuzz_options(void) {
    api_options opt;
    api_options_default(&opt);
    opt.max_elements = 4096;
    opt.max_flops = 200000;
    opt.workspace_cap = (size_t)1 << 20;
    opt.threads = 1;
    return opt;
}

#endif
