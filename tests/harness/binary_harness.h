// binary_harness: what the binary-format tests share, written independently of api/codec*.c so
// that the tests judge the codecs rather than repeat them: a safetensors writer and reader, the
// golden cases as tensors, and the comparison of flat tensors.
#ifndef BINARY_HARNESS_H
#define BINARY_HARNESS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// A growable byte string.
typedef struct {
    char *data;
    size_t len, cap;
} bh_bytes;

// Appending to a growing byte string (kept NUL-terminated; aborts the test without memory).
void bh_put(bh_bytes *b, const void *data, size_t n);
void bh_puts(bh_bytes *b, const char *s);
void bh_printf(bh_bytes *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bh_free(bh_bytes *b);

// A dense tensor held as doubles whatever its wire dtype.
typedef struct {
    char name[16];
    int rank;
    long long shape[8];
    size_t n;
    double *data;
} bh_tensor;

// Frees the tensor's data and leaves it empty.
void bh_tensor_free(bh_tensor *t);

// A v1 JSON tensor (nested array, or {"shape", "data"}) as a float64 bh_tensor named `name`;
// false when malformed.
bool bh_from_json(bh_tensor *t, const char *name, const cJSON *v);

// A safetensors body: the tensors in order, F32 or F64, `metadata` a JSON object text (or NULL)
// written as __metadata__, the header padded with spaces to `pad_to` bytes after the 8 (1 = no
// padding, 8 = the reference writer's alignment).
void bh_safetensors(bh_bytes *out, const bh_tensor *tensors, int count, bool f64,
                    const char *metadata, int pad_to);

// Reads tensor `name` out of a safetensors body (trusting its framing; checks only what the
// tests rely on). *metadata (when not NULL) gets the __metadata__ object (the caller deletes the
// returned root). Returns the parsed header, or NULL when the body or tensor is not there.
cJSON *bh_read_safetensors(bh_tensor *t, const char *body, size_t len,
                           const char *name, const cJSON **metadata);

// Whether `got` matches `want` in shape and within tol * (the largest expected magnitude);
// `why` says what differs.
bool bh_close(const bh_tensor *got, const bh_tensor *want, double tol, char *why, size_t cap);

// ---------------------------------------------------------------- golden cases

typedef struct {
    char name[256];
    char family[32]; // the op's name before the dot: "conv2d" unless the case says otherwise
    bool f64;
    cJSON *request;  // the v1 request (owned)
    bh_tensor in[4]; // x, w, b, dy (rank 0 when absent)
    bh_tensor out[4]; // y, dx, dw, db expected (rank 0 when absent)
} bh_golden;

static const char *const bh_inputs[4] = {"x", "w", "b", "dy"};
static const char *const bh_outputs[4] = {"y", "dx", "dw", "db"};

// Frees what bh_golden_load() read into g.
void bh_golden_free(bh_golden *g);

// Loads every golden case (at most `cap`) of tests/golden; returns how many.
int bh_golden_load(bh_golden *cases, int cap);
// The same from another folder (tests/golden/family: the other ops, each with its "family").
int bh_golden_load_from(const char *dir_path, bh_golden *cases, int cap);

// The inputs golden case g has (x, w, then b and dy when present), in that order, into in[]
// (borrowed from g); returns how many.
int bh_golden_inputs(bh_tensor in[4], const bh_golden *g);

// The golden request's parameters (stride, padding, dilation, groups, and output_padding and
// padding_mode when it has them) as __metadata__ JSON: each
// value the field's JSON text as a string.
void bh_golden_metadata(bh_bytes *out, const bh_golden *g, const char *op);

// The tolerance of a case (float64: 1e-10, float32: 1e-5, relative to the largest value).
double bh_tolerance(const bh_golden *g);

// ---------------------------------------------------------------- Open Inference Protocol v2

// How a golden case is sent over v2.
typedef struct {
    bool binary_in;  // inputs as binary data after the JSON
    bool nested;     // JSON data as nested arrays
    int binary_out;  // 0 none, 1 binary_data_output, 2 per output (dw only)
    bool pick;       // ask for dw then dx (backward only)
} bh_v2_form;

// A v2 infer body for golden case g; *header_len gets the JSON's length (the body's when
// there are no binary inputs).
void bh_v2_body(bh_bytes *b, size_t *header_len, const bh_golden *g, bool backward,
                bh_v2_form form, const char *id);

// Reads the outputs of a v2 answer: the JSON (split off the binary data by parsing it; its
// length in *json_len) and each output, binary or JSON data, as a bh_tensor in outs[] (by
// bh_outputs index; zeroed first). Returns the JSON (the caller deletes it); names[] gets the
// output names in order ("" after the last).
cJSON *bh_v2_read(const char *body, size_t len, bh_tensor outs[4],
                  char names[4][8], size_t *json_len);

#endif
