// num (api/num/): JSON numbers in and out, fast and exact. Tensors are millions of numbers, so
// these replace strtod() and printf("%.17g"), which are 5-10x slower, without giving up
// correctness: parsing is correctly rounded (Eisel-Lemire, strtod() only for tokens with more
// than 19 significant digits; num_parse.c) and printing is the shortest decimal that parses back
// to the same value (Schubfach; num_print.c), for float64 and float32 alike. Both take their
// 128-bit powers of ten from num_pow10.h, which gen_pow10_tables.py generates. Nothing here
// knows JSON documents, tensors or the rest of api/.
#ifndef NUM_H
#define NUM_H

#include <stddef.h>

// Parses one JSON number (RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?) starting at
// `p` and ending before `end`. Returns the first byte after it and sets *out to the nearest
// double (ties to even; +-inf when the value is too large, as strtod does), or returns NULL
// when `p` does not start a valid number (out untouched). The token need not be NUL-terminated.
const char *num_parse_f64(double *out, const char *p, const char *end);

// Longest text the printers write: "-2.2250738585072014e-308" is 24 bytes; 32 leaves room.
#define NUM_MAX_CHARS 32

// Write the shortest decimal that parses back (as a double, or as a float) to exactly `v`,
// like Python's repr: "0.1", "-3.0", "1e-07", "1.7976931348623157e+308", "-0.0". `v` must
// be finite. `buf` needs NUM_MAX_CHARS bytes; returns the end of what was written (no
// NUL is added).
char *num_print_f64(char *buf, double v);
char *num_print_f32(char *buf, float v);

#endif
