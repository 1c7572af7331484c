// HTTP done right and limits held, black-box: bodies over --max-body (declared, 100-continue,
// chunked), wrong methods, paths and content types, truncated and stalled bodies, idle
// connections, the connection cap, keep-alive across every kind of answer, and the errors of
// the command line itself. After each misbehaving client the server must still answer.
#include "server/blas_boot.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "server/net.h"
#include "tests/harness/http_harness.h"

#define MAX_BODY 65536
#define TIMEOUT_S 2
static const char tiny_request[] = "{\"x\": [[1,2],[3,4]], \"w\": [[2]]}";

static bool healthy(int port) {
    th_reply r;
    bool ok = th_get(&r, port, "/healthz") && r.status == 200;
    th_reply_free(&r);
    return ok;
}

// Sends `head` (request line and headers, ending with the blank line) and `body_len` bytes of
// body ('1's) over a new connection; returns the socket, or -1.
static int raw_request(int port, const char *head, size_t body_len) {
    int fd = th_connect(port);
    if (fd < 0 || !net_send_all(fd, head, strlen(head))) return fd;
    static char ones[4096];
    memset(ones, '1', sizeof ones);
    for (size_t sent = 0; sent < body_len;) {
        size_t n = body_len - sent < sizeof ones ? body_len - sent : sizeof ones;
        if (!net_send_all(fd, ones, n)) break;
        sent += n;
    }
    return fd;
}

static void post_head(char *out, size_t cap, const char *length_header, const char *extra) {
    snprintf(out, cap,
             "POST /v1/conv2d/forward HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "%s\r\n%s\r\n",
             length_header, extra);
}

static void test_body_limits(int port) {
    char head[512], buf[8192], length[64];
    bool closed;
    // Declared too big and the client waits for 100-continue: 413 before any body is sent,
    // naming the limit and the flag.
    snprintf(length, sizeof length, "Content-Length: %d", 2 * MAX_BODY - 1);
    post_head(head, sizeof head, length, "Expect: 100-continue\r\n");
    int fd = raw_request(port, head, 0);
    int status = th_read_response(fd, buf, sizeof buf, 20000, false, &closed);
    CHECK(status == 413 && strstr(buf, "\"body_too_large\"") && strstr(buf, "--max-body") &&
              strstr(buf, "65536"),
          "100-continue with an oversized Content-Length: 413 naming the limit: %.400s", buf);
    close(fd);
    // Declared too big, no 100-continue: 413 at once from the headers, before the client
    // sends its body (issue 12: it used to wait for the whole body), and the connection closes.
    post_head(head, sizeof head, length, "");
    fd = raw_request(port, head, 0);
    double t0 = th_now();
    status = th_read_response(fd, buf, sizeof buf, 20000, false, &closed);
    th_read(fd, buf + strlen(buf), 64, 5000, NULL, &closed);
    CHECK(status == 413 && closed && th_now() - t0 < 5,
          "oversized Content-Length, no body yet: %d after %.1f s, closed %d", status,
          th_now() - t0, closed);
    close(fd);
    // Far too big: answered at once without reading, connection closed.
    post_head(head, sizeof head, "Content-Length: 10000000000", "");
    fd = raw_request(port, head, 0);
    status = th_read_response(fd, buf, sizeof buf, 20000, false, &closed);
    th_read(fd, buf + strlen(buf), 64, 5000, NULL, &closed);
    CHECK(status == 413 && closed, "10 GB declared: 413 %d and closed %d", status, closed);
    close(fd);

    // Chunked, over the limit: the server counts as it streams and answers 413 at the end.
    post_head(head, sizeof head, "Transfer-Encoding: chunked", "");
    fd = raw_request(port, head, 0);
    static char chunk[4096 + 16];
    int len = snprintf(chunk, sizeof chunk, "1000\r\n");
    memset(chunk + len, '2', 4096);
    memcpy(chunk + len + 4096, "\r\n", 2);
    for (int i = 0; i < MAX_BODY / 4096 + 4; i++) net_send_all(fd, chunk, (size_t)len + 4098);
    net_send_all(fd, "0\r\n\r\n", 5);
    status = th_read_response(fd, buf, sizeof buf, 20000, false, &closed);
    CHECK(status == 413 && strstr(buf, "\"body_too_large\""), "chunked over the limit: %.300s",
          buf);
    close(fd);
    // Chunked without end: cut off at twice the limit, nothing buffered.
    fd = raw_request(port, head, 0);
    bool sent = true;
    for (int i = 0; i < 64 * MAX_BODY / 4096 && sent; i++)
        sent = net_send_all(fd, chunk, (size_t)len + 4098);
    th_read(fd, buf, sizeof buf, 20000, NULL, &closed);
    CHECK(!sent || closed, "an endless chunked body is cut off (send failed %d, closed %d)", !sent,
          closed);
    close(fd);
    CHECK(healthy(port), "server answers after oversized bodies");
}

