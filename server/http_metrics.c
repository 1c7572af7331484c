#include "server/http_metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

// Latency bucket bounds in seconds: from a cached small request (~0.1 ms) to a big layer.
static const double bucket_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                       0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                       1,      2.5,     5,      10,    30};
#define N_BUCKETS (sizeof bucket_bounds / sizeof *bucket_bounds)

// The statuses convd answers with (0: the request ended without an answer, "none"); any other
// lands in "other".
static const int status_codes[] = {0,   200, 204, 400, 401, 403, 404, 405,
                                   408, 413, 415, 422, 429, 500, 503};
#define N_STATUS (sizeof status_codes / sizeof *status_codes)

typedef struct {
    atomic_ullong bucket[N_BUCKETS]; // per bucket (made cumulative when rendered)
    atomic_ullong count;
    atomic_ullong sum_ns;
} histogram;

typedef struct {
    atomic_ullong by_status[N_STATUS + 1];
    atomic_ullong bytes_in, bytes_out;
    histogram duration, compute;
} route_metrics;

struct http_metrics {
    const char *const *names;
    size_t n_routes; // plus one for "unmatched"
    histogram queue_wait;
    route_metrics routes[];
};

http_metrics *http_metrics_create(const char *const *route_names, size_t n) {
    http_metrics *m = calloc(1, sizeof *m + (n + 1) * sizeof(route_metrics));
    if (!m) return NULL;
    m->names = route_names;
    m->n_routes = n;
    return m;
}

void http_metrics_free(http_metrics *m) { free(m); }

static void histogram_add(histogram *h, double seconds) {
    size_t b = 0;
    while (b < N_BUCKETS && seconds > bucket_bounds[b]) b++;
    if (b < N_BUCKETS) atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (unsigned long long)(seconds * 1e9),
                              memory_order_relaxed);
}

void http_metrics_observe(http_metrics *m, const http_observation *o) {
    route_metrics *r = &m->routes[o->route <= m->n_routes ? o->route : m->n_routes];
    size_t s = 0;
    while (s < N_STATUS && status_codes[s] != o->status) s++;
    atomic_fetch_add_explicit(&r->by_status[s], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->bytes_in, o->bytes_in, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->bytes_out, o->bytes_out, memory_order_relaxed);
    histogram_add(&r->duration, o->total_s);
    if (o->compute_s >= 0) histogram_add(&r->compute, o->compute_s);
    if (o->queue_s >= 0) histogram_add(&m->queue_wait, o->queue_s);
}

// A growing text buffer; after a failed allocation every append is a no-op and `failed` set.
typedef struct {
    char *text;
    size_t len, cap;
    bool failed;
} text_buf;

__attribute__((format(printf, 2, 3))) static void put(text_buf *t, const char *fmt, ...) {
    for (int attempt = 0; attempt < 2 && !t->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n =
            vsnprintf(t->text ? t->text + t->len : NULL, t->text ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
        } else if (t->text && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        } else {
            size_t cap = (t->len + (size_t)n + 1) * 2;
            char *grown = realloc(t->text, cap);
            if (!grown) t->failed = true;
            t->text = grown ? grown : t->text;
            t->cap = grown ? cap : t->cap;
        }
    }
}

static const char *route_name(const http_metrics *m, size_t r) {
    return r < m->n_routes ? m->names[r] : "unmatched";
}

static void put_histogram(text_buf *t, const char *name, const char *labels, histogram *h) {
    unsigned long long cumulative = 0;
    const char *sep = *labels ? "," : "";
    for (size_t b = 0; b < N_BUCKETS; b++) {
        cumulative += atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
        put(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bucket_bounds[b], cumulative);
    }
    unsigned long long count = atomic_load_explicit(&h->count, memory_order_relaxed);
    put(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, count);
    put(t, "%s_sum{%s} %.9f\n", name, labels,
        (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) * 1e-9);
    put(t, "%s_count{%s} %llu\n", name, labels, count);
}

// A gauge or counter without labels, with its HELP and TYPE lines.
static void put_single(text_buf *t, const char *name, const char *type, const char *help,
                       double value) {
    put(t, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, value);
}

static void put_route_counter(text_buf *t, http_metrics *m, const char *name, const char *help,
                              size_t offset) {
    put(t, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t r = 0; r <= m->n_routes; r++)
        put(t, "%s{route=\"%s\"} %llu\n", name, route_name(m, r),
            atomic_load((atomic_ullong *)((char *)&m->routes[r] + offset)));
}

