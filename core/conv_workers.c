// conv_workers: the fork-join that every pass runs its workers through (conv_run_workers),
// over helper threads that each calling thread keeps for its own calls.
//
// Starting and joining a thread per pass cost 30-120 us on this project's VMs (the idle vCPU
// has to be woken, then the caller waits for the thread's exit), and a backward pass is three
// passes: on small layers that was a large part of the second thread's gain (layer (d) 1.35x
// forward on 2 threads). Here a thread's first call with more than one worker starts helpers,
// which stay: after a job, each spins for up to SPIN_NS watching for the next one (passes of
// one forward + backward follow each other within microseconds), then sleeps on a condition
// variable until woken. The helpers belong to the calling thread (thread-local), so no two
// callers share any, and they are stopped and joined when that thread exits. A process whose
// calls all run one worker starts none.
//
// A job: the caller publishes (fn, ctx, threads) under the pool's lock with a new generation
// number, runs worker 0 itself, then waits for the threads - 1 helpers it asked for to count
// themselves done. Helpers beyond `threads` skip the job. If a helper cannot be started, its
// share runs on the caller after its own: slower, never wrong, since each worker index owns
// its own scratch region and item range. A fork's child starts without helpers.
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/conv_internal.h"

// How long an idle helper (and a caller waiting for its helpers) spins before sleeping.
#define SPIN_NS 200000

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    // The job, written under `lock` before `generation` moves on.
    conv_worker_fn fn;
    void *ctx;
    int threads;
    bool quit;
    atomic_uint_fast64_t generation;
    atomic_int done;     // helpers finished with the current job
    atomic_int sleeping; // helpers waiting on `wake`
    int helpers;         // started: workers 1..helpers
    pthread_t tid[CONV_MAX_THREADS];
} worker_pool;

typedef struct {
    worker_pool *pool;
    int worker;
} helper_start;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// Waits until `generation` differs from `seen`: spinning first, then asleep.
static uint64_t wait_for_job(worker_pool *p, uint64_t seen) {
    const int64_t until = now_ns() + SPIN_NS;
    for (unsigned i = 1;; i++) {
        const uint64_t gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (gen != seen) return gen;
        if (i % 64 == 0 && now_ns() > until) break;
        cpu_relax();
    }
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add(&p->sleeping, 1);
    while (atomic_load(&p->generation) == seen) pthread_cond_wait(&p->wake, &p->lock);
    atomic_fetch_sub(&p->sleeping, 1);
    pthread_mutex_unlock(&p->lock);
    return atomic_load(&p->generation);
}

static void *helper_main(void *arg) {
    helper_start *s = arg;
    worker_pool *p = s->pool;
    const int worker = s->worker;
    free(s);
    uint64_t seen = 0;
    for (;;) {
        seen = wait_for_job(p, seen);
        pthread_mutex_lock(&p->lock);
        const conv_worker_fn fn = p->fn;
        void *ctx = p->ctx;
        const int threads = p->threads;
        const bool quit = p->quit;
        seen = atomic_load(&p->generation);
        pthread_mutex_unlock(&p->lock);
        if (quit) return NULL;
        if (worker < threads) {
            fn(ctx, worker);
            atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        }
    }
}

// Stops and joins a thread's helpers when it exits (the pthread key's destructor).
static void pool_destroy(void *arg) {
    worker_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    p->quit = true;
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int t = 1; t <= p->helpers; t++) pthread_join(p->tid[t], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static pthread_key_t pool_key;
static pthread_once_t pool_key_once = PTHREAD_ONCE_INIT;
static bool pool_key_ok;
static _Thread_local worker_pool *mine;

// A fork's child has the forking thread alone: its helpers did not come along, and their
// lock may have been held. The child starts afresh.
static void forget_pool_in_child(void) {
    if (!mine) return;
    free(mine);
    mine = NULL;
    pthread_setspecific(pool_key, NULL);
}

static void make_pool_key(void) {
    pool_key_ok = pthread_key_create(&pool_key, pool_destroy) == 0 &&
                  pthread_atfork(NULL, NULL, forget_pool_in_child) == 0;
}

// The calling thread's pool with at least `helpers` helpers started where possible; NULL if it
// cannot have one (then the caller runs every worker itself).
static worker_pool *thread_pool(int helpers) {
    if (!mine) {
        pthread_once(&pool_key_once, make_pool_key);
        if (!pool_key_ok) return NULL;
        worker_pool *p = calloc(1, sizeof *p);
        if (!p) return NULL;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->wake, NULL);
        if (pthread_setspecific(pool_key, p) != 0) {
            pool_destroy(p);
            return NULL;
        }
        mine = p;
    }
    while (mine->helpers < helpers) {
        helper_start *s = malloc(sizeof *s);
        if (!s) break;
        *s = (helper_start){mine, mine->helpers + 1};
        if (pthread_create(&mine->tid[mine->helpers + 1], NULL, helper_main, s) != 0) {
            free(s);
            break;
        }
        mine->helpers++;
    }
    return mine;
}

void conv_run_workers(int threads, conv_worker_fn fn, void *ctx) {
    worker_pool *p = threads > 1 ? thread_pool(threads - 1) : NULL;
    const int helped = p ? (p->helpers < threads - 1 ? p->helpers : threads - 1) : 0;
    if (helped > 0) {
        pthread_mutex_lock(&p->lock);
        p->fn = fn;
        p->ctx = ctx;
        p->threads = helped + 1;
        atomic_store(&p->done, 0);
        atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
        if (atomic_load(&p->sleeping) > 0) pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    fn(ctx, 0);
    for (int t = helped + 1; t < threads; t++) fn(ctx, t);
    if (helped == 0) return;
    const int64_t until = now_ns() + SPIN_NS;
    for (unsigned i = 1; atomic_load_explicit(&p->done, memory_order_acquire) < helped; i++) {
        if (i % 64 == 0 && now_ns() > until) sched_yield();
        else cpu_relax();
    }
}