static void test_methods_paths_types(int port) {
    static const struct {
        const char *method, *path, *type, *body;
        long status;
        const char *code, *allow;
    } cases[] = {
        {"DELETE", "/v1/conv2d/forward", NULL, NULL, 405, "method_not_allowed", "POST, OPTIONS"},
        {"GET", "/v1/conv2d/backward", NULL, NULL, 405, "method_not_allowed", "POST, OPTIONS"},
        {"POST", "/healthz", "application/json", "{}", 405, "method_not_allowed",
         "GET, HEAD, OPTIONS"},
        {"PUT", "/metrics", "application/json", "{}", 405, "method_not_allowed",
         "GET, HEAD, OPTIONS"},
        {"GET", "/v2/nothing", NULL, NULL, 404, "not_found", NULL},
        {"OPTIONS", "/nothing", NULL, NULL, 404, "not_found", NULL},
        {"BREW", "/nothing", NULL, NULL, 404, "not_found", NULL},
        {"BREW", "/healthz", NULL, NULL, 405, "method_not_allowed", "GET, HEAD, OPTIONS"},
        {"POST", "/v1/conv2d/forwards", "application/json", tiny_request, 404, "not_found", NULL},
        {"GET", "/index.html", NULL, NULL, 404, "not_found", NULL},
        {"POST", "/v1/conv2d/forward", "text/plain", tiny_request, 415, "unsupported_media_type",
         NULL},
        {"POST", "/v1/conv2d/forward", "application/x-www-form-urlencoded", tiny_request, 415,
         "unsupported_media_type", NULL},
        {"POST", "/v1/conv2d/forward", "application/json; charset=utf-8", tiny_request, 200, "",
         NULL},
        {"POST", "/v1/conv2d/forward", "Application/JSON", tiny_request, 200, "", NULL},
        {"POST", "/v1/conv2d/forward", NULL, tiny_request, 200, "", NULL}, // no Content-Type
    };
    // One connection for all: every kind of answer keeps it alive.
    CURL *curl = curl_easy_init();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        th_reply r;
        char code[64], allow[64] = "";
        th_http(&r, curl, port, cases[i].method, cases[i].path, cases[i].type, cases[i].body,
                cases[i].body ? strlen(cases[i].body) : 0, NULL);
        long connects = -1;
        curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
        th_error_code(&r, code, sizeof code);
        CHECK(r.status == cases[i].status && strcmp(code, cases[i].code) == 0,
              "%s %s (%s): want %ld %s, got %ld %.200s", cases[i].method, cases[i].path,
              cases[i].type ? cases[i].type : "no type", cases[i].status, cases[i].code, r.status,
              r.body);
        if (cases[i].allow)
            CHECK(th_header(&r, "Allow", allow, sizeof allow) && strcmp(allow, cases[i].allow) == 0,
                  "%s %s: Allow '%s'", cases[i].method, cases[i].path, allow);
        CHECK(i == 0 || connects == 0, "%s %s: kept the connection (new connections: %ld)",
              cases[i].method, cases[i].path, connects);
        th_reply_free(&r);
    }
    curl_easy_cleanup(curl);
    // The answer of a spec-valid tiny request, to know the 200s above computed: y = 2x.
    th_reply r;
    th_post(&r, NULL, port, "/v1/conv2d/forward", tiny_request);
    cJSON *doc = cJSON_Parse(r.body);
    const cJSON *want = cJSON_Parse("{\"shape\":[2,2],\"data\":[2,4,6,8]}");
    char why[128] = "";
    CHECK(th_tensor_close(cJSON_GetObjectItemCaseSensitive(doc, "y"), want, 1e-6, why, sizeof why),
          "tiny request y = 2x: %s", why);
    cJSON_Delete(doc);
    cJSON_Delete((cJSON *)want);
    th_reply_free(&r);
}

