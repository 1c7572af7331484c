// libFuzzer target: the v1 JSON door (codec_json_decode through validation, execution and both
// answer formats), as the HTTP JSON codec runs it. Seeds: fuzz/corpus/json.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "api/codec/codec.h"
#include "fuzz/fuzz_common.h"

static void one_input(const uint8_t *data, size_t size) {
    api_options opt = fuzz_options();
    // The first byte picks the route's op and the answer's format; the rest is the body.
    const char *ops[] = {NULL, "conv2d.forward", "conv2d.backward", NULL};
    const char *accepts[] = {"", "application/octet-stream", "application/json", "*/*;q=0.5"};
    unsigned pick = size ? data[0] : 0;
    const char *body = size ? (const char *)data + 1 : "";
    size_t len = size ? size - 1 : 0;
    api_response out = {0};
    codec_v1_run(&out, CODEC_JSON, body, len, accepts[pick >> 2 & 3], ops[pick & 3], &opt);
    if (out.status == 500) abort(); // nothing a client sends may be an internal error
    free(out.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_judged(one_input, data, size);
}
