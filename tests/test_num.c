// num against the C library as the independent reference: printing must read back
// (through strtod/strtof) to the very same bits and be no longer than the shortest %.*e that
// does; parsing must give exactly strtod's correctly rounded double. Millions of random bit
// patterns and decimal strings, plus the edges (subnormals, powers of ten, max/min, halfway
// cases).
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/num/num.h"
#include "server/blas_boot.h"
#include "tests/testlib.h"

#if defined(__SANITIZE_ADDRESS__)
enum { SCALE = 20 }; // the sanitized build checks the same things on fewer values
#else
enum { SCALE = 1 };
#endif

static uint64_t seed = 0x5eed;

// The bulk loops check millions of values: each failure is counted here (the first few
// printed), and each loop ends in one CHECK that none failed.
static long bulk_failures;

static void bulk_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bulk_fail(const char *fmt, ...) {
    if (bulk_failures++ >= 20) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("  mismatch: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

#define BULK_CHECK(ok, ...) ((ok) ? (void)0 : bulk_fail(__VA_ARGS__))

static void bulk_done(const char *what, long before, long values) {
    CHECK(bulk_failures == before, "%s: %ld of %ld values failed", what, bulk_failures - before,
          values);
}

static double f64_of(uint64_t bits) {
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static float f32_of(uint32_t bits) {
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static bool same_f64(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }
static bool same_f32(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

// Significant digits of a printed number: leading and trailing zeros do not count.
static int significant_digits(const char *s) {
    char digits[64];
    int n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && n < 63) digits[n++] = *s;
    int first = 0, last = n - 1;
    while (first < n && digits[first] == '0') first++;
    while (last >= first && digits[last] == '0') last--;
    return last >= first ? last - first + 1 : 1;
}

// The fewest digits with which printf's correctly rounded %.*e reads back to v.
static int shortest_reference_f64(double v) {
    char buf[64];
    for (int p = 1; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        if (same_f64(strtod(buf, NULL), v)) return p;
    }
    return 17;
}

static int shortest_reference_f32(float v) {
    char buf[64];
    for (int p = 1; p < 9; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, (double)v);
        if (same_f32(strtof(buf, NULL), v)) return p;
    }
    return 9;
}

static void check_print_f64(double v, bool check_length) {
    char buf[NUM_MAX_CHARS + 1];
    char *end = num_print_f64(buf, v);
    BULK_CHECK(end - buf <= 24, "f64 %a printed too long: %zu", v, (size_t)(end - buf));
    *end = '\0';
    BULK_CHECK(same_f64(strtod(buf, NULL), v), "f64 %a printed as %s reads back as %a", v, buf,
               strtod(buf, NULL));
    double mine;
    const char *stop = num_parse_f64(&mine, buf, end);
    BULK_CHECK(stop == end && same_f64(mine, v), "f64 %s parses back as %a, not %a", buf, mine, v);
    if (check_length)
        BULK_CHECK(significant_digits(buf) <= shortest_reference_f64(v),
                   "f64 %a printed as %s, longer than the %d digits that suffice", v, buf,
                   shortest_reference_f64(v));
}

static void check_print_f32(float v, bool check_length) {
    char buf[NUM_MAX_CHARS + 1];
    char *end = num_print_f32(buf, v);
    *end = '\0';
    BULK_CHECK(same_f32(strtof(buf, NULL), v), "f32 %a printed as %s reads back as %a", (double)v,
               buf, (double)strtof(buf, NULL));
    double mine;
    num_parse_f64(&mine, buf, end);
    BULK_CHECK(same_f32((float)mine, v), "f32 %s parses (via double) as %a, not %a", buf,
               (double)(float)mine, (double)v);
    if (check_length)
        BULK_CHECK(significant_digits(buf) <= shortest_reference_f32(v),
                   "f32 %a printed as %s, longer than the %d digits that suffice", (double)v, buf,
                   shortest_reference_f32(v));
}

static void test_print_random(void) {
    long n = 3000000 / SCALE, before = bulk_failures;
    for (long i = 0; i < n; i++) {
        double d = f64_of(t_rand_u64(&seed));
        if (isfinite(d)) check_print_f64(d, i % 64 == 0);
        float f = f32_of((uint32_t)t_rand_u64(&seed));
        if (isfinite(f)) check_print_f32(f, i % 64 == 0);
        // The values tensors hold: moderate magnitudes, where the layout switches formats.
        double typical = t_rand_uniform(&seed, -1, 1) * pow(10, (double)t_rand_int(&seed, -8, 8));
        check_print_f64(typical, i % 64 == 1);
        check_print_f32((float)typical, i % 64 == 1);
    }
    bulk_done("print random f64/f32 bit patterns and typical values", before, 4 * n);
}

static void test_print_edges(void) {
    long before = bulk_failures;
    // Every power of ten and its neighbours, across both ranges.
    for (int e = -325; e <= 308; e++) {
        char text[16];
        snprintf(text, sizeof text, "1e%d", e);
        double p = strtod(text, NULL);
        check_print_f64(p, true);
        check_print_f64(nextafter(p, 0), true);
        check_print_f64(nextafter(p, INFINITY), true);
        float pf = strtof(text, NULL);
        if (isfinite(pf)) {
            check_print_f32(pf, true);
            check_print_f32(nextafterf(pf, 0), true);
            check_print_f32(nextafterf(pf, INFINITY), true);
        }
    }
    // Powers of two (where the rounding interval is lopsided) and the subnormal range.
    for (int e = -1074; e <= 1023; e++) check_print_f64(ldexp(1, e), true);
    for (int e = -149; e <= 127; e++) check_print_f32(ldexpf(1, e), true);
    for (uint64_t m = 1; m < 5000; m++) {
        check_print_f64(f64_of(m), true);
        check_print_f64(f64_of((1ull << 52) - m), true);
        check_print_f32(f32_of((uint32_t)m), true);
        check_print_f32(f32_of((1u << 23) - (uint32_t)m), true);
    }
    const double f64s[] = {
        DBL_MAX, -DBL_MAX, DBL_MIN, DBL_TRUE_MIN,       -0.0,   0.0,
        1.0,     0.1,      1e23,    9007199254740993.0, 5e-324, 2.2250738585072011e-308};
    for (size_t i = 0; i < sizeof f64s / sizeof *f64s; i++) check_print_f64(f64s[i], true);
    const float f32s[] = {FLT_MAX, -FLT_MAX,    FLT_MIN,     FLT_TRUE_MIN, -0.0f,
                          0.1f,    16777216.0f, 16777217.0f, 3.4028234e38f};
    for (size_t i = 0; i < sizeof f32s / sizeof *f32s; i++) check_print_f32(f32s[i], true);
    bulk_done("print powers of ten and two, subnormals, max/min", before, 30000);
}

// The layout is Python's repr (what students see from their own code).
static void test_print_layout(void) {
    const struct {
        double v;
        const char *text;
    } f64s[] = {{0.1, "0.1"},
                {-3.0, "-3.0"},
                {100.0, "100.0"},
                {0.0, "0.0"},
                {-0.0, "-0.0"},
                {1e16, "1e+16"},
                {1234567890123456.0, "1234567890123456.0"},
                {0.0001, "0.0001"},
                {0.00001, "1e-05"},
                {1.5e-7, "1.5e-07"},
                {123.456, "123.456"},
                {5e-324, "5e-324"},
                {1.7976931348623157e308, "1.7976931348623157e+308"},
                {2.2250738585072014e-308, "2.2250738585072014e-308"},
                {1.0 / 3, "0.3333333333333333"},
                {2.0 / 3, "0.6666666666666666"},
                {1e22, "1e+22"},
                {123456789012345680.0, "1.2345678901234568e+17"}};
    char buf[NUM_MAX_CHARS + 1];
    for (size_t i = 0; i < sizeof f64s / sizeof *f64s; i++) {
        *num_print_f64(buf, f64s[i].v) = '\0';
        CHECK(strcmp(buf, f64s[i].text) == 0, "%a printed as %s, Python writes %s", f64s[i].v, buf,
              f64s[i].text);
    }
    const struct {
        float v;
        const char *text;
    } f32s[] = {{0.1f, "0.1"},
                {1.0f / 3, "0.33333334"},
                {16777216.0f, "16777216.0"},
                {3.4028235e38f, "3.4028235e+38"},
                {1e-45f, "1e-45"},
                {-2.5f, "-2.5"}};
    for (size_t i = 0; i < sizeof f32s / sizeof *f32s; i++) {
        *num_print_f32(buf, f32s[i].v) = '\0';
        CHECK(strcmp(buf, f32s[i].text) == 0, "float %a printed as %s, want %s", (double)f32s[i].v,
              buf, f32s[i].text);
    }
}

static void check_parse(const char *text) {
    size_t len = strlen(text);
    double mine, ref = strtod(text, NULL);
    const char *end = num_parse_f64(&mine, text, text + len);
    BULK_CHECK(end == text + len && same_f64(mine, ref), "%s parsed as %a, strtod says %a", text,
               mine, ref);
}

// Random decimal strings: up to 25 significant digits (beyond 19 takes the long path), any
// exponent from far below the subnormals to far above the maximum.
static void test_parse_random(void) {
    long n = 2000000 / SCALE, before = bulk_failures;
    char text[96];
    for (long i = 0; i < n; i++) {
        int digits = (int)t_rand_int(&seed, 1, i % 10 == 0 ? 25 : 19);
        int len = 0;
        if (t_rand_u64(&seed) & 1) text[len++] = '-';
        int point = (int)t_rand_int(&seed, 0, digits);
        for (int d = 0; d < digits; d++) {
            if (d == point && d > 0) text[len++] = '.';
            text[len++] =
                (char)('0' + (d == 0 ? t_rand_int(&seed, 1, 9) : t_rand_int(&seed, 0, 9)));
        }
        if (t_rand_u64(&seed) & 1)
            len += snprintf(text + len, sizeof text - (size_t)len, "e%d",
                            (int)t_rand_int(&seed, -345, 310));
        text[len] = '\0';
        check_parse(text);
    }
    // Values printed the way other writers print them: %.17g (NumPy, C) and %.9g (float32).
    for (long i = 0; i < n / 4; i++) {
        double d = f64_of(t_rand_u64(&seed));
        if (!isfinite(d)) continue;
        snprintf(text, sizeof text, "%.17g", d);
        check_parse(text);
        snprintf(text, sizeof text, "%.9g", (double)f32_of((uint32_t)t_rand_u64(&seed)));
        if (strchr(text, 'n') == NULL) check_parse(text);
    }
    bulk_done("parse random decimals and %.17g/%.9g output", before, n + n / 2);
}

static void test_parse_edges(void) {
    long before = bulk_failures;
    const char *cases[] = {"0",
                           "-0",
                           "0.0",
                           "0e10",
                           "1",
                           "-1",
                           "1e308",
                           "1.7976931348623157e308",
                           "1.7976931348623158e308",
                           "1.7976931348623159e308",
                           "1e309",
                           "-1e400",
                           "2e-324",
                           "3e-324",
                           "2.4703282292062327e-324",
                           "2.4703282292062328e-324",
                           "5e-324",
                           "1e-400",
                           "2.2250738585072011e-308",
                           "2.2250738585072012e-308",
                           "9007199254740993",
                           "9007199254740992.5",
                           "9007199254740993.0000000001",
                           "0.1",
                           "0.30000000000000004",
                           "123456789012345678901234567890",
                           "0.000000000000000000000000000001234567890123456789",
                           "4.9406564584124654e-324",
                           "1e23",
                           "8.98846567431158e307",
                           "1e-5",
                           "100e-2",
                           "7.2057594037927933e16",
                           "1.00000000000000011102230246251565404236316680908203125",
                           "1.00000000000000011102230246251565404236316680908203124",
                           "1.00000000000000011102230246251565404236316680908203126",
                           "1E+2",
                           "1e-0",
                           "1.5E5"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_parse(cases[i]);
    // Halfway between two doubles, exactly and by a hair either way: ties go to even.
    for (int i = 0; i < 2000 / SCALE + 50; i++) {
        double d = fabs(f64_of(t_rand_u64(&seed) >> 2)) + 1e-300;
        if (!isfinite(d)) continue;
        double up = nextafter(d, INFINITY);
        char text[128];
        snprintf(text, sizeof text, "%.40e", d + (up - d) / 2); // rounded, so near the tie
        check_parse(text);
    }
    bulk_done("parse edges and near-ties", before, 2000);
    const char *invalid[] = {"",    "-",  "+1",  ".5",  "1.",       "e5",
                             "-e5", "1e", "1e+", "--1", "Infinity", "NaN"};
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        double v = 42;
        const char *end = num_parse_f64(&v, invalid[i], invalid[i] + strlen(invalid[i]));
        CHECK(end == NULL && v == 42, "'%s' is not a JSON number but was read", invalid[i]);
    }
    // A token stops where JSON's grammar does; what follows is the caller's to judge.
    const struct {
        const char *text;
        size_t stop;
    } partial[] = {{"01", 1}, {"1.5.2", 3}, {"12,", 2}, {"-0.5]", 4}, {"3e2x", 3}, {"0x10", 1}};
    for (size_t i = 0; i < sizeof partial / sizeof *partial; i++) {
        double v;
        const char *s = partial[i].text;
        const char *end = num_parse_f64(&v, s, s + strlen(s));
        CHECK(end == s + partial[i].stop, "'%s' should stop after %zu bytes", s, partial[i].stop);
    }
    // The end bound is respected: no read past it even when digits follow in memory.
    double v;
    const char *digits = "12345";
    CHECK(num_parse_f64(&v, digits, digits + 2) == digits + 2 && v == 12, "bounded token");
}

int main(int argc, char **argv) {
    blas_boot(argv);
    test_print_layout();
    test_print_edges();
    test_print_random();
    test_parse_edges();
    test_parse_random();
    return t_finish("test_num");
}
