// libFuzzer target: the v1 safetensors door (every rule of the reference reader, __metadata__
// through the JSON decoder, validation, execution, both answer formats) and the Accept
// negotiation. Seeds: fuzz/corpus/safetensors.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/codec/codec.h"
#include "fuzz/fuzz_common.h"

static void one_input(const uint8_t *data, size_t size) {
    api_options opt = fuzz_options();
    // The first byte picks the route's op and the Accept header; the rest is the file. The
    // file is copied to the heap, as the server holds bodies, so that ASan sees its edges.
    const char *ops[] = {NULL, "conv2d.forward", "conv2d.backward", NULL};
    const char *accepts[] = {"", "application/json", "application/octet-stream;q=0.1, */*",
                             "text/html, application/*;q=0"};
    unsigned pick = size ? data[0] : 0;
    size_t len = size ? size - 1 : 0;
    char *body = malloc(len ? len : 1);
    if (!body) return;
    memcpy(body, data + (size ? 1 : 0), len);
    api_response out = {0};
    codec_v1_run(&out, CODEC_BINARY, body, len, accepts[pick >> 2 & 3], ops[pick & 3], &opt);
    if (out.status == 500) abort(); // nothing a client sends may be an internal error
    free(out.body);
    free(body);
    // Accept headers of any bytes.
    char *accept = malloc(len + 1);
    if (!accept) return;
    memcpy(accept, data + (size ? 1 : 0), len);
    accept[len] = '\0';
    codec_format f = codec_negotiate(accept, (pick & 1) ? CODEC_BINARY : CODEC_JSON);
    if (f != CODEC_JSON && f != CODEC_BINARY) abort();
    free(accept);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_judged(one_input, data, size);
}
