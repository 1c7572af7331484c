// codec_json_parse: JSON parsing where the bytes are ("lifting"). A request is a small document
// around a few huge arrays of numbers; cJSON would spend a heap node (~64 bytes and a malloc) on
// every number. So before cJSON sees the text, every array of numbers (flat or nested) is
// scanned by a fast number parser into a codec_json_array ("blob") of doubles, and replaced in
// the text cJSON parses by a placeholder: a one-number array [k] naming blob k. Every array that
// starts with a number is lifted, so a one-number array in the parsed tree is always a
// placeholder. An array that turns out to hold anything but numbers and arrays is left alone,
// in full, for cJSON. (What cJSON takes and JSON does not, such as control characters as white
// space or 01, the lifter refuses as invalid_json: it would let a one-number array through
// unlifted.)
//
// Problems inside an array (NaN, Infinity, null, 1e999, ragged nesting) do not fail the parse:
// they are recorded in the blob, for the caller to report with a path it knows.
#ifndef CODEC_JSON_PARSE_H
#define CODEC_JSON_PARSE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api_errors.h"

#define CODEC_JSON_MAX_DEPTH 8 // deeper arrays are left to cJSON (and rejected by the caller)

typedef enum {
    CODEC_ARRAY_OK,
    CODEC_ARRAY_NON_FINITE, // a number that is not finite: NaN, Infinity, null, or an overflow
    CODEC_ARRAY_RAGGED,     // the nesting is not rectangular
} codec_json_array_problem;

typedef enum {
    CODEC_RAGGED_LENGTH,           // a sub-array's length differs from its earlier siblings'
    CODEC_RAGGED_NUMBER_FOR_ARRAY, // a number where the nesting says an array
    CODEC_RAGGED_ARRAY_FOR_NUMBER, // an array where the nesting says a number
} codec_json_ragged_kind;

typedef struct {
    double *values; // `count` numbers, row-major; heap, owned by the blob (may be stolen)
    int64_t count;
    int rank;                            // nesting depth; 1 for a flat array
    int64_t shape[CODEC_JSON_MAX_DEPTH]; // from the nesting (meaningless when RAGGED)
    codec_json_array_problem problem;    // the first one found
    int64_t bad_index;                   // NON_FINITE: flat index of the number
    char bad_token[24];                  // NON_FINITE: its text as sent (cut when longer)
    codec_json_ragged_kind ragged;       // RAGGED: what went wrong ...
    int ragged_depth;                    // ... at the element with these indices
    int64_t ragged_at[CODEC_JSON_MAX_DEPTH];
    int64_t ragged_got, ragged_want; // LENGTH: the two lengths
} codec_json_array;

// What parsing may hold beyond the body itself: every byte of structure (cJSON's nodes and
// strings, the lifted arrays' bookkeeping and numbers, the rewritten text) is counted before it
// is allocated, and a body whose count passes PER_BYTE bytes per body byte plus FLOOR is
// refused (json_too_complex, 413). A tensor's numbers cost 8 bytes per number of at least 2
// bytes of text, so tensors pass; what does not is structure that would multiply the body
// (one cJSON node, 80 bytes, per "1," outside a tensor). docs/LIMITS.md has the measured figures.
#define CODEC_JSON_COST_PER_BYTE 4
#define CODEC_JSON_COST_FLOOR (4 << 20)
size_t codec_json_cost_limit(size_t len);

// What parsing `len` bytes holds at most beyond CODEC_JSON_COST_FLOOR, the body included: the
// body and its rewritten text, 4 bytes of numbers (8 per number of 2 bytes or more) and the
// structure allowed, per byte.
static inline size_t codec_json_memory_bound(size_t len) {
    return len * (2 + 4 + CODEC_JSON_COST_PER_BYTE);
}

typedef struct {
    cJSON *root;
    codec_json_array *blobs;
    size_t count, cap;
} codec_json_doc;

// Parses `len` bytes of JSON (no NUL needed), in time linear in `len`. On failure fills err
// (invalid_json, 400, with line and column of the original text; json_too_complex, 413;
// out_of_memory, 503) and returns false; doc is then empty. On success the
// caller owns doc (codec_json_doc_free).
bool codec_json_parse(codec_json_doc *doc, const char *body, size_t len, api_error *err);

// The blob a parsed array stands for, or NULL when `item` is not a placeholder.
codec_json_array *codec_json_array_of(const codec_json_doc *doc, const cJSON *item);

void codec_json_doc_free(codec_json_doc *doc);

#endif
