#include "api/num/num.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/num/num_pow10.h"

typedef unsigned __int128 u128;

static double f64_of_bits(uint64_t b) {
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

// Parsing: decimal w * 10^q (w < 10^19) to the nearest double.

// Exact powers of ten a double holds: the fast path multiplies by one of them.
static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// Eisel-Lemire as fast_float implements it (Mushtak & Lemire, "Fast number parsing without
// fallback", 2023): one or two 64x128-bit products give the correctly rounded double for every
// w < 2^64, subnormals included. Returns the bit pattern without the sign.
static uint64_t eisel_lemire(uint64_t w, int64_t q) {
    if (w == 0 || q < POW10_PARSE_MIN) return 0;
    if (q > POW10_PARSE_MAX) return 0x7FFull << 52;
    int lz = __builtin_clzll(w);
    w <<= lz;
    const uint64_t *pow = pow10_parse[q - POW10_PARSE_MIN];
    u128 first = (u128)w * pow[0];
    uint64_t hi = (uint64_t)(first >> 64), lo = (uint64_t)first;
    // Only when the bits that decide rounding are all ones can the low half of 10^q matter.
    if ((hi & 0x1FF) == 0x1FF) {
        uint64_t second_hi = (uint64_t)(((u128)w * pow[1]) >> 64);
        lo += second_hi;
        if (second_hi > lo) hi++;
    }
    int upperbit = (int)(hi >> 63);
    int shift = upperbit + 64 - 52 - 3;
    uint64_t mantissa = hi >> shift;
    // floor(q * log2(10)) + 63, exact for |q| < 400.
    int32_t power2 = (int32_t)((((152170 + 65536) * (int32_t)q) >> 16) + 63) + upperbit - lz + 1023;
    if (power2 <= 0) { // subnormal, or rounds up to the smallest normal
        if (-power2 + 1 >= 64) return 0;
        mantissa >>= -power2 + 1;
        mantissa += mantissa & 1;
        mantissa >>= 1;
        return mantissa; // a carry into bit 52 is exactly the smallest normal's pattern
    }
    // A tie can only be exact when 5^q fits in 64 bits; then round to even.
    if (lo <= 1 && q >= -4 && q <= 23 && (mantissa & 3) == 1 && (mantissa << shift) == hi)
        mantissa &= ~(uint64_t)1;
    mantissa += mantissa & 1;
    mantissa >>= 1;
    if (mantissa >= (2ull << 52)) {
        mantissa = 1ull << 52;
        power2++;
    }
    mantissa &= ~(1ull << 52);
    if (power2 >= 0x7FF) return 0x7FFull << 52;
    return mantissa | (uint64_t)power2 << 52;
}

// Tokens with more than 19 significant digits (never printed by anything sane, but valid):
// strtod() on a NUL-terminated copy.
static double parse_long_token(const char *s, size_t len) {
    char small[128];
    char *copy = len < sizeof small ? small : malloc(len + 1);
    if (!copy) return 0.0 / 0.0; // the caller rejects non-finite values
    memcpy(copy, s, len);
    copy[len] = '\0';
    double v = strtod(copy, NULL);
    if (copy != small) free(copy);
    return v;
}

static inline bool is_digit(char c) { return (unsigned char)(c - '0') < 10; }

// Eight ASCII digits at once (SWAR, as in fast_float): whether the 8 bytes at p all are, and
// their value.
static inline uint64_t load8(const char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v); // little-endian: p[0] in the low byte
    return v;
}

static inline bool eight_digits(uint64_t v) {
    return !(((v + 0x4646464646464646ull) | (v - 0x3030303030303030ull)) & 0x8080808080808080ull);
}

static inline uint64_t eight_digits_value(uint64_t v) {
    v -= 0x3030303030303030ull;
    v = v * 10 + (v >> 8);
    v = (((v & 0x000000FF000000FFull) * 0x000F424000000064ull) +
         (((v >> 16) & 0x000000FF000000FFull) * 0x0000271000000001ull)) >>
        32;
    return v;
}

// Digits at p into w while it holds fewer than 19; returns past all the digits. `kept` counts
// digits in w, `dropped_nonzero` notes a nonzero digit that did not fit, `skipped` how many
// did not fit.
static inline const char *take_digits(const char *p, const char *end, uint64_t *w, int *kept,
                                      int64_t *skipped, bool *dropped_nonzero) {
    while (*kept <= 11 && end - p >= 8 && eight_digits(load8(p))) {
        *w = *w * 100000000 + eight_digits_value(load8(p));
        *kept += 8;
        p += 8;
    }
    for (; p < end && is_digit(*p); p++) {
        if (*kept < 19) {
            *w = *w * 10 + (uint64_t)(*p - '0');
            ++*kept;
        } else {
            ++*skipped;
            *dropped_nonzero |= *p != '0';
        }
    }
    return p;
}

const char *num_parse_f64(double *out, const char *p, const char *end) {
    const char *start = p;
    bool negative = p < end && *p == '-';
    p += negative;
    if (p == end || !is_digit(*p)) return NULL;
    uint64_t w = 0;       // the first 19 significant digits
    int kept = 0;         // how many digits w holds
    int64_t q = 0;        // decimal exponent of w's last digit
    int64_t skipped = 0;  // digits that did not fit in w
    bool dropped = false; // one of them was nonzero
    if (*p == '0') {
        p++;
    } else {
        p = take_digits(p, end, &w, &kept, &skipped, &dropped);
        q += skipped; // integer digits that did not fit still scale the value
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p)) return NULL;
        const char *digits = p;
        if (kept == 0)
            while (p < end && *p == '0') p++; // leading zeros are not significant
        skipped = 0;
        p = take_digits(p, end, &w, &kept, &skipped, &dropped);
        q -= (p - digits) - skipped; // every fraction digit kept in w divides by 10
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool exp_negative = p < end && *p == '-';
        if (p < end && (*p == '-' || *p == '+')) p++;
        if (p == end || !is_digit(*p)) return NULL;
        int64_t e = 0;
        for (; p < end && is_digit(*p); p++)
            if (e < 100000) e = e * 10 + (*p - '0'); // far beyond any double already
        q += exp_negative ? -e : e;
    }
    double v;
    if (dropped) {
        v = parse_long_token(start, (size_t)(p - start));
        *out = v;
        return p;
    }
    if (w <= (1ull << 53) && q >= -22 && q <= 22) {
        // Clinger's fast path: both operands exact, so one IEEE operation rounds correctly.
        v = (double)w;
        v = q < 0 ? v / exact_pow10[-q] : v * exact_pow10[q];
    } else {
        v = f64_of_bits(eisel_lemire(w, q));
    }
    *out = negative ? -v : v;
    return p;
}
