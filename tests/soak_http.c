// make soak (not part of make test): a mixed load against one `convd serve` for SOAK_SECONDS
// (300 by default): small and medium requests that must be answered, and the attacks of
// tests/test_http_hostile.c in turns (slowloris, trickled and half-closed bodies, JSON bombs,
// bad framing, big answers). Resident memory and open descriptors are sampled every 5 s; the
// server must end as it was once warm (RSS within 16 MiB of its level after the first minute,
// descriptors within 8 of the start), having answered no 500, and must still be alive.
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/net.h"
#include "tests/harness/http_harness.h"
#include "tests/testlib.h"

static atomic_bool stopping;
static atomic_long answered, server_errors, refused;
static int port;

static const char tiny[] = "{\"x\": [[1,2],[3,4]], \"w\": [[2]]}";

static void tally(long status) {
    if (status >= 500 && status != 503 && status != 501) atomic_fetch_add(&server_errors, 1);
    else if (status == 200) atomic_fetch_add(&answered, 1);
    else atomic_fetch_add(&refused, 1);
}

// Small and medium requests, one after another.
static void *client_main(void *arg) {
    char *medium = malloc(1 << 20);
    size_t n = (size_t)sprintf(medium, "{\"x\":[[");
    for (int i = 0; i < 100000; i++) n += (size_t)sprintf(medium + n, i ? ",0.5" : "0.5");
    sprintf(medium + n, "]],\"w\":[[1,2,3]]}");
    CURL *curl = curl_easy_init();
    for (long i = 0; !atomic_load(&stopping); i++) {
        th_reply r;
        if (th_post(&r, curl, port, "/v1/conv2d/forward", i % 10 ? tiny : medium)) tally(r.status);
        th_reply_free(&r);
    }
    curl_easy_cleanup(curl);
    free(medium);
    return NULL;
}

static void send_fill(int fd, char c, size_t n) {
    char piece[4096];
    memset(piece, c, sizeof piece);
    for (size_t sent = 0; sent < n; sent += sizeof piece)
        if (!net_send_all(fd, piece, n - sent < sizeof piece ? n - sent : sizeof piece)) return;
}

