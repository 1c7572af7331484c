#include "api/num/num.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "api/num/num_pow10.h"

typedef unsigned __int128 u128;

static uint64_t bits_of_f64(double v) {
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

// Printing: Schubfach (R. Giulietti, "The Schubfach way to render doubles", 2020), as in
// A. Bolz's C++ rendition with 128-bit powers of ten. It finds the decimal with the fewest
// digits inside the rounding interval of c * 2^q, the one closest to the value among those.

// floor(e * log10(2)), floor(e * log10(2) - log10(4/3)), floor(e * log2(10)) for |e| < 1500.
static inline int32_t floor_log10_pow2(int32_t e) { return (e * 1262611) >> 22; }
static inline int32_t floor_log10_three_quarters_pow2(int32_t e) {
    return (e * 1262611 - 524031) >> 22;
}
static inline int32_t floor_log2_pow10(int32_t e) { return (e * 1741647) >> 19; }

// (g * cp) / 2^127, rounded to odd: the low bit is set when any discarded bit was.
static inline uint64_t round_to_odd(const uint64_t g[2], uint64_t cp) {
    u128 x = (u128)cp * g[1];
    u128 y = (u128)cp * g[0] + (uint64_t)(x >> 64);
    return (uint64_t)(y >> 63) | ((uint64_t)y != 0);
}

// The shortest decimal digits * 10^exponent in the rounding interval of the positive finite
// c * 2^q. `lower_closer` is set when c is a power of two above the smallest normal, whose
// predecessor is only half as far away.
static void shortest_decimal(uint64_t *digits, int32_t *exponent, uint64_t c, int32_t q,
                             bool lower_closer) {
    bool accept_bounds = (c % 2) == 0; // the interval is closed when ties round to c
    uint64_t cbl = 4 * c - 2 + lower_closer;
    uint64_t cb = 4 * c;
    uint64_t cbr = 4 * c + 2;
    int32_t k = lower_closer ? floor_log10_three_quarters_pow2(q) : floor_log10_pow2(q);
    int32_t h = q + floor_log2_pow10(-k); // in [0, 3]
    const uint64_t *g = pow10_print[-k - POW10_PRINT_MIN];
    uint64_t vbl = round_to_odd(g, cbl << h);
    uint64_t vb = round_to_odd(g, cb << h);
    uint64_t vbr = round_to_odd(g, cbr << h);
    uint64_t lower = vbl + !accept_bounds;
    uint64_t upper = vbr - !accept_bounds;
    uint64_t s = vb / 4;
    uint64_t d;
    int32_t e;
    if (s >= 10) {
        // One digit fewer: at most one multiple of 10^(k+1) lies in the interval.
        uint64_t sp = s / 10;
        bool up_inside = lower <= 40 * sp;
        bool wp_inside = 40 * sp + 40 <= upper;
        if (up_inside != wp_inside) {
            d = sp + wp_inside;
            e = k + 1;
            goto trim;
        }
    }
    {
        bool u_inside = lower <= 4 * s;
        bool w_inside = 4 * s + 4 <= upper;
        if (u_inside != w_inside) {
            d = s + w_inside;
        } else {
            uint64_t mid = 4 * s + 2; // both candidates inside: the nearer, ties to even
            d = s + (vb > mid || (vb == mid && (s & 1)));
        }
        e = k;
    }
trim:
    // A shorter decimal at a higher exponent shows up as trailing zeros here.
    while (d % 10 == 0) {
        d /= 10;
        e++;
    }
    *digits = d;
    *exponent = e;
}

static const char two_digits[200] = "00010203040506070809101112131415161718192021222324"
                                    "25262728293031323334353637383940414243444546474849"
                                    "50515253545556575859606162636465666768697071727374"
                                    "75767778798081828384858687888990919293949596979899";

static int decimal_length(uint64_t v) {
    int n = 1;
    while (v >= 10000) {
        v /= 10000;
        n += 4;
    }
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

// Writes the n decimal digits of v at buf[0..n).
static void write_digits(char *buf, uint64_t v, int n) {
    while (n >= 2) {
        n -= 2;
        memcpy(buf + n, two_digits + 2 * (v % 100), 2);
        v /= 100;
    }
    if (n) buf[0] = (char)('0' + v);
}

// digits * 10^exponent in Python's repr layout: positional when the decimal exponent is in
// [-4, 16), with ".0" on integers; otherwise d.ddde+XX with at least two exponent digits.
static char *format_decimal(char *buf, uint64_t digits, int32_t exponent) {
    int n = decimal_length(digits);
    int point = n + exponent; // value = 0.d1d2... * 10^point
    if (point > -4 && point <= 16) {
        if (point <= 0) {
            memcpy(buf, "0.", 2);
            memset(buf + 2, '0', (size_t)-point);
            buf += 2 - point;
            write_digits(buf, digits, n);
            return buf + n;
        }
        if (point < n) {
            write_digits(buf + 1, digits, n);
            memmove(buf, buf + 1, (size_t)point);
            buf[point] = '.';
            return buf + n + 1;
        }
        write_digits(buf, digits, n);
        memset(buf + n, '0', (size_t)(point - n));
        buf += point;
        memcpy(buf, ".0", 2);
        return buf + 2;
    }
    write_digits(buf + 1, digits, n);
    buf[0] = buf[1];
    if (n > 1) {
        buf[1] = '.';
        buf += n + 1;
    } else {
        buf += 1;
    }
    int sci = point - 1;
    *buf++ = 'e';
    *buf++ = sci < 0 ? '-' : '+';
    unsigned mag = (unsigned)(sci < 0 ? -sci : sci);
    if (mag >= 100) {
        *buf++ = (char)('0' + mag / 100);
        mag %= 100;
    }
    memcpy(buf, two_digits + 2 * mag, 2);
    return buf + 2;
}

// Shared by both widths: sign, zero, then the decimal of c * 2^q.
static char *print_binary(char *buf, bool negative, uint64_t c, int32_t q, bool lower_closer) {
    if (negative) *buf++ = '-';
    if (c == 0) {
        memcpy(buf, "0.0", 3);
        return buf + 3;
    }
    uint64_t digits;
    int32_t exponent;
    shortest_decimal(&digits, &exponent, c, q, lower_closer);
    return format_decimal(buf, digits, exponent);
}

char *num_print_f64(char *buf, double v) {
    uint64_t bits = bits_of_f64(v);
    uint64_t fraction = bits & ((1ull << 52) - 1);
    int32_t biased = (int32_t)((bits >> 52) & 0x7FF);
    if (biased == 0) return print_binary(buf, bits >> 63, fraction, 1 - 1075, false);
    return print_binary(buf, bits >> 63, fraction | 1ull << 52, biased - 1075,
                        fraction == 0 && biased > 1);
}

char *num_print_f32(char *buf, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint32_t fraction = bits & ((1u << 23) - 1);
    int32_t biased = (int32_t)((bits >> 23) & 0xFF);
    if (biased == 0) return print_binary(buf, bits >> 31, fraction, 1 - 150, false);
    return print_binary(buf, bits >> 31, fraction | 1u << 23, biased - 150,
                        fraction == 0 && biased > 1);
}
