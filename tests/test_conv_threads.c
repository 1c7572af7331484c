// Concurrent passes: several threads call the conv core at once, each with its own workspace,
// some asking for 2 threads inside, and every result must equal the reference. This is what
// shows that single-threaded BLAS under our own threads is safe (docs/THREADING.md): any
// shared scratch, global state or BLAS buffer race would corrupt some result here.
#include <cblas.h>
#include <dirent.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/conv.h"
#include "core/conv_ref.h"
#include "server/blas_boot.h"
#include "tests/harness/conv_harness.h"
#include "tests/testlib.h"

enum {
    WORKERS = 5,
    SMALL_CASES = 6,    // per worker, one thread inside whatever is asked
    THREADED_CASES = 2, // per worker, large enough for the fast path to use 2 threads
    CASES = SMALL_CASES + THREADED_CASES,
    ROUNDS = 4, // each round runs every pass of every case once, with a fresh exec
    RESULTS = ROUNDS * CASES * PASS_COUNT,
};

typedef struct {
    int case_index, threads;
    conv_pass pass;
    size_t workspace;
    bool ok;
    char why[384];
} pass_result;

typedef struct {
    int id;
    pthread_barrier_t *start;
    conv_case cases[CASES];
    char desc[CASES][256];
    pass_result results[RESULTS];
    int count;
    int bad_draws; // large geometries that never fit the element budget (small ones instead)
} worker;

// Cases are built (reference included) before the barrier, so that afterwards the workers
// spend their time in the fast path together.
static void *worker_main(void *arg) {
    worker *wk = arg;
    uint64_t rng = 0xC0FFEEull + (uint64_t)wk->id * 7919;
    for (int i = 0; i < CASES; i++) {
        conv_geom g;
        bool bias;
        const bool threaded = i >= SMALL_CASES;
        const conv_geom_class cls =
            threaded ? (conv_geom_class)((wk->id + i) % GEOM_CLASSES) : GEOM_RANDOM;
        if (threaded && !conv_random_large_geom(&g, &bias, cls, 9e6, 600000, &rng)) {
            wk->bad_draws++;
            conv_random_geom(&g, &bias, cls, &rng);
        } else if (!threaded) {
            conv_random_geom(&g, &bias, cls, &rng);
        }
        conv_case_init(&wk->cases[i], &g, bias, t_rand_int(&rng, 0, 1) ? CONV_FLOAT64 : CONV_FLOAT32,
                       &rng);
        conv_geom_describe(wk->desc[i], sizeof wk->desc[i], &g);
    }
    pthread_barrier_wait(wk->start);
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < CASES; i++) {
            const conv_case *cc = &wk->cases[i];
            const int threads = (int)t_rand_int(&rng, 1, 2);
            size_t bytes = conv_workspace_size(&cc->g, cc->dt, threads, CONV_WORKSPACE_CAP_DEFAULT);
            if (t_rand_int(&rng, 0, 1)) bytes = conv_workspace_min(&cc->g, cc->dt, threads);
            conv_scratch s;
            conv_scratch_init(&s, bytes, 0, threads);
            for (conv_pass p = PASS_FORWARD; p < PASS_COUNT; p++) {
                pass_result *r = &wk->results[wk->count++];
                *r = (pass_result){.case_index = i, .threads = threads, .pass = p,
                                   .workspace = bytes};
                r->ok = conv_case_check(cc, p, &s.ex, r->why, sizeof r->why, NULL);
            }
            conv_scratch_free(&s);
        }
    return NULL;
}

// Threads of this process now (/proc/self/task).
static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

// A pass of `threads` workers on this thread: 8x32x28x28, F32, 3x3, direct (enough work for
// three workers), its result spot-checked so that the pool's workers demonstrably ran.
static bool run_threaded_pass(int threads) {
    const conv_geom g = {.n = 8, .c = 32, .h = 28, .w = 28, .f = 32, .kh = 3, .kw = 3,
                         .groups = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1,
                         .dilation_w = 1, .pad_top = 1, .pad_bottom = 1, .pad_left = 1,
                         .pad_right = 1};
    const size_t bytes = conv_workspace_size(&g, CONV_FLOAT32, threads, CONV_WORKSPACE_CAP_DEFAULT);
    float *x = malloc(sizeof(float) * 8 * 32 * 28 * 28), *w = malloc(sizeof(float) * 32 * 32 * 9);
    float *y = malloc(sizeof(float) * 8 * 32 * 28 * 28);
    void *ws = malloc(bytes);
    for (int i = 0; i < 8 * 32 * 28 * 28; i++) x[i] = 1;
    for (int i = 0; i < 32 * 32 * 9; i++) w[i] = 1;
    const conv_exec ex = {.workspace = ws, .workspace_bytes = bytes, .threads = threads,
                          .algorithm = CONV_ALGO_DIRECT};
    bool ok = conv2d_forward(y, x, w, NULL, &g, CONV_FLOAT32, &ex, NULL) == CONV_OK;
    // every output of the last image (the last worker's) away from the border sums 32*9 ones
    for (int i = 7 * 32 * 28 * 28; ok && i < 8 * 32 * 28 * 28; i++) {
        const int r = i / 28 % 28, c = i % 28;
        if (r > 0 && r < 27 && c > 0 && c < 27 && y[i] != 288) ok = false;
    }
    free(x), free(w), free(y), free(ws);
    return ok;
}

