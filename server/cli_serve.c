// convd serve: configuration, the server's lifetime and the drain on SIGTERM/SIGINT.
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/cli.h"
#include "server/http_log.h"
#include "server/http_routes.h"
#include "server/http_server.h"
#include "server/version.h"

// Stop signals arrive on any thread: OpenBLAS starts its own threads when it loads, before
// main() could block signals for them. The handler only writes the signal number into a pipe
// that the main thread waits on.
static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig) {
    unsigned char byte = (unsigned char)sig;
    ssize_t n = write(stop_pipe[1], &byte, 1);
    (void)n; // a full pipe already holds a stop request
}

static bool catch_stop_signals(void) {
    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return false;
    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGTERM, &sa, NULL) == 0 && sigaction(SIGINT, &sa, NULL) == 0;
}

// Waits up to `ms` milliseconds for a stop signal; its number, or 0.
static int wait_stop_signal(int ms) {
    struct pollfd p = {stop_pipe[0], POLLIN, 0};
    int ready;
    while ((ready = poll(&p, 1, ms)) < 0 && errno == EINTR) continue;
    unsigned char byte = 0;
    return ready > 0 && read(stop_pipe[0], &byte, 1) == 1 ? byte : 0;
}

// Serves until a stop signal, writing out the buffered access log every 0.1 s meanwhile.
static int serve_until_stopped(void) {
    int sig;
    while ((sig = wait_stop_signal(100)) == 0) http_log_flush();
    return sig;
}

// Waits until no compute request is in flight, `seconds` pass, or one more stop signal comes.
// Returns true when everything in flight finished.
static bool wait_for_drain(http_server *srv, double seconds) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (http_server_inflight(srv) == 0) return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited =
            (double)(now.tv_sec - start.tv_sec) + 1e-9 * (double)(now.tv_nsec - start.tv_nsec);
        http_log_flush();
        if (waited >= seconds || wait_stop_signal(20) != 0) return false;
    }
}

// Page faults cost tens of microseconds each on the virtual machines convd was measured on,
// and glibc's default returns freed memory above 128 KiB to the system, so every request
// faulted its buffers in again: 2-3x fewer requests/s on the seed's case. Freed memory is
// kept for reuse instead (up to 64 MiB per heap; the memory budget bounds what requests hold
// at once). GLIBC_TUNABLES set by the user win.
static void keep_freed_memory(void) {
    if (getenv("GLIBC_TUNABLES")) return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int cli_serve(int argc, char **argv) {
    http_config cfg;
    switch (http_config_load(&cfg, argc, argv, stdout, stderr)) {
    case HTTP_CONFIG_HELP: return 0;
    case HTTP_CONFIG_ERROR: return 2;
    case HTTP_CONFIG_OK: break;
    }
    cfg.routes = http_routes;
    cfg.n_routes = http_n_routes;
    keep_freed_memory();
    signal(SIGPIPE, SIG_IGN);
    if (!catch_stop_signals()) {
        perror("convd serve: signal setup");
        return 1;
    }

    char err[256], message[512];
    http_server *srv = http_server_start(&cfg, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "convd serve: %s\n", err);
        return 1;
    }
    bool v6 = strchr(cfg.host, ':') != NULL;
    printf("convd %s listening on http://%s%s%s:%u\n", CONVD_VERSION, v6 ? "[" : "", cfg.host,
           v6 ? "]" : "", http_server_port(srv));
    fflush(stdout);
    snprintf(message, sizeof message,
             "port %u, %d workers, %d I/O threads, queue %d, max body %zu, memory budget %zu",
             http_server_port(srv), cfg.workers, cfg.io_threads, cfg.queue, cfg.max_body,
             cfg.max_memory);
    http_log_event("listening", message);

    int sig = serve_until_stopped();
    http_server_drain(srv);
    snprintf(message, sizeof message, "%s: draining %ld requests in flight (up to %g s)",
             strsignal(sig), http_server_inflight(srv), cfg.drain_timeout_s);
    http_log_event("draining", message);
    if (!wait_for_drain(srv, cfg.drain_timeout_s)) {
        size_t waiting = http_server_cancel_waiting(srv);
        snprintf(message, sizeof message,
                 "drain cut short: %zu waiting requests answered 503, %ld still computing", waiting,
                 http_server_inflight(srv) - (long)waiting);
        http_log_event("drain_timeout", message);
        wait_for_drain(srv, 2); // lets the 503s go out
    }
    if (!http_server_stop(srv)) {
        // A request still computes on a suspended connection: the library cannot be stopped
        // under it, and its client will not get an answer anyway. Leave at once.
        http_log_event("stopped", "exiting with requests unfinished");
        _exit(1);
    }
    http_log_event("stopped", "drained");
    return 0;
}
