// convd healthcheck: asks the convd of this machine (or container) whether it is alive, for
// container HEALTHCHECKs and exec probes in images that have no curl. It reads the same
// settings as `convd serve` (CONVD_* variables, then flags), so an image that configures the
// server by environment checks the right port, over HTTPS when the server serves HTTPS.
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "server/cli.h"
#include "server/http_config.h"
#include "server/net.h"

#define ANSWER_CAP 1024

// The address to reach a server listening on `host`: a wildcard listener is reached on the
// loopback address of its family.
static const char *reachable_host(const char *host) {
    if (!*host || strcmp(host, "0.0.0.0") == 0) return "127.0.0.1";
    if (strcmp(host, "::") == 0 || strcmp(host, "[::]") == 0) return "::1";
    return host;
}

// A TCP connection whose connect, reads and writes each give up after `seconds`; -1 with the
// reason in `why`.
static int connect_with_timeout(const char *host, int port, double seconds, char *why, size_t cap) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *list;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &list);
    if (rc != 0) {
        snprintf(why, cap, "cannot resolve the host: %s", gai_strerror(rc));
        return -1;
    }
    struct timeval limit = {(time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6)};
    int fd = -1;
    for (struct addrinfo *a = list; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit); // connect() honours it
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            snprintf(why, cap, "cannot connect: %s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(list);
    return fd;
}

// Sends `request` and reads the answer (up to ANSWER_CAP - 1 bytes) in plain HTTP.
static bool exchange_plain(int fd, const char *request, char *answer, char *why, size_t cap) {
    if (!net_send_all(fd, request, strlen(request))) {
        snprintf(why, cap, "cannot send the request: %s", strerror(errno));
        return false;
    }
    size_t n = 0;
    ssize_t got;
    while (n < ANSWER_CAP - 1 && (got = recv(fd, answer + n, ANSWER_CAP - 1 - n, 0)) > 0)
        n += (size_t)got;
    answer[n] = '\0';
    return true;
}

// The same over TLS. The certificate is not verified: the check reaches the server on this
// machine's own address, and only asks whether it answers. A socket timeout surfaces as
// GNUTLS_E_AGAIN and ends the exchange like any other error.
static bool exchange_tls(int fd, const char *request, double timeout_s, char *answer, char *why,
                         size_t cap) {
    gnutls_certificate_credentials_t creds = NULL;
    gnutls_session_t session = NULL;
    int rc = gnutls_certificate_allocate_credentials(&creds);
    if (rc >= 0) rc = gnutls_init(&session, GNUTLS_CLIENT);
    if (rc >= 0) rc = gnutls_set_default_priority(session);
    if (rc >= 0) rc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, creds);
    if (rc >= 0) {
        gnutls_transport_set_int(session, fd);
        gnutls_handshake_set_timeout(session, (unsigned)(timeout_s * 1000));
        do rc = gnutls_handshake(session);
        while (rc == GNUTLS_E_INTERRUPTED);
    }
    size_t n = 0;
    if (rc >= 0) {
        size_t len = strlen(request), sent = 0;
        while (rc >= 0 && sent < len)
            if ((rc = (int)gnutls_record_send(session, request + sent, len - sent)) > 0)
                sent += (size_t)rc;
        ssize_t got;
        // A server may close without close_notify: an error after bytes came ends the answer.
        while (rc >= 0 && n < ANSWER_CAP - 1 &&
               (got = gnutls_record_recv(session, answer + n, ANSWER_CAP - 1 - n)) > 0)
            n += (size_t)got;
    }
    answer[n] = '\0';
    if (rc < 0) snprintf(why, cap, "TLS: %s", gnutls_strerror(rc));
    if (session) gnutls_deinit(session);
    if (creds) gnutls_certificate_free_credentials(creds);
    return rc >= 0;
}

static void print_usage(FILE *to) {
    fputs("usage: convd healthcheck [--ready] [--timeout SECONDS] [convd serve options]\n"
          "Asks the convd server that the same options and CONVD_* variables configure for\n"
          "GET /healthz (--ready: GET /readyz), over HTTPS when --tls-cert is set. Exit 0 when\n"
          "it answers 200, 1 otherwise (the reason on standard error), 2 for bad options.\n",
          to);
}

int cli_healthcheck(int argc, char **argv) {
    const char *path = "/healthz";
    double timeout_s = 5;
    // Its own options are taken out; the rest are the server's, read by http_config_load.
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return 1;
    int n_rest = 0;
    rest[n_rest++] = argv[0];
    for (int a = 1; a < argc; a++) {
        char *end = NULL;
        if (strcmp(argv[a], "--ready") == 0) {
            path = "/readyz";
        } else if (strcmp(argv[a], "--timeout") == 0 && a + 1 < argc) {
            timeout_s = strtod(argv[++a], &end);
            if (*end || !(timeout_s > 0 && timeout_s <= 3600)) {
                fprintf(stderr, "convd healthcheck: --timeout takes seconds from 0 to 3600\n");
                free(rest);
                return 2;
            }
        } else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
            print_usage(stdout);
            free(rest);
            return 0;
        } else {
            rest[n_rest++] = argv[a];
        }
    }
    http_config cfg;
    http_config_result loaded = http_config_load(&cfg, n_rest, rest, stdout, stderr);
    free(rest);
    if (loaded != HTTP_CONFIG_OK) return loaded == HTTP_CONFIG_HELP ? 0 : 2;
    if (cfg.port == 0) {
        fprintf(stderr, "convd healthcheck: the server's port is 0 (any): give --port\n");
        return 2;
    }
    const char *host = reachable_host(cfg.host);
    bool tls = cfg.tls_cert[0] != '\0';
    char why[256] = "", request[256], answer[ANSWER_CAP];
    snprintf(request, sizeof request,
             "GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: convd-healthcheck\r\n"
             "Connection: close\r\n\r\n",
             path);
    int fd = connect_with_timeout(host, cfg.port, timeout_s, why, sizeof why);
    bool answered = fd >= 0 && (tls ? exchange_tls(fd, request, timeout_s, answer, why, sizeof why)
                                    : exchange_plain(fd, request, answer, why, sizeof why));
    if (fd >= 0) close(fd);
    int status = answered && strncmp(answer, "HTTP/1.", 7) == 0 ? atoi(answer + 9) : 0;
    const char *url_scheme = tls ? "https" : "http";
    if (status == 200) {
        printf("convd healthcheck: %s://%s:%d%s answered 200\n", url_scheme, host, cfg.port, path);
        return 0;
    }
    if (!*why) snprintf(why, sizeof why, "answered %.40s", status ? answer + 9 : "no HTTP");
    why[strcspn(why, "\r\n")] = '\0';
    fprintf(stderr, "convd healthcheck: %s://%s:%d%s: %s\n", url_scheme, host, cfg.port, path, why);
    return 1;
}
