// http_metrics: request counters and latency histograms, updated lock-free by any thread and
// rendered in the Prometheus text exposition format (version 0.0.4) for GET /metrics.
#ifndef HTTP_METRICS_H
#define HTTP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct http_metrics http_metrics;

// `route_names` (n of them, borrowed for the metrics' lifetime) label the routes; index n is
// the route of requests that matched none ("unmatched"). NULL when out of memory.
http_metrics *http_metrics_create(const char *const *route_names, size_t n);
void http_metrics_free(http_metrics *m);

// One finished request. queue_s/compute_s are negative for requests that never reached a
// compute worker.
typedef struct {
    size_t route;
    int status;
    double total_s, queue_s, compute_s;
    uint64_t bytes_in, bytes_out;
} http_observation;

void http_metrics_observe(http_metrics *m, const http_observation *o);

// The instantaneous state the server reports next to the counters.
typedef struct {
    int workers, workers_busy, queue_waiting, queue_limit;
    long inflight;
    size_t memory_held, memory_limit;
    unsigned connections;
    bool draining;
    double uptime_s;
    // Connections the guard ended (server/http_guard.h), counters since the start.
    uint64_t cut_header_timeout, cut_slow_body, cut_evicted;
} http_gauges;

// The whole exposition as a heap-allocated text the caller frees; NULL when out of memory.
char *http_metrics_render(http_metrics *m, const http_gauges *g, size_t *len);

#endif
