// http_harness: what the HTTP tests share. A convd server process of their own (started with
// --port 0; the port is read from its stdout, so no port is guessed and none collides), requests
// through libcurl, raw sockets for clients that misbehave, /proc readings of the server, and
// the comparison of response tensors with the golden ones.
// Nothing here calls CHECK: results come back as values, so client threads may use it too.
#ifndef HTTP_HARNESS_H
#define HTTP_HARNESS_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tests/testlib.h"

// ---------------------------------------------------------------- the server process

typedef struct {
    pid_t pid;
    int port;
    char log_path[128]; // the server's stderr: its JSON log
} th_server;

// Monotonic seconds; a sleep in milliseconds.
double th_now(void);
void th_sleep_ms(int ms);

// The convd binary under test: $CONVD_BIN (tests/run.sh sets it per build tree) or build/convd.
const char *th_convd_bin(void);

// Starts `convd serve --host 127.0.0.1 --port 0 ARGS...` (`args` NULL-terminated, may be NULL)
// with its stderr in a log file, and waits (up to 60 s: sanitized builds start slowly) for
// the line that names its port. False when it did not come up.
bool th_server_start(th_server *s, const char *const *args);

// Waits up to `seconds` for the server to exit; returns its exit status, or -1 when it is
// still running or died by a signal.
int th_server_wait(th_server *s, double seconds);

// SIGTERM, then waits (a drain) up to `seconds`; the exit status, or -1 (then it is killed).
// Only the server's own PID is ever signalled.
int th_server_stop(th_server *s, double seconds);

// The server's log so far (heap, NUL-terminated; "" when unreadable).
char *th_server_log(const th_server *s);

// Resident memory (kB) and open file descriptors of a process, from /proc; -1 when unreadable.
long th_rss_kb(pid_t pid);
int th_fd_count(pid_t pid);

// ---------------------------------------------------------------- HTTP through libcurl

typedef struct {
    long status; // 0 when the transfer failed (see error)
    char *body;  // NUL-terminated
    size_t len, cap;
    char headers[8192]; // the response header block, as received
    size_t headers_len;
    char error[CURL_ERROR_SIZE];
} th_reply;

// libcurl write callbacks appending to a th_reply (`arg`): the body, and the header block.
size_t th_collect_body(char *data, size_t size, size_t n, void *arg);
size_t th_collect_header(char *data, size_t size, size_t n, void *arg);

// The value of response header `name` (case-insensitive) copied into buf; NULL when absent.
const char *th_header(const th_reply *r, const char *name, char *buf, size_t cap);

// Frees the reply's body.
void th_reply_free(th_reply *r);

// One request. `curl` is reused when given (keep-alive), else a handle lives for this call.
// `content_type` NULL sends no Content-Type; `extra` is a NULL-terminated header list or NULL.
// Returns true when an HTTP answer arrived (r->status set).
bool th_http(th_reply *r, CURL *curl, int port, const char *method, const char *path,
             const char *content_type, const char *body, size_t len,
             const char *const *extra);

// GET (or HEAD) without a body.
bool th_get(th_reply *r, int port, const char *path);

// POST of a JSON text.
bool th_post(th_reply *r, CURL *curl, int port, const char *path, const char *json);

// The error code of a spec error body ({"error":{"code":...}}) into buf; "" when not one.
const char *th_error_code(const th_reply *r, char *buf, size_t cap);

// ---------------------------------------------------------------- raw sockets

// A blocking TCP connection to the server; -1 on failure.
int th_connect(int port);

// Reads into buf (NUL-terminated) until the peer closes, `timeout_ms` pass, or `stop` (when
// not NULL) appears in what was read. *closed tells whether the peer closed (EOF or reset).
size_t th_read(int fd, char *buf, size_t cap, int timeout_ms, const char *stop, bool *closed);

// Reads one HTTP response (headers, then Content-Length bytes of body unless it answers a
// HEAD) into buf. Returns its status (0 when none arrived in `timeout_ms`); *closed tells
// whether the peer closed.
int th_read_response(int fd, char *buf, size_t cap, int timeout_ms, bool head, bool *closed);

// ---------------------------------------------------------------- tensors

// A v1 tensor in either form as flat doubles and a shape (rank <= 8). False when malformed.
typedef struct {
    double *data;
    size_t n;
    int rank;
    long long shape[8];
} th_tensor;

// A v1 tensor in either form (nested array, or {"shape", "data"}) into *t; false when malformed.
bool th_tensor_read(const cJSON *v, th_tensor *t);

// Compares a response tensor with the expected one: same shape, and every element within
// tol * (the largest expected magnitude). `why` says what differs.
bool th_tensor_close(const cJSON *got, const cJSON *want, double tol, char *why, size_t cap);

// A v1 tensor rewritten as a nested array (a new cJSON the caller deletes); NULL when malformed.
cJSON *th_nested(const cJSON *tensor);

// The tolerance of a dtype name (float64: 1e-10, float32: 1e-5, relative to the largest value).
double th_tolerance(const cJSON *request);

#endif
