// http_pool: the compute side of the server. A fixed set of worker threads takes jobs from a
// bounded queue, and a memory budget bounds what admitted requests hold; both refuse work
// instead of letting it pile up (the caller answers 503). Nothing here knows about HTTP.
#ifndef HTTP_POOL_H
#define HTTP_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

// A job: `run(arg, threads)` on a worker, where `threads` is the number of CPU threads the job
// may use: max(1, cores / busy workers) when it starts, so one request alone gets every core
// and concurrent requests one each, never more threads than cores in total.
typedef void (*http_pool_fn)(void *arg, int threads);

typedef struct http_pool http_pool;

// Two lanes, so that small jobs are not starved by big ones: the workers take a waiting small
// job before a big one, and one more thread (the express worker) takes small jobs only. A
// small job that turns out big moves itself to the big lane (the caller decides what small
// means and when to move).
typedef enum { HTTP_LANE_BIG, HTTP_LANE_SMALL, HTTP_LANES } http_lane;

// Starts `workers` threads and the express worker, with room for `workers + queue` jobs in
// each lane (running or waiting). Returns NULL when memory or threads are not available.
http_pool *http_pool_create(int workers, int queue, int cores);

// Claims a place for one job in `lane`; false when the lane is full (the caller refuses the
// request). A claimed place must be used by http_pool_submit exactly once.
bool http_pool_reserve(http_pool *p, http_lane lane);

// Queues a job into a place claimed by http_pool_reserve in the same lane (cannot fail). A
// job may submit another (or itself again) from its worker.
void http_pool_submit(http_pool *p, http_lane lane, http_pool_fn run, void *arg);

// Removes every job still waiting (not running) and calls `cancel(arg, 0)` for each, on the
// caller's thread. Returns how many there were.
size_t http_pool_cancel_waiting(http_pool *p, http_pool_fn cancel);

// Jobs waiting for a worker, and workers running a job (the express worker included), at this
// instant, over both lanes.
int http_pool_waiting(http_pool *p);
int http_pool_busy(http_pool *p);

// Runs every job still waiting or running to its end, joins the workers and frees the pool.
// NULL is allowed.
void http_pool_destroy(http_pool *p);

// The memory budget: bytes that admitted requests hold, against a fixed limit.
typedef struct {
    atomic_size_t held;
    size_t limit;
} http_budget;

// Adds `bytes` to what is held unless that would pass the limit (then nothing changes and the
// result is false).
bool http_budget_take(http_budget *b, size_t bytes);
void http_budget_give_back(http_budget *b, size_t bytes);

#endif