static void test_continue_and_truncation(int port) {
    char head[512], buf[4096], length[64];
    bool closed;
    // Expect: 100-continue within limits: 100 first, then the answer to the body.
    snprintf(length, sizeof length, "Content-Length: %zu", strlen(tiny_request));
    post_head(head, sizeof head, length, "Expect: 100-continue\r\n");
    int fd = raw_request(port, head, 0);
    int status = th_read_response(fd, buf, sizeof buf, 20000, false, &closed);
    CHECK(status == 100, "Expect: 100-continue gets 100 first: %.100s", buf);
    net_send_all(fd, tiny_request, strlen(tiny_request));
    status = th_read_response(fd, buf, sizeof buf, 20000, false, &closed);
    CHECK(status == 200 && strstr(buf, "\"y\""), "then 200 with y: %.200s", buf);
    close(fd);
    // A body cut short by the client closing: nothing to answer, nothing kept.
    post_head(head, sizeof head, "Content-Length: 500", "");
    fd = raw_request(port, head, 100);
    close(fd);
    // A complete body holding truncated JSON: 400 invalid_json.
    th_reply r;
    char code[64];
    th_post(&r, NULL, port, "/v1/conv2d/forward", "{\"x\": [[1,2],[3,4]], \"w\": [[2");
    CHECK(r.status == 400 && strcmp(th_error_code(&r, code, sizeof code), "invalid_json") == 0,
          "truncated JSON: %ld %s", r.status, r.body);
    th_reply_free(&r);
    CHECK(healthy(port), "server answers after truncated bodies");
}

// Slow clients are cut off after --timeout of silence and never hold up the others.
static void test_slow_and_idle(int port) {
    char head[512], buf[256];
    bool closed;
    post_head(head, sizeof head, "Content-Length: 500", "");
    int stalled = raw_request(port, head, 100);
    enum { IDLE = 200 };
    int idle[IDLE], opened = 0;
    for (int i = 0; i < IDLE; i++) opened += (idle[i] = th_connect(port)) >= 0;
    CHECK(opened == IDLE, "%d of %d idle connections opened", opened, IDLE);
    double t0 = th_now();
    CHECK(healthy(port) && th_now() - t0 < 2,
          "answers at once beside %d idle connections and a "
          "stalled body (%.3f s)",
          IDLE, th_now() - t0);
    th_reply r;
    th_get(&r, port, "/metrics");
    const char *gauge = strstr(r.body, "\nconvd_open_connections ");
    CHECK(gauge && atoi(gauge + 24) >= IDLE, "/metrics shows the idle connections: %.40s",
          gauge ? gauge + 1 : "(none)");
    th_reply_free(&r);
    th_read(stalled, buf, sizeof buf, 30000, NULL, &closed);
    double waited = th_now() - t0;
    CHECK(closed && waited >= TIMEOUT_S - 1 && waited < 20,
          "a client that stalls mid-body is cut off after ~%d s (closed %d after %.1f s)",
          TIMEOUT_S, closed, waited);
    close(stalled);
    int cut = 0;
    for (int i = 0; i < IDLE; i++) {
        if (idle[i] < 0) continue;
        th_read(idle[i], buf, sizeof buf, 10000, NULL, &closed);
        cut += closed;
        close(idle[i]);
    }
    CHECK(cut == opened, "idle connections closed by the timeout: %d of %d", cut, opened);
    CHECK(healthy(port), "server answers after the slow clients");
}

