#include "server/http_pool.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct {
    http_pool_fn run;
    void *arg;
} pool_job;

struct http_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    pool_job *ring; // `capacity` slots; jobs waiting are ring[head .. head+waiting)
    int capacity, head, waiting;
    int claimed; // places reserved: waiting + running + reserved-not-yet-submitted
    int busy;
    int cores;
    bool stopping;
    int n_threads;
    pthread_t *threads;
};

static void *worker_main(void *arg) {
    http_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->waiting == 0 && !p->stopping) pthread_cond_wait(&p->work, &p->lock);
        if (p->waiting == 0) break;
        pool_job job = p->ring[p->head];
        p->head = (p->head + 1) % p->capacity;
        p->waiting--;
        p->busy++;
        int threads = p->cores / p->busy;
        pthread_mutex_unlock(&p->lock);
        job.run(job.arg, threads < 1 ? 1 : threads);
        pthread_mutex_lock(&p->lock);
        p->busy--;
        p->claimed--;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

http_pool *http_pool_create(int workers, int queue, int cores) {
    http_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->capacity = workers + queue;
    p->cores = cores;
    p->ring = calloc((size_t)p->capacity, sizeof *p->ring);
    p->threads = calloc((size_t)workers, sizeof *p->threads);
    if (!p->ring || !p->threads) {
        free(p->ring);
        free(p->threads);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    for (; p->n_threads < workers; p->n_threads++)
        if (pthread_create(&p->threads[p->n_threads], NULL, worker_main, p) != 0) {
            http_pool_destroy(p);
            return NULL;
        }
    return p;
}

bool http_pool_reserve(http_pool *p) {
    pthread_mutex_lock(&p->lock);
    bool ok = p->claimed < p->capacity;
    if (ok) p->claimed++;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

void http_pool_submit(http_pool *p, http_pool_fn run, void *arg) {
    pthread_mutex_lock(&p->lock);
    p->ring[(p->head + p->waiting) % p->capacity] = (pool_job){run, arg};
    p->waiting++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
}

size_t http_pool_cancel_waiting(http_pool *p, http_pool_fn cancel) {
    size_t n = 0;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (p->waiting == 0) {
            pthread_mutex_unlock(&p->lock);
            return n;
        }
        pool_job job = p->ring[p->head];
        p->head = (p->head + 1) % p->capacity;
        p->waiting--;
        p->claimed--;
        pthread_mutex_unlock(&p->lock);
        cancel(job.arg, 0);
        n++;
    }
}

// Reads one counter under the lock (they change together, so never torn between updates).
static int read_locked(http_pool *p, const int *field) {
    pthread_mutex_lock(&p->lock);
    int v = *field;
    pthread_mutex_unlock(&p->lock);
    return v;
}

int http_pool_waiting(http_pool *p) { return read_locked(p, &p->waiting); }
int http_pool_busy(http_pool *p) { return read_locked(p, &p->busy); }

void http_pool_destroy(http_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    free(p->ring);
    free(p->threads);
    free(p);
}

bool http_budget_take(http_budget *b, size_t bytes) {
    size_t held = atomic_load(&b->held);
    do {
        if (bytes > b->limit || held > b->limit - bytes) return false;
    } while (!atomic_compare_exchange_weak(&b->held, &held, held + bytes));
    return true;
}

void http_budget_give_back(http_budget *b, size_t bytes) { atomic_fetch_sub(&b->held, bytes); }
