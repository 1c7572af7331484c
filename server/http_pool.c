#include "server/http_pool.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct {
    http_pool_fn run;
    void *arg;
} pool_job;

typedef struct {
    pool_job *ring; // `capacity` slots; jobs waiting are ring[head .. head+waiting)
    int head, waiting;
    int claimed; // places reserved: waiting + running + reserved-not-yet-submitted
} pool_lane;

struct http_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    pool_lane lanes[HTTP_LANES];
    int capacity; // of each lane
    int busy;
    int cores;
    bool stopping;
    int n_threads;
    pthread_t *threads; // the workers, then the express worker
};

typedef struct {
    http_pool *pool;
    bool express; // takes small jobs only
} worker_arg;

// The lane a worker takes its next job from (small first), or -1 when none waits for it.
static int next_lane(const http_pool *p, bool express) {
    if (p->lanes[HTTP_LANE_SMALL].waiting) return HTTP_LANE_SMALL;
    if (!express && p->lanes[HTTP_LANE_BIG].waiting) return HTTP_LANE_BIG;
    return -1;
}

static pool_job take(pool_lane *l, int capacity) {
    pool_job job = l->ring[l->head];
    l->head = (l->head + 1) % capacity;
    l->waiting--;
    return job;
}

static void *worker_main(void *arg) {
    http_pool *p = ((worker_arg *)arg)->pool;
    bool express = ((worker_arg *)arg)->express;
    free(arg);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        int lane;
        while ((lane = next_lane(p, express)) < 0 && !p->stopping)
            pthread_cond_wait(&p->work, &p->lock);
        if (lane < 0) break;
        pool_job job = take(&p->lanes[lane], p->capacity);
        p->busy++;
        int threads = p->cores / p->busy;
        pthread_mutex_unlock(&p->lock);
        job.run(job.arg, threads < 1 ? 1 : threads);
        pthread_mutex_lock(&p->lock);
        p->busy--;
        p->lanes[lane].claimed--;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static bool start_worker(http_pool *p, bool express) {
    worker_arg *a = malloc(sizeof *a);
    if (!a) return false;
    *a = (worker_arg){p, express};
    if (pthread_create(&p->threads[p->n_threads], NULL, worker_main, a) != 0) {
        free(a);
        return false;
    }
    p->n_threads++;
    return true;
}

http_pool *http_pool_create(int workers, int queue, int cores) {
    http_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->capacity = workers + queue;
    p->cores = cores;
    bool rings = true;
    for (int l = 0; l < HTTP_LANES; l++)
        rings &= (p->lanes[l].ring = calloc((size_t)p->capacity, sizeof *p->lanes[l].ring)) != NULL;
    p->threads = calloc((size_t)workers + 1, sizeof *p->threads);
    if (!rings || !p->threads) {
        for (int l = 0; l < HTTP_LANES; l++) free(p->lanes[l].ring);
        free(p->threads);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    for (int i = 0; i <= workers; i++)
        if (!start_worker(p, i == workers)) {
            http_pool_destroy(p);
            return NULL;
        }
    return p;
}

bool http_pool_reserve(http_pool *p, http_lane lane) {
    pthread_mutex_lock(&p->lock);
    bool ok = p->lanes[lane].claimed < p->capacity;
    if (ok) p->lanes[lane].claimed++;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

void http_pool_submit(http_pool *p, http_lane lane, http_pool_fn run, void *arg) {
    pthread_mutex_lock(&p->lock);
    pool_lane *l = &p->lanes[lane];
    l->ring[(l->head + l->waiting) % p->capacity] = (pool_job){run, arg};
    l->waiting++;
    pthread_cond_broadcast(&p->work); // the express worker may not be the one to take it
    pthread_mutex_unlock(&p->lock);
}

size_t http_pool_cancel_waiting(http_pool *p, http_pool_fn cancel) {
    size_t n = 0;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int lane = next_lane(p, false);
        if (lane < 0) {
            pthread_mutex_unlock(&p->lock);
            return n;
        }
        pool_job job = take(&p->lanes[lane], p->capacity);
        p->lanes[lane].claimed--;
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

int http_pool_waiting(http_pool *p) {
    pthread_mutex_lock(&p->lock);
    int v = p->lanes[HTTP_LANE_BIG].waiting + p->lanes[HTTP_LANE_SMALL].waiting;
    pthread_mutex_unlock(&p->lock);
    return v;
}
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
    for (int l = 0; l < HTTP_LANES; l++) free(p->lanes[l].ring);
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