// One attack of each kind in turn.
static void *attacker_main(void *arg) {
    char head[256], buf[4096];
    for (long round = 0; !atomic_load(&stopping); round++) {
        int fds[40];
        switch (round % 5) {
        case 0: // slowloris: 40 connections crawl through their headers for 3 s
            for (int i = 0; i < 40; i++) {
                fds[i] = th_connect(port);
                net_send_all(fds[i], "GET /healthz HTTP/1.1\r\nX: ", 26);
            }
            th_sleep_ms(3000);
            for (int i = 0; i < 40; i++) close(fds[i]);
            break;
        case 1: // bodies declared big, trickled or half-closed
            snprintf(head, sizeof head,
                     "POST /v1/conv2d/forward HTTP/1.1\r\nHost: s\r\nContent-Type: "
                     "application/json\r\nContent-Length: 8000000\r\n\r\n[");
            for (int i = 0; i < 10; i++) {
                fds[i] = th_connect(port);
                net_send_all(fds[i], head, strlen(head));
                send_fill(fds[i], '1', 100000);
                if (i % 2) shutdown(fds[i], SHUT_WR);
            }
            th_sleep_ms(3000);
            for (int i = 0; i < 10; i++) close(fds[i]);
            break;
        case 2: { // a JSON bomb of one-number arrays, 4 MiB
            size_t len = 4 << 20;
            char *bomb = malloc(len + 16);
            size_t n = (size_t)sprintf(bomb, "{\"x\":[\"a\"");
            while (n + 8 < len) n += (size_t)sprintf(bomb + n, ",[1]");
            n += (size_t)sprintf(bomb + n, "]}");
            th_reply r;
            if (th_http(&r, NULL, port, "POST", "/v1/conv2d/forward", "application/json", bomb, n,
                        NULL))
                tally(r.status);
            th_reply_free(&r);
            free(bomb);
            break;
        }
        case 3: // bad framing
            for (int i = 0; i < 10; i++) {
                int fd = th_connect(port);
                const char *bad = i % 2 ? "Content-Length: 5\r\nContent-Length: 6\r\n"
                                        : "Transfer-Encoding: gzip\r\n";
                snprintf(head, sizeof head,
                         "POST /v1/conv2d/forward HTTP/1.1\r\nHost: s\r\n%s\r\n", bad);
                net_send_all(fd, head, strlen(head));
                bool closed;
                tally(th_read_response(fd, buf, sizeof buf, 5000, false, &closed));
                close(fd);
            }
            break;
        default: { // a big answer (8 MiB of float64 text), then a too-big problem
            th_reply r;
            if (th_post(&r, NULL, port, "/v1/conv2d/forward",
                        "{\"x\":[[1]],\"w\":[[1]],\"padding\":300,\"dtype\":\"float64\"}"))
                tally(r.status);
            th_reply_free(&r);
            if (th_post(&r, NULL, port, "/v1/conv2d/problem",
                        "{\"seed\":1,\"x_shape\":[1,1,4096,4096],\"w_shape\":[1,1,1,1]}"))
                tally(r.status);
            th_reply_free(&r);
        }
        }
        th_sleep_ms(500);
    }
    return NULL;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_ALL);
    const char *env = getenv("SOAK_SECONDS");
    double seconds = env && *env ? atof(env) : 300;
    th_server s;
    const char *const args[] = {"--max-memory", "256M", "--header-timeout", "2",
                                "--access-log", "off",  NULL};
    if (!CHECK(th_server_start(&s, args), "server starts")) return t_finish("soak_http");
    port = s.port;
    int fds_start = th_fd_count(s.pid);
    pthread_t clients[3], attacker;
    for (int i = 0; i < 3; i++) pthread_create(&clients[i], NULL, client_main, NULL);
    pthread_create(&attacker, NULL, attacker_main, NULL);
    double t0 = th_now();
    long warm_kb = -1, last_kb = -1, max_kb = 0;
    while (th_now() - t0 < seconds) {
        th_sleep_ms(5000);
        last_kb = th_rss_kb(s.pid);
        if (last_kb > max_kb) max_kb = last_kb;
        if (warm_kb < 0 && th_now() - t0 >= (seconds < 120 ? seconds / 4 : 60)) warm_kb = last_kb;
        printf("  %5.0f s: RSS %6.1f MiB, %d fds, %ld answered, %ld refused, %ld 5xx\n",
               th_now() - t0, last_kb / 1024.0, th_fd_count(s.pid), atomic_load(&answered),
               atomic_load(&refused), atomic_load(&server_errors));
        fflush(stdout);
    }
    atomic_store(&stopping, true);
    for (int i = 0; i < 3; i++) pthread_join(clients[i], NULL);
    pthread_join(attacker, NULL);
    th_sleep_ms(3000); // cut-off connections close
    long end_kb = th_rss_kb(s.pid);
    int fds_end = th_fd_count(s.pid);
    printf("soak: %.0f s, RSS warm %.1f, end %.1f, max %.1f MiB; fds %d -> %d\n", seconds,
           warm_kb / 1024.0, end_kb / 1024.0, max_kb / 1024.0, fds_start, fds_end);
    CHECK(atomic_load(&server_errors) == 0, "%ld answers were 5xx (not 501/503)",
          atomic_load(&server_errors));
    CHECK(atomic_load(&answered) > 0, "requests answered");
    CHECK(end_kb > 0 && end_kb <= warm_kb + 16 * 1024, "RSS flat: %ld kB warm, %ld kB at the end",
          warm_kb, end_kb);
    CHECK(fds_end <= fds_start + 8, "descriptors flat: %d at the start, %d at the end", fds_start,
          fds_end);
    th_reply r;
    CHECK(th_get(&r, s.port, "/healthz") && r.status == 200, "alive at the end");
    th_reply_free(&r);
    CHECK(th_server_stop(&s, 60) == 0, "drains and exits 0");
    curl_global_cleanup();
    return t_finish("soak_http");
}
