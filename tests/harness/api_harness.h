// api_harness: the golden cases of tests/golden through any front door that takes a v1
// JSON body (codec_run_json in-process, `convd run` as a process), forward and backward, in
// both tensor forms, checked against PyTorch's tensors: float64 within a relative error of
// 1e-10 per element (CS231n's rel_error), float32 within 1e-5 of the largest expected value.
#ifndef API_HARNESS_H
#define API_HARNESS_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "tests/harness/http_harness.h"

// Sends one body through a front door: returns the response body (heap, NUL-terminated; NULL
// when there is none) and its status (HTTP status or exit status, the door's own).
typedef char *(*ah_door)(const char *body, int *status, void *ctx);

// max over elements of |a-b| / max(1e-8, |a|+|b|), CS231n's measure.
double ah_rel_error(const th_tensor *a, const th_tensor *b);

// Every golden case through `door` (conv2d's in tests/golden, the other ops' in
// tests/golden/family, each sent as its "family"'s op), forward and backward, both tensor forms; `ok_status` is
// the door's success status. `with_op`: the body names its op (else the door supplies it, and
// `op_out` gets the op before each call). Returns how many cases were found.
int ah_golden_through(ah_door door, void *ctx, int ok_status, bool with_op, const char **op_out);

#endif
