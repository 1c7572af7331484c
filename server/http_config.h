// http_config: every setting of `convd serve`, from defaults, CONVD_* environment variables and
// command-line flags (in that order of precedence, flags last). One table drives parsing,
// the environment and --help, so a setting is never documented in one place and read in another.
#ifndef HTTP_CONFIG_H
#define HTTP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "api/api.h"
#include "server/http_router.h"

typedef struct {
    char host[256];         // address to listen on (numeric or a name getaddrinfo resolves)
    int port;               // 0 = any free port (the port chosen is printed on stdout)
    int workers;            // compute worker threads
    int io_threads;         // libmicrohttpd polling threads (connection I/O only)
    int queue;              // requests that may wait for a worker beyond those running
    size_t max_body;        // largest request body in bytes (413 beyond)
    size_t max_memory;      // budget for the sum of what admitted requests hold (503 beyond)
    int max_connections;    // open connections at once (further ones are refused)
    int timeout_s;          // a connection idle this long is closed (slow clients, slowloris)
    double header_timeout_s; // total time for a request line and headers (server/http_guard.h)
    double min_body_rate;    // bytes per second a body must average (0 = no minimum)
    int max_uploads;         // bodies one client address may be sending at once (0 = no cap)
    bool metrics_auth;       // GET /metrics needs an API key too (with api_keys)
    double drain_timeout_s; // SIGTERM/SIGINT: time in-flight requests get to finish
    int retry_after_s;      // the Retry-After value of 503 answers
    char cors_origin[512];  // "" = no CORS headers; "*" or a comma-separated list of origins
    bool access_log;        // one JSON line per request on stderr
    char api_keys[1024];    // "" = open; else the file of API keys (server/http_auth.h)
    double rate_limit;      // compute requests per second per API key; 0 = no limit
    int rate_burst;         // requests a key may send at once; 0 = the rate, at least 1
    char tls_cert[1024];    // PEM certificate chain file: HTTPS with tls_key
    char tls_key[1024];     // PEM private key of tls_cert
    api_options api;        // per-request limits passed to the request model (threads: per call)
    int cores;              // CPUs this process may use (affinity and cgroup quota); not a flag
    const http_route *routes; // what the server answers (convd's: server/http_routes.h); not a
    size_t n_routes;          // flag: http_config_load leaves them empty for the caller to set
} http_config;

typedef enum { HTTP_CONFIG_OK, HTTP_CONFIG_HELP, HTTP_CONFIG_ERROR } http_config_result;

// Fills `cfg` from defaults, then the environment, then argv[1..argc-1] (argv[0] is the command
// name). Flags take "--name value" or "--name=value". On HTTP_CONFIG_HELP the usage was printed
// on `out`; on HTTP_CONFIG_ERROR a message naming the flag or variable and the accepted range
// was printed on `err`.
http_config_result http_config_load(http_config *cfg, int argc, char **argv, FILE *out, FILE *err);

// CPUs usable by this process: its affinity mask, lowered by a cgroup v2 CPU quota if any.
int http_config_cores(void);

#endif