char *http_metrics_render(http_metrics *m, const http_gauges *g, size_t *len) {
    text_buf t = {0};
    put(&t, "# HELP convd_http_requests_total Requests answered, by route and status.\n"
            "# TYPE convd_http_requests_total counter\n");
    for (size_t r = 0; r <= m->n_routes; r++)
        for (size_t s = 0; s <= N_STATUS; s++) {
            unsigned long long n = atomic_load(&m->routes[r].by_status[s]);
            if (n == 0) continue;
            char code[8] = "other";
            if (s < N_STATUS && status_codes[s] == 0)
                snprintf(code, sizeof code, "none");
            else if (s < N_STATUS)
                snprintf(code, sizeof code, "%d", status_codes[s]);
            put(&t, "convd_http_requests_total{route=\"%s\",code=\"%s\"} %llu\n", route_name(m, r),
                code, n);
        }
    put_route_counter(&t, m, "convd_http_received_bytes_total", "Request body bytes received.",
                      offsetof(route_metrics, bytes_in));
    put_route_counter(&t, m, "convd_http_sent_bytes_total", "Response body bytes sent.",
                      offsetof(route_metrics, bytes_out));
    struct {
        const char *name, *help;
        size_t offset;
    } const per_route[] = {
        {"convd_http_request_duration_seconds", "Time from request headers to the answer.",
         offsetof(route_metrics, duration)},
        {"convd_compute_duration_seconds", "Time a compute worker spent on a request.",
         offsetof(route_metrics, compute)},
    };
    for (size_t h = 0; h < sizeof per_route / sizeof *per_route; h++) {
        put(&t, "# HELP %s %s\n# TYPE %s histogram\n", per_route[h].name, per_route[h].help,
            per_route[h].name);
        for (size_t r = 0; r <= m->n_routes; r++) {
            char labels[160];
            snprintf(labels, sizeof labels, "route=\"%s\"", route_name(m, r));
            put_histogram(&t, per_route[h].name, labels,
                          (histogram *)((char *)&m->routes[r] + per_route[h].offset));
        }
    }
    put(&t, "# HELP convd_queue_wait_seconds Time admitted requests waited for a worker.\n"
            "# TYPE convd_queue_wait_seconds histogram\n");
    put_histogram(&t, "convd_queue_wait_seconds", "", &m->queue_wait);
    put_single(&t, "convd_workers", "gauge", "Compute worker threads.", g->workers);
    put_single(&t, "convd_workers_busy", "gauge", "Workers computing now.", g->workers_busy);
    put_single(&t, "convd_queue_depth", "gauge", "Requests waiting for a worker.",
               g->queue_waiting);
    put_single(&t, "convd_queue_limit", "gauge", "Requests that may wait (--queue).",
               g->queue_limit);
    put_single(&t, "convd_inflight_requests", "gauge",
               "Compute requests admitted and not yet answered.", (double)g->inflight);
    put_single(&t, "convd_inflight_memory_bytes", "gauge",
               "Memory budget held by admitted requests.", (double)g->memory_held);
    put_single(&t, "convd_memory_limit_bytes", "gauge", "The memory budget (--max-memory).",
               (double)g->memory_limit);
    put_single(&t, "convd_open_connections", "gauge", "Open client connections.", g->connections);
    put_single(&t, "convd_draining", "gauge", "1 after SIGTERM/SIGINT, while draining.",
               g->draining);
    put_single(&t, "convd_uptime_seconds", "gauge", "Seconds since the server started.",
               g->uptime_s);
    put(&t, "# HELP convd_connections_cut_total Connections ended by the guard, by reason "
            "(--header-timeout, --min-body-rate, room made near --max-connections).\n"
            "# TYPE convd_connections_cut_total counter\n");
    put(&t, "convd_connections_cut_total{reason=\"header_timeout\"} %llu\n",
        (unsigned long long)g->cut_header_timeout);
    put(&t, "convd_connections_cut_total{reason=\"slow_body\"} %llu\n",
        (unsigned long long)g->cut_slow_body);
    put(&t, "convd_connections_cut_total{reason=\"evicted\"} %llu\n",
        (unsigned long long)g->cut_evicted);
    if (t.failed) {
        free(t.text);
        return NULL;
    }
    *len = t.len;
    return t.text;
}