static void *pool_user_main(void *arg) {
    *(bool *)arg = run_threaded_pass(3) && run_threaded_pass(2);
    return NULL;
}

// conv_workers.c keeps each calling thread's helpers between calls and joins them when that
// thread exits: a thread's pool grows to its largest call, is reused, and leaves nothing.
static void check_worker_pools(void) {
    const int before = thread_count();
    CHECK(run_threaded_pass(3), "a 3-worker pass on the main thread is correct");
    const int grown = thread_count();
    CHECK(grown == before + 2, "a 3-worker pass keeps 2 helper threads (%d -> %d threads)",
          before, grown);
    CHECK(run_threaded_pass(3) && run_threaded_pass(2) && thread_count() == grown,
          "later passes reuse the helpers (%d threads, expected %d)", thread_count(), grown);
    for (int round = 0; round < 20; round++) {
        bool ok = false;
        pthread_t tid;
        if (pthread_create(&tid, NULL, pool_user_main, &ok) != 0) break;
        pthread_join(tid, NULL);
        CHECK(ok, "round %d: passes on a short-lived thread are correct", round);
    }
    CHECK(thread_count() == grown,
          "20 short-lived callers leave no helpers behind (%d threads, expected %d)",
          thread_count(), grown);
}

// One 2-thread float64 forward pass of a layer large enough for two workers; true when it
// matches the reference.
static bool two_thread_pass_ok(void) {
    const conv_geom g = {.n = 4, .c = 16, .h = 32, .w = 32, .f = 32, .kh = 3, .kw = 3,
                         .groups = 1, .stride_h = 2, .stride_w = 2, .dilation_h = 1,
                         .dilation_w = 1, .pad_top = 1, .pad_bottom = 1, .pad_left = 1,
                         .pad_right = 1};
    const size_t nx = (size_t)conv_numel_x(&g), nw = (size_t)conv_numel_w(&g);
    const size_t ny = (size_t)conv_numel_y(&g);
    double *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w);
    double *y = malloc(ny * sizeof *y), *ref = malloc(ny * sizeof *ref);
    const size_t bytes = conv_workspace_size(&g, CONV_FLOAT64, 2, CONV_WORKSPACE_CAP_DEFAULT);
    void *ws = malloc(bytes);
    bool ok = x && w && y && ref && ws;
    for (size_t i = 0; ok && i < nx; i++) x[i] = (double)(i % 17) / 8 - 1;
    for (size_t i = 0; ok && i < nw; i++) w[i] = (double)(i % 13) / 6 - 1;
    if (ok) {
        const conv_exec ex = {.workspace = ws, .workspace_bytes = bytes, .threads = 2};
        ok = conv2d_forward(y, x, w, NULL, &g, CONV_FLOAT64, &ex, NULL) == CONV_OK;
        conv_ref_forward(ref, x, w, NULL, &g);
        for (size_t i = 0; ok && i < ny; i++) ok = fabs(y[i] - ref[i]) <= 1e-9 * (1 + fabs(ref[i]));
    }
    free(x), free(w), free(y), free(ref), free(ws);
    return ok;
}

// A process that forked after passes left helper threads idle (core/conv.c) has none of them
// in the child: the child's 2-thread pass must start its own instead of waiting forever on
// the parent's. The child gets 30 s (alarm) and reports through its exit status.
static void test_fork_after_passes(void) {
    CHECK(two_thread_pass_ok(), "2-thread pass before fork");
    fflush(NULL);
    const pid_t pid = fork();
    if (pid == 0) {
        alarm(30);
        _exit(two_thread_pass_ok() ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork and wait");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the child's 2-thread pass after fork: %s",
          WIFSIGNALED(status) ? "killed (hung?)" : "wrong result");
    CHECK(two_thread_pass_ok(), "2-thread pass in the parent after fork");
}

int main(int argc, char **argv) {
    (void)argc;
    blas_boot(argv);
    CHECK(openblas_get_num_threads() == 1, "OpenBLAS runs %d threads; convd needs 1",
          openblas_get_num_threads());
    static worker workers[WORKERS];
    pthread_t tid[WORKERS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, WORKERS);
    for (int t = 0; t < WORKERS; t++) {
        workers[t].id = t;
        workers[t].start = &start;
        if (pthread_create(&tid[t], NULL, worker_main, &workers[t]) != 0) {
            fprintf(stderr, "cannot start worker %d\n", t);
            return 1;
        }
    }
    for (int t = 0; t < WORKERS; t++) pthread_join(tid[t], NULL);
    pthread_barrier_destroy(&start);
    check_worker_pools();
    for (int t = 0; t < WORKERS; t++) {
        worker *wk = &workers[t];
        CHECK(wk->count == RESULTS, "worker %d ran %d passes of %d", t, wk->count, RESULTS);
        CHECK(wk->bad_draws == 0, "worker %d: %d large geometries over budget", t,
              wk->bad_draws);
        for (int k = 0; k < wk->count; k++) {
            const pass_result *r = &wk->results[k];
            const conv_case *cc = &wk->cases[r->case_index];
            CHECK(r->ok, "worker %d case %d (%s, %s) threads %d workspace %zu: %s", t,
                  r->case_index, wk->desc[r->case_index],
                  cc->dt == CONV_FLOAT32 ? "float32" : "float64", r->threads, r->workspace,
                  r->why);
        }
        for (int i = 0; i < CASES; i++) conv_case_free(&wk->cases[i]);
    }
    test_fork_after_passes();
    return t_finish("test_conv_threads");
}
