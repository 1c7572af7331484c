// The server under load, black-box: many clients at once with valid and invalid requests
// (every answer right, no 5xx, memory and descriptors back where they were), overload with one
// worker and a one-place queue (503 + Retry-After, none lost, none wrong), the memory budget,
// and the drain on SIGTERM (in-flight requests finish, new ones refused, exit 0).
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/blas_boot.h"
#include "server/net.h"
#include "tests/harness/http_harness.h"

// ---------------------------------------------------------------- requests and their answers

typedef struct {
    char path[64];
    char *body;
    long status;     // expected status
    char code[32];   // expected error code ("" for 200)
    cJSON *expected; // tensors expected in a 200 answer (NULL otherwise)
    double tol;      // their tolerance
} load_item;

static load_item items[64];
static int n_items;

static void add_item(const char *path, char *body, long status, const char *code, cJSON *expected,
                     double tol) {
    load_item *it = &items[n_items++];
    snprintf(it->path, sizeof it->path, "%s", path);
    it->body = body;
    it->status = status;
    snprintf(it->code, sizeof it->code, "%s", code);
    it->expected = expected;
    it->tol = tol;
}

// Every golden case forward and backward, and one invalid request of each kind.
static void load_items(void) {
    DIR *dir = opendir(t_golden_dir());
    for (struct dirent *e; dir && (e = readdir(dir)) && n_items < 40;) {
        if (!strstr(e->d_name, ".json")) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", t_golden_dir(), e->d_name);
        char *text = t_read_file(path, NULL);
        cJSON *golden = cJSON_Parse(text);
        free(text);
        cJSON *req = cJSON_GetObjectItemCaseSensitive(golden, "request");
        cJSON *expected = cJSON_DetachItemFromObjectCaseSensitive(golden, "expected");
        double tol = th_tolerance(req);
        cJSON_DeleteItemFromObjectCaseSensitive(req, "op");
        cJSON *backward_expected = cJSON_Duplicate(expected, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(backward_expected, "y");
        add_item("/v1/conv2d/backward", cJSON_PrintUnformatted(req), 200, "", backward_expected,
                 tol);
        cJSON_DeleteItemFromObjectCaseSensitive(req, "dy");
        cJSON *forward_expected = cJSON_CreateObject();
        cJSON_AddItemToObject(forward_expected, "y",
                              cJSON_DetachItemFromObjectCaseSensitive(expected, "y"));
        add_item("/v1/conv2d/forward", cJSON_PrintUnformatted(req), 200, "", forward_expected, tol);
        cJSON_Delete(expected);
        cJSON_Delete(golden);
    }
    if (dir) closedir(dir);
    static const struct {
        const char *path, *body;
        long status;
        const char *code;
    } bad[] = {
        {"/v1/conv2d/forward", "{\"x\": [[1,2],[3,4]], \"w\": [[1", 400, "invalid_json"},
        {"/v1/conv2d/forward", "{\"x\": [[1,2],[3,4]], \"w\": [[1]], \"pad\": 1}", 422,
         "unknown_field"},
        {"/v1/conv2d/backward", "{\"x\": [[1,2],[3,4]], \"w\": [[1]]}", 422, "missing_field"},
        {"/v1/conv2d/sideways", "{}", 404, "not_found"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        add_item(bad[i].path, strdup(bad[i].body), bad[i].status, bad[i].code, NULL, 0);
}

// Checks one answer against its item; false with `why` filled when wrong.
static bool answer_right(const load_item *it, const th_reply *r, char *why, size_t cap) {
    char code[64];
    if (r->status != it->status) {
        snprintf(why, cap, "%s: status %ld, want %ld (%.80s) %.200s", it->path, r->status,
                 it->status, r->error, r->body);
        return false;
    }
    if (!it->expected) {
        th_error_code(r, code, sizeof code);
        snprintf(why, cap, "%s: code %s, want %s", it->path, code, it->code);
        return strcmp(code, it->code) == 0;
    }
    cJSON *doc = cJSON_Parse(r->body);
    bool ok = doc != NULL;
    const cJSON *want;
    cJSON_ArrayForEach(want, it->expected) {
        if (ok && !th_tensor_close(cJSON_GetObjectItemCaseSensitive(doc, want->string), want,
                                   it->tol, why, cap))
            ok = false;
    }
    cJSON_Delete(doc);
    return ok;
}

// ---------------------------------------------------------------- concurrency

typedef struct {
    int port, index, requests;
    bool fresh_connections; // a new connection per request instead of keep-alive
    int wrong, server_errors, sent;
    char first_wrong[600];
} client_job;

static void *client_main(void *arg) {
    client_job *job = arg;
    CURL *curl = job->fresh_connections ? NULL : curl_easy_init();
    for (int i = 0; i < job->requests; i++) {
        const load_item *it = &items[(job->index * 7 + i * 3) % n_items];
        th_reply r;
        char why[600];
        th_post(&r, curl, job->port, it->path, it->body);
        job->sent++;
        job->server_errors += r.status >= 500 || r.status == 0;
        if (!answer_right(it, &r, why, sizeof why) && job->wrong++ == 0)
            snprintf(job->first_wrong, sizeof job->first_wrong, "%s", why);
        th_reply_free(&r);
    }
    if (curl) curl_easy_cleanup(curl);
    return NULL;
}

// Runs `clients` threads of `requests` each; returns the number of wrong answers.
static int run_clients(int port, int clients, int requests, int *server_errors) {
    pthread_t threads[32];
    client_job jobs[32];
    for (int c = 0; c < clients; c++) {
        jobs[c] = (client_job){
            .port = port, .index = c, .requests = requests, .fresh_connections = c % 4 == 3};
        pthread_create(&threads[c], NULL, client_main, &jobs[c]);
    }
    int wrong = 0;
    *server_errors = 0;
    for (int c = 0; c < clients; c++) {
        pthread_join(threads[c], NULL);
        if (jobs[c].wrong) printf("client %d: %s\n", c, jobs[c].first_wrong);
        wrong += jobs[c].wrong + (jobs[c].sent != requests);
        *server_errors += jobs[c].server_errors;
    }
    return wrong;
}

// Polls until the server's descriptors drop to `limit` (connections take a moment to close).
static int settle_fds(pid_t pid, int limit) {
    int fds = th_fd_count(pid);
    for (int i = 0; i < 100 && fds > limit; i++, th_sleep_ms(50)) fds = th_fd_count(pid);
    return fds;
}

static void test_concurrency(void) {
    // Under AddressSanitizer freed memory sits in a quarantine (256 MB by default) and looks
    // like growth; a small one keeps the resident-memory check meaningful there too.
    const char *asan = getenv("ASAN_OPTIONS");
    char *saved = asan ? strdup(asan) : NULL, options[1024];
    snprintf(options, sizeof options, "%s%squarantine_size_mb=4", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", options, 1);
    th_server s;
    bool up = th_server_start(&s, NULL);
    if (saved)
        setenv("ASAN_OPTIONS", saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(saved);
    if (!CHECK(up, "server starts (%s)", th_convd_bin())) return;
    int errors;
    CHECK(run_clients(s.port, 4, n_items, &errors) == 0 && errors == 0, "warm-up answers right");
    int fds0 = settle_fds(s.pid, 0);
    enum { CLIENTS = 16, REQUESTS = 25, ROUNDS = 3 };
    long rss[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        int wrong = run_clients(s.port, CLIENTS, REQUESTS, &errors);
        CHECK(wrong == 0 && errors == 0,
              "round %d: %d clients x %d mixed requests: %d wrong, %d 5xx or failed", round,
              CLIENTS, REQUESTS, wrong, errors);
        int fds = settle_fds(s.pid, fds0);
        CHECK(fds == fds0, "round %d: open descriptors back to %d (now %d)", round, fds0, fds);
        rss[round] = th_rss_kb(s.pid);
    }
    // Each round sends ~10 MB of bodies: a leak of any of them shows as steady growth. The
    // first round may still grow allocator arenas; later ones must not.
    long growth = rss[ROUNDS - 1] - rss[1];
    printf("server resident memory after each round: %ld, %ld, %ld kB\n", rss[0], rss[1], rss[2]);
    CHECK(growth < 4096, "resident memory steady across rounds: %ld -> %ld -> %ld kB", rss[0],
          rss[1], rss[2]);
    th_reply r;
    th_get(&r, s.port, "/metrics");
    CHECK(strstr(r.body, "\nconvd_inflight_requests 0\n") &&
              strstr(r.body, "\nconvd_inflight_memory_bytes 0\n") &&
              strstr(r.body, "\nconvd_queue_depth 0\n"),
          "nothing held after the clients are done");
    th_reply_free(&r);
    CHECK(th_server_stop(&s, 60) == 0, "server exits 0 (no leak under LSan)");
    remove(s.log_path);
}

// ---------------------------------------------------------------- overload and drain

// A forward request of ones: x (1,C,H,H), w (F,C,k,k), b = `bias` for every filter, no padding,
// so every y is exactly C*k*k + bias (in float32 as well).
static char *ones_request(int c, int h, int f, int k, const char *dtype, int bias) {
    size_t nx = (size_t)c * h * h, nw = (size_t)f * c * k * k;
    char *body = malloc(2 * (nx + nw) + 12 * (size_t)f + 256), *p = body;
    p += sprintf(p, "{\"dtype\":\"%s\",\"x\":{\"shape\":[1,%d,%d,%d],\"data\":[", dtype, c, h, h);
    for (size_t i = 0; i < nx; i++) *p++ = '1', *p++ = ',';
    p += sprintf(p - 1, "]},\"w\":{\"shape\":[%d,%d,%d,%d],\"data\":[", f, c, k, k) - 1;
    for (size_t i = 0; i < nw; i++) *p++ = '1', *p++ = ',';
    p += sprintf(p - 1, "]},\"b\":[") - 1;
    for (int i = 0; i < f; i++) p += sprintf(p, "%s%d", i ? "," : "", bias);
    sprintf(p, "]}");
    return body;
}

// Every y of the answer equals `value`.
static bool all_equal(const th_reply *r, double value) {
    cJSON *doc = cJSON_Parse(r->body);
    th_tensor y;
    bool ok = th_tensor_read(cJSON_GetObjectItemCaseSensitive(doc, "y"), &y) && y.n > 0;
    for (size_t i = 0; ok && i < y.n; i++) ok = y.data[i] == value;
    free(y.data);
    cJSON_Delete(doc);
    return ok;
}

typedef struct {
    int port;
    double y; // every y of the right answer
    const char *body;
    pthread_barrier_t *start;
    th_reply reply;
} slow_job;

static void *slow_main(void *arg) {
    slow_job *job = arg;
    if (job->start) pthread_barrier_wait(job->start);
    th_post(&job->reply, NULL, job->port, "/v1/conv2d/forward", job->body);
    return NULL;
}

enum { SLOW_C = 64, SLOW_H = 64, SLOW_F = 64, SLOW_K = 5 }; // ~0.1 s of work each
#define SLOW_Y (SLOW_C * SLOW_K * SLOW_K)

static void test_overload(void) {
    th_server s;
    const char *const args[] = {"--workers", "1", "--queue", "1", "--retry-after", "2", NULL};
    if (!CHECK(th_server_start(&s, args), "server with 1 worker, queue 1 starts")) return;
    enum { N = 8 };
    slow_job jobs[N];
    char *bodies[N];
    pthread_t threads[N];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        bodies[i] = ones_request(SLOW_C, SLOW_H, SLOW_F, SLOW_K, "float32", i);
        jobs[i] = (slow_job){.port = s.port, .y = SLOW_Y + i, .body = bodies[i], .start = &start};
        pthread_create(&threads[i], NULL, slow_main, &jobs[i]);
    }
    int ok = 0, refused = 0, other = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(threads[i], NULL);
        th_reply *r = &jobs[i].reply;
        char retry[16] = "", code[64];
        if (r->status == 200) {
            ok += CHECK(all_equal(r, SLOW_Y + i), "request %d answered with its own y", i);
        } else if (r->status == 503) {
            refused +=
                CHECK(th_header(r, "Retry-After", retry, sizeof retry) && strcmp(retry, "2") == 0 &&
                          strcmp(th_error_code(r, code, sizeof code), "overloaded") == 0,
                      "503 %d has Retry-After: 2 and code overloaded (%s, %s)", i, retry, r->body);
        } else {
            other++;
        }
    }
    CHECK(ok >= 1 && refused >= 1 && other == 0 && ok + refused == N,
          "%d at once on 1 worker + 1 queued: %d answered, %d refused with 503, %d other", N, ok,
          refused, other);
    // Retrying the refused ones gets each its own answer: nothing was lost.
    int retried = 0;
    for (int i = 0; i < N; i++) {
        for (int attempt = 0; jobs[i].reply.status != 200 && attempt < 20; attempt++) {
            th_reply_free(&jobs[i].reply);
            th_post(&jobs[i].reply, NULL, s.port, "/v1/conv2d/forward", bodies[i]);
            retried++;
        }
        CHECK(jobs[i].reply.status == 200 && all_equal(&jobs[i].reply, SLOW_Y + i),
              "request %d answered right after %d retries", i, retried);
        th_reply_free(&jobs[i].reply);
        free(bodies[i]);
    }
    pthread_barrier_destroy(&start);
    CHECK(th_server_stop(&s, 60) == 0, "overloaded server exits 0");
    remove(s.log_path);
}

// A request that alone needs more than the whole memory budget can never run: 413, not 503.
static void test_memory_budget(void) {
    th_server s;
    const char *const args[] = {"--max-memory", "4M", NULL};
    if (!CHECK(th_server_start(&s, args), "server with a 4 MiB budget starts")) return;
    char *body = ones_request(SLOW_C, SLOW_H, SLOW_F, SLOW_K, "float32", 0);
    th_reply r;
    char code[64];
    th_post(&r, NULL, s.port, "/v1/conv2d/forward", body);
    CHECK(r.status == 413 && strcmp(th_error_code(&r, code, sizeof code), "body_too_large") == 0 &&
              strstr(r.body, "--max-memory"),
          "over the whole budget: %ld %.300s", r.status, r.body);
    th_reply_free(&r);
    free(body);
    CHECK(th_server_stop(&s, 60) == 0, "budget server exits 0");
    remove(s.log_path);
}

// Reads a gauge from /metrics; -1 when absent.
static double gauge(int port, const char *name) {
    th_reply r;
    th_get(&r, port, "/metrics");
    char key[96];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = strstr(r.body, key);
    double v = at ? atof(at + strlen(key)) : -1;
    th_reply_free(&r);
    return v;
}

// Starts N slow requests on a 1-worker server and waits until all are admitted. The first is
// four times as heavy (~0.8 s under ASan) and admitted alone before the others are sent: the
// rest are admitted while it computes, however slow the machine, not in a race with it.
static bool start_slow(const th_server *s, slow_job *jobs, pthread_t *threads, char **bodies,
                       int n) {
    for (int i = 0; i < n; i++) {
        int c = i == 0 ? 4 * SLOW_C : SLOW_C;
        bodies[i] = ones_request(c, SLOW_H, SLOW_F, SLOW_K, "float64", 10 + i);
        jobs[i] = (slow_job){.port = s->port, .y = c * SLOW_K * SLOW_K + 10 + i, .body = bodies[i]};
    }
    double deadline = th_now() + 30;
    pthread_create(&threads[0], NULL, slow_main, &jobs[0]);
    while (gauge(s->port, "convd_inflight_requests") < 1 && th_now() < deadline) th_sleep_ms(2);
    for (int i = 1; i < n; i++) pthread_create(&threads[i], NULL, slow_main, &jobs[i]);
    while (gauge(s->port, "convd_inflight_requests") < n && th_now() < deadline) th_sleep_ms(2);
    return th_now() < deadline;
}

// Clients that leave while their requests wait or compute: the work finishes unseen, and
// everything the requests held is given back.
static void test_clients_leaving(void) {
    th_server s;
    const char *const args[] = {"--workers", "1", NULL};
    if (!CHECK(th_server_start(&s, args), "server for leaving clients starts")) return;
    char *body = ones_request(SLOW_C, SLOW_H, SLOW_F, SLOW_K, "float32", 0);
    char head[256];
    snprintf(head, sizeof head,
             "POST /v1/conv2d/forward HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n",
             strlen(body));
    // The clients leave once their requests are admitted (waiting or computing): a client that
    // hangs up before its body is all read has sent no request, which is another test's case.
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = th_connect(s.port);
        net_send_all(fds[i], head, strlen(head));
        net_send_all(fds[i], body, strlen(body));
    }
    for (double deadline = th_now() + 60;
         gauge(s.port, "convd_inflight_requests") < 3 && th_now() < deadline;)
        th_sleep_ms(2);
    for (int i = 0; i < 3; i++) close(fds[i]);
    // Each request is counted once libmicrohttpd is done with it (its answer undeliverable).
    const char done[] =
        "\nconvd_http_requests_total{route=\"/v1/conv2d/forward\",code=\"200\"} 3\n";
    bool finished = false;
    char last[4096] = "";
    for (double deadline = th_now() + 60; !finished && th_now() < deadline; th_sleep_ms(20)) {
        th_reply r;
        th_get(&r, s.port, "/metrics");
        finished = strstr(r.body, done) != NULL;
        const char *at = strstr(r.body, "convd_http_requests_total");
        snprintf(last, sizeof last, "%.600s", at ? at : r.body);
        th_reply_free(&r);
    }
    CHECK(finished, "the 3 requests of clients that left were computed: %s", last);
    CHECK(gauge(s.port, "convd_inflight_requests") == 0 &&
              gauge(s.port, "convd_inflight_memory_bytes") == 0 &&
              gauge(s.port, "convd_queue_depth") == 0,
          "nothing held once the clients that left are done with");
    CHECK(th_server_stop(&s, 60) == 0, "server exits 0 (no leak under LSan)");
    free(body);
    remove(s.log_path);
}

// A server with one worker draining (SIGTERM) with DRAIN_N slow requests in flight.
enum { DRAIN_N = 3 };
typedef struct {
    th_server s;
    slow_job jobs[DRAIN_N];
    pthread_t threads[DRAIN_N];
    char *bodies[DRAIN_N];
} draining_server;

// Starts it with --drain-timeout `timeout` (seconds, as text), the requests, then SIGTERM.
// False when the server did not start (`what` names it in the failed check).
static bool drain_start(draining_server *d, const char *timeout, const char *what) {
    const char *const args[] = {"--workers", "1", "--drain-timeout", timeout, NULL};
    if (!CHECK(th_server_start(&d->s, args), "%s starts", what)) return false;
    CHECK(start_slow(&d->s, d->jobs, d->threads, d->bodies, DRAIN_N),
          "%d slow requests in flight", DRAIN_N);
    kill(d->s.pid, SIGTERM);
    return true;
}

static void test_drain(void) {
    draining_server d;
    if (!drain_start(&d, "60", "server for the drain")) return;
    th_reply r;
    char code[64], connection[32] = "";
    bool draining = false;
    for (int i = 0; i < 500 && !draining; i++) {
        th_get(&r, d.s.port, "/readyz");
        draining = r.status == 503;
        th_reply_free(&r);
    }
    CHECK(draining, "/readyz turns 503 on SIGTERM");
    CHECK(gauge(d.s.port, "convd_inflight_requests") > 0, "requests still in flight while "
                                                        "draining (the test saw the drain)");
    th_post(&r, NULL, d.s.port, "/v1/conv2d/forward", "{\"x\": [[1]], \"w\": [[1]]}");
    CHECK(r.status == 503 && strcmp(th_error_code(&r, code, sizeof code), "overloaded") == 0 &&
              th_header(&r, "Connection", connection, sizeof connection) &&
              strcmp(connection, "close") == 0,
          "new work while draining: 503, Connection: close: %ld %s %s", r.status, connection,
          r.body);
    th_reply_free(&r);
    for (int i = 0; i < DRAIN_N; i++) {
        pthread_join(d.threads[i], NULL);
        CHECK(d.jobs[i].reply.status == 200 && all_equal(&d.jobs[i].reply, d.jobs[i].y),
              "in-flight request %d completes right during the drain (%ld)", i,
              d.jobs[i].reply.status);
        th_reply_free(&d.jobs[i].reply);
        free(d.bodies[i]);
    }
    int status = th_server_wait(&d.s, 60);
    CHECK(status == 0, "drained server exits 0 (%d)", status);
    char *log = th_server_log(&d.s);
    CHECK(strstr(log, "\"event\":\"draining\"") && strstr(log, "\"message\":\"drained\""),
          "the log tells the drain");
    free(log);
    remove(d.s.log_path);
}

// A drain that runs out of time: requests still waiting for the worker get 503, the one
// computing finishes, and the server still exits 0.
static void test_drain_timeout(void) {
    draining_server d;
    if (!drain_start(&d, "0.05", "server with a short drain")) return;
    int ok = 0, refused = 0;
    for (int i = 0; i < DRAIN_N; i++) {
        pthread_join(d.threads[i], NULL);
        ok += d.jobs[i].reply.status == 200 && all_equal(&d.jobs[i].reply, d.jobs[i].y);
        refused += d.jobs[i].reply.status == 503;
        th_reply_free(&d.jobs[i].reply);
        free(d.bodies[i]);
    }
    CHECK(ok >= 1 && refused >= 1 && ok + refused == DRAIN_N,
          "drain timeout: %d finished right, %d refused (503), none lost", ok, refused);
    int status = th_server_wait(&d.s, 60);
    CHECK(status == 0, "server exits 0 after a cut-short drain (%d)", status);
    remove(d.s.log_path);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    load_items();
    CHECK(n_items >= 20, "request set: %d items", n_items);
    test_concurrency();
    test_overload();
    test_memory_budget();
    test_clients_leaving();
    test_drain();
    test_drain_timeout();
    for (int i = 0; i < n_items; i++) {
        free(items[i].body);
        cJSON_Delete(items[i].expected);
    }
    curl_global_cleanup();
    return t_finish("test_http_load");
}
