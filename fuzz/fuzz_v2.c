// libFuzzer target: the Open Inference Protocol v2 door: the Inference-Header-Content-Length
// split (any value, also beyond the body or negative), the JSON header, binary inputs, and the
// answer (JSON or binary); also the restyling of error bodies and the answer-header split.
// Input: one byte of mode (bit 0-1: how the header length is written, bits 2-7: the model, the
// op api_ops[(mode >> 2) % api_op_count], so 0 and 1 are conv2d's forward and backward), then
// for modes 1-3 two bytes of number, then the body. Seeds: fuzz/corpus/v2.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_model.h"
#include "api/codec/codec_v2.h"
#include "fuzz/fuzz_common.h"

static void one_input(const uint8_t *data, size_t size) {
    if (size < 3) return;
    unsigned mode = data[0], number = data[1] | (unsigned)data[2] << 8;
    const uint8_t *rest = mode & 3 ? data + 3 : data + 1;
    size_t len = size - (size_t)(rest - data);
    char header[32] = "";
    switch (mode & 3) {
    case 1: snprintf(header, sizeof header, "%u", number); break;        // as sent
    case 2: snprintf(header, sizeof header, "%zu", number > len ? len : len - number); break;
    case 3: snprintf(header, sizeof header, "-%u", number); break;       // negative
    default: break;                                                      // absent
    }
    char *body = malloc(len ? len : 1); // a heap copy, as the server holds bodies
    if (!body) return;
    memcpy(body, rest, len);
    api_options opt = fuzz_options();
    api_response out = {0};
    codec_v2_infer(&out, body, len, header, api_ops[(mode >> 2) % (unsigned)api_op_count].name,
                   &opt);
    if (out.status == 500) abort(); // nothing a client sends may be an internal error
    if (out.status == 200 && codec_v2_header_length(out.body, out.len) > out.len) abort();
    free(out.body);
    // The same bytes as an error body to restyle (what the server does to its refusals).
    api_response error = {.status = 400, .body = body, .len = len};
    codec_v2_restyle_error(&error);
    free(error.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_judged(one_input, data, size);
}
