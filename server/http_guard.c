#include "server/http_guard.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef enum { PHASE_HEADERS, PHASE_BODY, PHASE_BUSY } phase;

struct http_guard_conn {
    int fd;
    atomic_int phase;
    atomic_llong since_ns; // when the phase began
    atomic_ullong body_bytes;
    atomic_llong progress_ns; // when body bytes last arrived
    bool ended; // shut down by the guard (under the lock)
    http_guard_conn *prev, *next;
};

typedef struct {
    char address[64];
    int uploads; // 0: a free slot
} uploader;

struct http_guard {
    pthread_mutex_t lock;
    uploader *uploaders; // the addresses sending bodies now (a short list: linear search)
    size_t n_uploaders;
    pthread_cond_t wake;
    pthread_t sweeper;
    bool stopping;
    http_guard_conn *oldest, *newest; // every open connection, in the order they opened
    unsigned open, evict_at;
    long long header_timeout_ns;
    double min_body_rate;
    atomic_ullong header_timeouts, slow_bodies, evicted;
};

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void set_phase(http_guard_conn *c, phase p) {
    if (!c) return;
    atomic_store(&c->since_ns, now_ns());
    atomic_store(&c->phase, (int)p);
}

// Ends a connection: the socket stops both ways; libmicrohttpd sees the hang-up, closes it and
// ends its request (releasing what it held). Under the lock, so the socket is still open.
static void end_conn(http_guard_conn *c, atomic_ullong *counter) {
    if (c->ended) return;
    c->ended = true;
    shutdown(c->fd, SHUT_RDWR);
    atomic_fetch_add(counter, 1);
}

// Whether connection c is past a deadline at time `now`.
static bool overdue(http_guard *g, const http_guard_conn *c, long long now, atomic_ullong **why) {
    long long age = now - atomic_load(&c->since_ns);
    switch ((phase)atomic_load(&c->phase)) {
    case PHASE_HEADERS:
        *why = &g->header_timeouts;
        return age > g->header_timeout_ns;
    case PHASE_BODY: // stalled (or half-closed), or slower than the minimum on average
        *why = &g->slow_bodies;
        return now - atomic_load(&c->progress_ns) > g->header_timeout_ns ||
               (g->min_body_rate > 0 && age > g->header_timeout_ns &&
                (double)atomic_load(&c->body_bytes) < g->min_body_rate * (double)age * 1e-9);
    default: return false;
    }
}

static void *sweep(void *arg) {
    http_guard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&g->wake, &g->lock, &until);
        long long now = now_ns();
        for (http_guard_conn *c = g->oldest; c; c = c->next) {
            atomic_ullong *why;
            if (overdue(g, c, now, &why)) end_conn(c, why);
        }
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

http_guard *http_guard_create(unsigned max_connections, double header_timeout_s,
                              double min_body_rate) {
    http_guard *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->wake, NULL);
    // Room kept free for arrivals: a sixteenth of the cap, between 1 and 64 connections.
    unsigned margin = max_connections / 16;
    margin = margin < 1 ? 1 : margin > 64 ? 64 : margin;
    g->evict_at = max_connections > margin ? max_connections - margin : 1;
    g->header_timeout_ns = (long long)(header_timeout_s * 1e9);
    g->min_body_rate = min_body_rate;
    if (pthread_create(&g->sweeper, NULL, sweep, g) != 0) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
    }
    return g;
}

void http_guard_free(http_guard *g) {
    if (!g) return;
    pthread_mutex_lock(&g->lock);
    g->stopping = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->sweeper, NULL);
    while (g->oldest) {
        http_guard_conn *c = g->oldest;
        g->oldest = c->next;
        free(c);
    }
    free(g->uploaders);
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

http_guard_conn *http_guard_open(http_guard *g, int fd) {
    http_guard_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    set_phase(c, PHASE_HEADERS);
    pthread_mutex_lock(&g->lock);
    if (++g->open > g->evict_at) {
        for (http_guard_conn *old = g->oldest; old; old = old->next)
            if (!old->ended && atomic_load(&old->phase) == PHASE_HEADERS) {
                end_conn(old, &g->evicted);
                break;
            }
    }
    c->prev = g->newest;
    if (g->newest)
        g->newest->next = c;
    else
        g->oldest = c;
    g->newest = c;
    pthread_mutex_unlock(&g->lock);
    return c;
}

void http_guard_close(http_guard *g, http_guard_conn *c) {
    if (!c) return;
    pthread_mutex_lock(&g->lock);
    g->open--;
    if (c->prev)
        c->prev->next = c->next;
    else
        g->oldest = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        g->newest = c->prev;
    pthread_mutex_unlock(&g->lock);
    free(c);
}

void http_guard_headers_done(http_guard_conn *c, bool body_follows) {
    if (c) {
        atomic_store(&c->body_bytes, 0);
        atomic_store(&c->progress_ns, now_ns());
    }
    set_phase(c, body_follows ? PHASE_BODY : PHASE_BUSY);
}

void http_guard_body_bytes(http_guard_conn *c, uint64_t total) {
    if (!c) return;
    atomic_store(&c->body_bytes, total);
    atomic_store(&c->progress_ns, now_ns());
}

void http_guard_busy(http_guard_conn *c) { set_phase(c, PHASE_BUSY); }

void http_guard_idle(http_guard_conn *c) { set_phase(c, PHASE_HEADERS); }

// The slot of `address`, or a free one when `add` (NULL when none and no memory). Under the lock.
static uploader *find_uploader(http_guard *g, const char *address, bool add) {
    uploader *free_slot = NULL;
    for (size_t i = 0; i < g->n_uploaders; i++) {
        if (g->uploaders[i].uploads && strcmp(g->uploaders[i].address, address) == 0)
            return &g->uploaders[i];
        if (!g->uploaders[i].uploads && !free_slot) free_slot = &g->uploaders[i];
    }
    if (!add) return NULL;
    if (free_slot) return free_slot;
    uploader *grown = realloc(g->uploaders, (g->n_uploaders + 1) * 2 * sizeof *grown);
    if (!grown) return NULL;
    for (size_t i = g->n_uploaders; i < (g->n_uploaders + 1) * 2; i++) grown[i].uploads = 0;
    g->uploaders = grown;
    free_slot = &grown[g->n_uploaders];
    g->n_uploaders = (g->n_uploaders + 1) * 2;
    return free_slot;
}

bool http_guard_upload_begin(http_guard *g, const char *address, int max) {
    if (max <= 0) return true;
    pthread_mutex_lock(&g->lock);
    uploader *u = find_uploader(g, address, true);
    bool ok = u && u->uploads < max;
    if (ok && u->uploads++ == 0) snprintf(u->address, sizeof u->address, "%s", address);
    pthread_mutex_unlock(&g->lock);
    return ok;
}

void http_guard_upload_end(http_guard *g, const char *address) {
    pthread_mutex_lock(&g->lock);
    uploader *u = find_uploader(g, address, false);
    if (u && u->uploads) u->uploads--;
    pthread_mutex_unlock(&g->lock);
}

http_guard_counts http_guard_counters(const http_guard *g) {
    return (http_guard_counts){atomic_load(&g->header_timeouts), atomic_load(&g->slow_bodies),
                               atomic_load(&g->evicted)};
}
