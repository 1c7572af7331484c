// fuzz_common: what the libFuzzer targets share. Limits small enough that any input the decoders
// accept also runs through validation, execution and both encoders in microseconds, so the
// fuzzer spends its time on the decoders and never on arithmetic; and the judge of each input's
// cost (fuzz_judge_begin/end).
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <sanitizer/allocator_interface.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "api/api.h"

static inline api_options fuzz_options(void) {
    api_options opt;
    api_options_default(&opt);
    opt.max_elements = 4096;
    opt.max_flops = 200000;
    opt.workspace_cap = (size_t)1 << 20;
    opt.threads = 1;
    return opt;
}

// The cost one input may have, beyond libFuzzer's flat limits (-timeout, -malloc_limit_mb): a
// constant plus a multiple of its size, for CPU time (of the fuzzing thread) and for the peak
// of heap bytes held above what was held before it. The constants cover what does not grow
// with the input: fuzz_options' work and answers (1 MiB of workspace), and the JSON structure
// floor of 4 MiB (docs/LIMITS.md); the multiples cover the parse (cJSON's nodes, ~133 bytes
// per byte at worst on inputs under the floor, and ~1 us per byte under ASan). A quadratic
// parse of 16 KiB (10^8 steps) is well over its 53 ms. Measured on the seeds and 15-second
// runs (docs/LIMITS.md): at most 7 ms and 110 kB. An input over its bound is run once more,
// so that a stall of the shared machine is not taken for the input's cost, and is a finding,
// like a crash, when it is over again. FUZZ_JUDGE_SCALE (a number, default 1) multiplies the
// bounds: tests/test_fuzz.c sets it to 0 to see the judge refuse an input.
#define FUZZ_CPU_BASE_S 0.02
#define FUZZ_CPU_PER_BYTE_S 2e-6
#define FUZZ_HEAP_BASE ((double)(6 << 20))
#define FUZZ_HEAP_PER_BYTE 160.0

static atomic_llong fuzz_heap_live, fuzz_heap_peak;
static double fuzz_judge_scale = 1;

static void fuzz_on_malloc(const volatile void *p, size_t n) {
    (void)p;
    long long live = atomic_fetch_add(&fuzz_heap_live, (long long)n) + (long long)n;
    long long peak = atomic_load(&fuzz_heap_peak);
    while (live > peak && !atomic_compare_exchange_weak(&fuzz_heap_peak, &peak, live)) {
    }
}

// Ownership is asked first: a pointer the allocator does not own (a bad free) is the
// sanitizer's to report, not this hook's.
static void fuzz_on_free(const volatile void *p) {
    if (p && __sanitizer_get_ownership(p))
        atomic_fetch_sub(&fuzz_heap_live, (long long)__sanitizer_get_allocated_size(p));
}

__attribute__((constructor)) static void fuzz_judge_init(void) {
    __sanitizer_install_malloc_and_free_hooks(fuzz_on_malloc, fuzz_on_free);
    const char *scale = getenv("FUZZ_JUDGE_SCALE");
    if (scale) fuzz_judge_scale = atof(scale);
}

static inline double fuzz_thread_cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// Runs `one` (a target's body) on the input, judged as above; aborts when it is over its bound
// twice. Returns 0, libFuzzer's "keep going".
static inline int fuzz_judged(void (*one)(const uint8_t *, size_t), const uint8_t *data,
                              size_t size) {
    double cpu_max = fuzz_judge_scale * (FUZZ_CPU_BASE_S + FUZZ_CPU_PER_BYTE_S * (double)size);
    double heap_max = fuzz_judge_scale * (FUZZ_HEAP_BASE + FUZZ_HEAP_PER_BYTE * (double)size);
    double cpu = 0, heap = 0;
    for (int run = 0; run < 2; run++) {
        long long base = atomic_load(&fuzz_heap_live);
        atomic_store(&fuzz_heap_peak, base);
        double t0 = fuzz_thread_cpu_s();
        one(data, size);
        cpu = fuzz_thread_cpu_s() - t0;
        heap = (double)(atomic_load(&fuzz_heap_peak) - base);
        if (cpu <= cpu_max && heap <= heap_max) return 0;
    }
    fprintf(stderr,
            "fuzz_judge: an input of %zu bytes took %.4f s of CPU (at most %.4f) and %.0f bytes "
            "of heap (at most %.0f)\n",
            size, cpu, cpu_max, heap, heap_max);
    abort();
}

#endif