// Near --max-connections the oldest connection still waiting for its headers is closed to make
// room (issue 12: clients crawling through their headers must not hold every slot), so a new
// client is served at once; one that is computing or answering is never closed for it.
static void test_connection_cap(void) {
    th_server s;
    const char *const args[] = {"--max-connections", "4", NULL};
    if (!CHECK(th_server_start(&s, args), "server with 4 connections at most starts")) return;
    int held[4];
    for (int i = 0; i < 4; i++) {
        held[i] = th_connect(s.port);
        th_sleep_ms(50); // in order: held[0] is the oldest
    }
    th_sleep_ms(200); // let the server accept them
    const char get[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    int fifth = th_connect(s.port);
    net_send_all(fifth, get, sizeof get - 1);
    char buf[1024];
    bool closed;
    int status = th_read_response(fifth, buf, sizeof buf, 5000, false, &closed);
    CHECK(status == 200, "a fifth connection is served beside 4 idle ones (status %d)", status);
    th_read(held[0], buf, sizeof buf, 2000, NULL, &closed);
    CHECK(closed, "the oldest idle connection made room");
    for (int i = 0; i < 4; i++) close(held[i]);
    close(fifth);
    CHECK(th_server_stop(&s, 60) == 0, "capped server exits 0");
}

// Requests assembled at random from odd pieces (methods, paths, header values, lengths that
// lie, bodies of any bytes), each on its own connection whose sending side is then closed:
// whatever arrives, the answer is never a 5xx (but 501 for a Transfer-Encoding it does not
// implement) and the server lives on.
static void test_random_requests(int port) {
    static const char *const methods[] = {"GET",     "POST",   "HEAD",
                                          "OPTIONS", "PUT",    "DELETE",
                                          "PATCH",   "G\x01T", "POSTPOSTPOSTPOSTPOSTPOST"};
    static const char *const paths[] = {"/v1/conv2d/forward",
                                        "/v1/conv2d/backward",
                                        "/healthz",
                                        "/readyz",
                                        "/metrics",
                                        "/v1/info",
                                        "/",
                                        "/v1/conv2d/forward?x=1",
                                        "/%00",
                                        "//healthz",
                                        "/v1/conv2d/../healthz",
                                        "/v1/conv2d/forward/",
                                        "*",
                                        "/\xff\xfe"};
    static const char *const headers[] = {"Content-Type: application/json",
                                          "Content-Type: application/json;",
                                          "Content-Type: ;",
                                          "Content-Type: ",
                                          "Content-Type: text/plain",
                                          "Content-Type: application/octet-stream",
                                          "Expect: 100-continue",
                                          "Expect: 100-CONTINUE",
                                          "Expect: nonsense",
                                          "Origin: https://x.example",
                                          "Transfer-Encoding: chunked",
                                          "Transfer-Encoding: gzip",
                                          "Content-Length: -1",
                                          "Content-Length: abc",
                                          "Content-Length: 18446744073709551615",
                                          "Content-Length: 5",
                                          "Content-Length: 0",
                                          "Accept: application/octet-stream",
                                          "Content-Encoding: gzip",
                                          "Connection: close",
                                          "Connection: keep-alive"};
    static const char *const bodies[] = {"",
                                         tiny_request,
                                         "{\"x\": [[1]], \"w\": [[1]]",
                                         "0\r\n\r\n",
                                         "5\r\nhello\r\n0\r\n\r\n",
                                         "\x1f\x8b\x08\x00garbage",
                                         "[[[[[[[[[[[[[[[["};
#define PICK(list) list[t_rand_u64(&seed) % (sizeof list / sizeof *list)]
    uint64_t seed = 42;
    enum { N = 300 };
    static char requests[N][1024];
    int fds[N];
    bool head[N];
    for (int i = 0; i < N; i++) { // all sent first, then all read: slow ones wait together
        const char *method = PICK(methods);
        head[i] = strcmp(method, "HEAD") == 0;
        char *request = requests[i];
        size_t cap = sizeof requests[i];
        int n = snprintf(request, cap, "%s %s HTTP/1.1\r\nHost: t\r\n", method, PICK(paths));
        for (int h = (int)(t_rand_u64(&seed) % 4); h > 0; h--)
            n += snprintf(request + n, cap - (size_t)n, "%s\r\n", PICK(headers));
        n += snprintf(request + n, cap - (size_t)n, "\r\n%s", PICK(bodies));
        fds[i] = th_connect(port);
        net_send_all(fds[i], request, (size_t)n);
        shutdown(fds[i], SHUT_WR);
    }
    int answered = 0, server_errors = 0;
    char buf[8192];
    for (int i = 0; i < N; i++) {
        bool closed;
        int status = th_read_response(fds[i], buf, sizeof buf, 10000, head[i], &closed);
        answered += status > 0;
        if (status >= 500 && status != 501 && server_errors++ == 0)
            printf("5xx for request %d:\n%s\n--- answer:\n%.300s\n", i, requests[i], buf);
        close(fds[i]);
    }
#undef PICK
    CHECK(server_errors == 0 && answered > N / 2, "%d odd requests: %d answered, %d with a 5xx",
          N, answered, server_errors);
    CHECK(healthy(port), "server answers after the odd requests");
}

// Runs `convd serve ARGS` through the shell (env assignments may prefix it); the exit status,
// with stdout and stderr in out.
static int run_serve(const char *env, const char *args, char *out, size_t cap) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s serve %s 2>&1", env, th_convd_bin(), args);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, cap - 1, p) : 0;
    out[n] = '\0';
    int status = p ? pclose(p) : -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_command_line(int busy_port) {
    static char out[16384];
    int status = run_serve("", "--help", out, sizeof out);
    CHECK(status == 0 && strstr(out, "--max-body") && strstr(out, "CONVD_MAX_BODY") &&
              strstr(out, "--drain-timeout") && strstr(out, "CONVD_CORS_ORIGIN"),
          "--help lists flags and variables (exit %d)", status);
    status = run_serve("", "--port 70000", out, sizeof out);
    CHECK(status == 2 && strstr(out, "--port"), "--port 70000: exit %d, %s", status, out);
    status = run_serve("", "--bogus", out, sizeof out);
    CHECK(status == 2 && strstr(out, "--bogus"), "--bogus: exit %d, %s", status, out);
    status = run_serve("CONVD_WORKERS=many", "", out, sizeof out);
    CHECK(status == 2 && strstr(out, "CONVD_WORKERS"), "CONVD_WORKERS=many: exit %d, %s", status,
          out);
    char args[64];
    snprintf(args, sizeof args, "--host 127.0.0.1 --port %d", busy_port);
    status = run_serve("", args, out, sizeof out);
    CHECK(status == 1 && strstr(out, "cannot listen"), "port in use: exit %d, %s", status, out);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    th_server s;
    char max_body[32], timeout[32];
    snprintf(max_body, sizeof max_body, "%d", MAX_BODY);
    snprintf(timeout, sizeof timeout, "%d", TIMEOUT_S);
    const char *const args[] = {"--max-body", max_body, "--timeout", timeout, NULL};
    if (CHECK(th_server_start(&s, args), "server starts (%s)", th_convd_bin())) {
        test_body_limits(s.port);
        test_methods_paths_types(s.port);
        test_continue_and_truncation(s.port);
        test_slow_and_idle(s.port);
        test_random_requests(s.port);
        test_command_line(s.port);
        CHECK(th_server_stop(&s, 60) == 0, "server drains and exits 0 on SIGTERM");
        char *log = th_server_log(&s);
        CHECK(strstr(log, "\"termination\":\"timeout\"") != NULL,
              "the log names the timed-out request");
        free(log);
        remove(s.log_path);
    }
    test_connection_cap();
    curl_global_cleanup();
    return t_finish("test_http_limits");
}
