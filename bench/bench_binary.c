// bench_binary: what binary tensors save end to end. A layer (b) backward request (dx and dw,
// float32) sent to a convd process over HTTP as safetensors and as JSON: timed over HTTP alone
// (first byte sent to last received) and end to end (plus the client making the body from its
// arrays and reading the answer back into numbers), against the compute time the server reports
// for the same request (meta elapsed_ms: the passes alone), the passes run in-process, and the
// CPU time the server spent (wall time on a shared machine is partly other people's turns).
// Targets (issue 5), end to end: safetensors <= 1.25x compute; JSON >= 5x safetensors.
//
// Writes build/bench-binary.json and a table on stdout. BENCH_WARMUP / BENCH_REPEATS as for the
// other benchmarks; CONVD_BIN names the server (default build/convd).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_buf.h"
#include "api/api_exec.h"
#include "api/codec/codec_json.h"
#include "api/codec/codec_json_parse.h"
#include "api/api_validate.h"
#include "bench/benchlib.h"
#include "server/blas_boot.h"

// ---------------------------------------------------------------- the server process

typedef struct {
    pid_t pid;
    int port;
} server;

static bool server_start(server *s) {
    const char *bin = getenv("CONVD_BIN") && *getenv("CONVD_BIN") ? getenv("CONVD_BIN")
                                                                   : "build/convd";
    int out[2];
    if (pipe(out) != 0) return false;
    fflush(NULL);
    s->pid = fork();
    if (s->pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 2);
        execl(bin, bin, "serve", "--host", "127.0.0.1", "--port", "0", "--max-body", "268435456",
              (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[256];
    size_t n = 0;
    while (n < sizeof line - 1) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 30000) <= 0 || read(out[0], line + n, 1) != 1) break;
        if (line[n++] == '\n') break;
    }
    line[n] = '\0';
    close(out[0]);
    const char *colon = strrchr(line, ':');
    s->port = colon ? atoi(colon + 1) : 0;
    return s->port > 0;
}

// CPU time (user + system, all threads, exited ones included) of process `pid` so far, in ms;
// clock ticks of 10 ms, so meaningful summed over repeats. Wall time on a shared machine is
// mostly other people's turns; CPU time says what the request itself cost.
static double process_cpu_ms(pid_t pid) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = '\0';
    const char *p = strrchr(text, ')'); // the command name may hold spaces
    unsigned long utime = 0, stime = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                     &stime) != 2)
        return -1;
    return (double)(utime + stime) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

// Only the PID this program started is signalled.
static void server_stop(server *s) {
    if (s->pid <= 0) return;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}

// ---------------------------------------------------------------- one exchange

typedef struct {
    int status;
    char *data; // the whole response, headers included: the caller's buffer of `cap` bytes
    size_t len, cap;
    const char *body; // into data
    size_t body_len;
} reply;

static bool send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

// POSTs `body` on a new connection and reads the answer until the server closes it, into
// r->data (r->cap bytes, allocated and touched once by the caller: the client's own page faults
// and copies are not the server's cost).
static bool exchange(reply *r, int port, const char *path, const char *type, const char *body,
                     size_t len) {
    r->len = 0;
    r->status = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return false;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: %s\r\nContent-Length: %zu"
                     "\r\nConnection: close\r\n\r\n",
                     path, type, len);
    bool ok = send_all(fd, head, (size_t)n) && send_all(fd, body, len);
    while (ok && r->len < r->cap - 1) {
        ssize_t k = recv(fd, r->data + r->len, r->cap - 1 - r->len, 0);
        if (k <= 0) break;
        r->len += (size_t)k;
    }
    close(fd);
    r->data[r->len] = '\0';
    const char *end = strstr(r->data, "\r\n\r\n");
    r->status = strncmp(r->data, "HTTP/1.", 7) == 0 ? atoi(r->data + 9) : 0;
    r->body = end ? end + 4 : r->data + r->len;
    r->body_len = (size_t)(r->data + r->len - r->body);
    return ok && end;
}

// The server's compute time in an answer: meta.elapsed_ms (JSON) or __metadata__'s (binary).
static double reported_ms(const reply *r, bool binary) {
    const char *key = binary ? "\"elapsed_ms\":\"" : "\"elapsed_ms\":";
    const char *at = NULL;
    if (binary) {
        at = strstr(r->body + 8, key); // in the header, before any tensor byte
    } else {
        // meta ends the JSON answer: search only its tail.
        size_t tail = r->body_len < 4096 ? r->body_len : 4096;
        at = strstr(r->body + r->body_len - tail, key);
    }
    return at ? atof(at + strlen(key)) : -1;
}

// ---------------------------------------------------------------- request bodies

typedef struct {
    const bench_layer *layer;
    float *x, *w, *dy;
    int64_t nx, nw, ny;
} problem;

static void put_tensor_json(api_buf *b, const char *name, const float *data, int64_t n,
                            const int64_t *shape) {
    api_buf_printf(b, "\"%s\":{\"shape\":[%lld,%lld,%lld,%lld],\"data\":", name,
                   (long long)shape[0], (long long)shape[1], (long long)shape[2],
                   (long long)shape[3]);
    codec_json_put_numbers(b, data, n, CONV_FLOAT32);
    api_buf_puts(b, "}");
}

// The v1 JSON body, numbers as short as float32 allows (JSON's best case).
static char *json_body(const problem *p, size_t *len) {
    const bench_layer *l = p->layer;
    int64_t xs[4] = {l->n, l->c, l->h, l->w}, ws[4] = {l->f, l->c, l->kh, l->kw};
    int64_t ys[4] = {l->n, l->f, bench_layer_ho(l), bench_layer_wo(l)};
    api_buf b = {0};
    api_buf_printf(&b, "{\"dtype\":\"float32\",\"padding\":%lld,\"stride\":%lld,",
                   (long long)l->pad, (long long)l->stride);
    put_tensor_json(&b, "x", p->x, p->nx, xs);
    api_buf_puts(&b, ",");
    put_tensor_json(&b, "w", p->w, p->nw, ws);
    api_buf_puts(&b, ",");
    put_tensor_json(&b, "dy", p->dy, p->ny, ys);
    api_buf_puts(&b, "}");
    return api_buf_take(&b, len);
}

// The safetensors body, as a client writes it: header padded to 8 bytes, then the arrays.
static char *safetensors_body(const problem *p, size_t *len) {
    const bench_layer *l = p->layer;
    api_buf b = {0};
    api_buf_put(&b, "\0\0\0\0\0\0\0\0", 8);
    size_t bx = (size_t)p->nx * 4, bw = (size_t)p->nw * 4, by = (size_t)p->ny * 4;
    api_buf_printf(&b,
                   "{\"__metadata__\":{\"padding\":\"%lld\",\"stride\":\"%lld\"},"
                   "\"x\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld,%lld,%lld],\"data_offsets\":[0,%zu]},"
                   "\"w\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld,%lld,%lld],\"data_offsets\":[%zu,%zu]},"
                   "\"dy\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld,%lld,%lld],\"data_offsets\":[%zu,%zu]}}",
                   (long long)l->pad, (long long)l->stride, (long long)l->n, (long long)l->c,
                   (long long)l->h, (long long)l->w, bx, (long long)l->f, (long long)l->c,
                   (long long)l->kh, (long long)l->kw, bx, bx + bw, (long long)l->n,
                   (long long)l->f, (long long)bench_layer_ho(l), (long long)bench_layer_wo(l),
                   bx + bw, bx + bw + by);
    while (b.len % 8) api_buf_put(&b, " ", 1);
    uint64_t n = b.len - 8;
    if (!b.failed) memcpy(b.data, &n, 8);
    api_buf_put(&b, (const char *)p->x, bx);
    api_buf_put(&b, (const char *)p->w, bw);
    api_buf_put(&b, (const char *)p->dy, by);
    return api_buf_take(&b, len);
}

// What a client does with the answer before it has tensors again: safetensors, read the header
// and point at the data; JSON, parse every number. Returns false when the answer does not hold
// dx and dw.
static bool client_decode(const reply *r, bool binary) {
    if (binary) {
        uint64_t n;
        memcpy(&n, r->body, 8);
        cJSON *header = n <= r->body_len - 8 ? cJSON_ParseWithLength(r->body + 8, n) : NULL;
        bool ok = cJSON_GetObjectItemCaseSensitive(header, "dx") &&
                  cJSON_GetObjectItemCaseSensitive(header, "dw");
        cJSON_Delete(header);
        return ok;
    }
    codec_json_doc doc;
    if (!codec_json_parse(&doc, r->body, r->body_len, NULL)) return false;
    bool ok = cJSON_GetObjectItemCaseSensitive(doc.root, "dx") &&
              cJSON_GetObjectItemCaseSensitive(doc.root, "dw");
    codec_json_doc_free(&doc);
    return ok;
}

// ---------------------------------------------------------------- in-process compute

typedef struct {
    const problem *p;
    int threads;
} inproc;

// The two passes the server runs, through the same request model, without any I/O.
static void run_inproc(void *arg, double *part_ms) {
    const inproc *c = arg;
    const bench_layer *l = c->p->layer;
    api_request req;
    api_request_init(&req);
    int64_t xs[4] = {l->n, l->c, l->h, l->w}, ws[4] = {l->f, l->c, l->kh, l->kw};
    int64_t ys[4] = {l->n, l->f, bench_layer_ho(l), bench_layer_wo(l)};
    api_tensor_set_shape(&req.in[API_IN_X], xs, 4, "x", NULL);
    api_tensor_set_shape(&req.in[API_IN_W], ws, 4, "w", NULL);
    api_tensor_set_shape(&req.in[API_IN_DY], ys, 4, "dy", NULL);
    req.in[API_IN_X].data = c->p->x;
    req.in[API_IN_W].data = c->p->w;
    req.in[API_IN_DY].data = c->p->dy;
    for (int s = 0; s < 4; s++) req.padding[s] = l->pad;
    req.stride[0] = req.stride[1] = l->stride;
    api_options opt;
    api_options_default(&opt);
    opt.threads = c->threads;
    api_plan plan;
    api_result res = {0};
    if (!api_validate(&plan, &req, "conv2d.backward", &opt, NULL) ||
        !api_execute(&res, &req, &plan, &opt, NULL)) {
        fprintf(stderr, "bench_binary: the in-process request failed\n");
        exit(1);
    }
    part_ms[0] = res.elapsed_ms;
    api_result_free(&res);
}

// ---------------------------------------------------------------- main

typedef struct {
    const char *name, *type;
    char *body;
    size_t len;
    double total[64], compute[64];
    double client[64];    // building the body and reading the answer back into numbers
    double server_cpu_ms; // summed over the repeats
    size_t answer_len;
} format;

int main(int argc, char **argv) {
    blas_boot(argv);
    const bench_layer *l = NULL;
    for (int i = 0; i < bench_layer_count; i++)
        if (strcmp(bench_layers[i].name, "b") == 0) l = &bench_layers[i];
    if (!l) return 1;
    problem p = {.layer = l};
    p.nx = l->n * l->c * l->h * l->w;
    p.nw = l->f * l->c * l->kh * l->kw;
    p.ny = l->n * l->f * bench_layer_ho(l) * bench_layer_wo(l);
    p.x = bench_alloc((size_t)p.nx * 4);
    p.w = bench_alloc((size_t)p.nw * 4);
    p.dy = bench_alloc((size_t)p.ny * 4);
    bench_fill(p.x, p.nx, 1);
    bench_fill(p.w, p.nw, 2);
    bench_fill(p.dy, p.ny, 3);
    bench_plan plan = bench_plan_from_env();
    if (plan.repeats > 64) plan.repeats = 64;

    format formats[2] = {{.name = "safetensors", .type = "application/octet-stream"},
                         {.name = "json", .type = "application/json"}};
    server s = {0};
    if (!server_start(&s)) {
        fprintf(stderr, "bench_binary: cannot start the server\n");
        server_stop(&s);
        return 1;
    }
    reply rep = {.cap = (size_t)256 << 20};
    rep.data = bench_alloc(rep.cap); // zeroed: touched once, here
    // Interleaved, so that load from elsewhere on the machine hits both formats alike.
    for (int r = -plan.warmup; r < plan.repeats; r++)
        for (int f = 0; f < 2; f++) {
            // The client's side: the body from its arrays, each time.
            double encode_start = bench_now_ms();
            free(formats[f].body);
            formats[f].body = f == 0 ? safetensors_body(&p, &formats[f].len)
                                     : json_body(&p, &formats[f].len);
            double encode_ms = bench_now_ms() - encode_start;
            double cpu = process_cpu_ms(s.pid), start = bench_now_ms();
            bool ok = formats[f].body && exchange(&rep, s.port, "/v1/conv2d/backward",
                                                  formats[f].type, formats[f].body,
                                                  formats[f].len);
            double ms = bench_now_ms() - start;
            if (r >= 0) formats[f].server_cpu_ms += process_cpu_ms(s.pid) - cpu;
            double decode_start = bench_now_ms();
            ok = ok && rep.status == 200 && client_decode(&rep, f == 0);
            if (r >= 0) formats[f].client[r] = encode_ms + bench_now_ms() - decode_start;
            if (!ok) {
                fprintf(stderr, "bench_binary: %s request failed: %d %.300s\n", formats[f].name,
                        rep.status, rep.body ? rep.body : "");
                server_stop(&s);
                return 1;
            }
            if (r >= 0) {
                formats[f].total[r] = ms;
                formats[f].compute[r] = reported_ms(&rep, f == 0);
                formats[f].answer_len = rep.body_len;
            }
        }
    free(rep.data);
    server_stop(&s);
    int threads = 2; // the server's per-request threads on 2 cores with one request in flight
    inproc ctx = {&p, threads};
    double inproc_ms[64];
    struct timespec cpu0, cpu1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
    bench_measure(inproc_ms, run_inproc, &ctx, 1, &plan);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
    // CPU per in-process compute (the warm-up runs count too: they do the same work).
    double inproc_cpu = ((double)(cpu1.tv_sec - cpu0.tv_sec) * 1e3 +
                         (double)(cpu1.tv_nsec - cpu0.tv_nsec) * 1e-6) /
                        (plan.warmup + plan.repeats);

    double med_total[2], med_compute[2], med_e2e[2];
    for (int f = 0; f < 2; f++) {
        double e2e[64];
        for (int r = 0; r < plan.repeats; r++) e2e[r] = formats[f].total[r] + formats[f].client[r];
        med_e2e[f] = bench_median(e2e, plan.repeats);
        med_total[f] = bench_median(formats[f].total, plan.repeats);
        med_compute[f] = bench_median(formats[f].compute, plan.repeats);
    }
    double med_inproc = bench_median(inproc_ms, plan.repeats);
    // The targets are judged end to end: from the client's arrays to its arrays again.
    double overhead = med_e2e[0] / med_compute[0], speedup = med_e2e[1] / med_e2e[0];
    printf("layer (b) backward (dx, dw), float32, over HTTP on loopback, median of %d:\n",
           plan.repeats);
    printf("  %-12s %10s %10s %12s %12s %12s\n", "format", "request MB", "answer MB",
           "HTTP ms", "end to end", "server compute");
    for (int f = 0; f < 2; f++)
        printf("  %-12s %10.1f %10.1f %12.1f %12.1f %12.1f\n", formats[f].name,
               formats[f].len / 1e6, formats[f].answer_len / 1e6, med_total[f], med_e2e[f],
               med_compute[f]);
    printf("  (HTTP: first byte sent to last received; end to end adds the client making the "
           "body from its arrays and reading the answer back into numbers)\n");
    double cpu[2] = {formats[0].server_cpu_ms / plan.repeats,
                     formats[1].server_cpu_ms / plan.repeats};
    printf("  in-process compute (%d threads): %.1f ms, %.1f ms of CPU\n", threads, med_inproc,
           inproc_cpu);
    printf("  server CPU per request: safetensors %.1f ms, JSON %.1f ms\n", cpu[0], cpu[1]);
    printf("  safetensors end to end / its compute: %.2fx (target <= 1.25x); HTTP alone %.2fx; "
           "server CPU / compute CPU %.2fx\n",
           overhead, med_total[0] / med_compute[0], cpu[0] / inproc_cpu);
    printf("  JSON end to end / safetensors end to end: %.1fx (target >= 5x); HTTP alone %.1fx; "
           "server CPU %.1fx\n",
           speedup, med_total[1] / med_total[0], cpu[1] / cpu[0]);

    FILE *out = fopen("build/bench-binary.json", "w");
    if (out) {
        fprintf(out,
                "{\"kind\":\"binary\",\"layer\":\"b\",\"pass\":\"backward\",\"repeats\":%d,"
                "\"safetensors\":{\"request_bytes\":%zu,\"answer_bytes\":%zu,\"http_ms\":%.3f,"
                "\"end_to_end_ms\":%.3f,\"compute_ms\":%.3f},\"json\":{\"request_bytes\":%zu,"
                "\"answer_bytes\":%zu,\"http_ms\":%.3f,\"end_to_end_ms\":%.3f,"
                "\"compute_ms\":%.3f},\"inprocess_compute_ms\":%.3f,"
                "\"threads\":%d,\"overhead_ratio\":%.3f,\"overhead_target\":1.25,"
                "\"json_over_binary\":%.3f,\"json_over_binary_target\":5,"
                "\"server_cpu_ms\":{\"safetensors\":%.3f,\"json\":%.3f},"
                "\"inprocess_compute_cpu_ms\":%.3f}\n",
                plan.repeats, formats[0].len, formats[0].answer_len, med_total[0], med_e2e[0],
                med_compute[0], formats[1].len, formats[1].answer_len, med_total[1], med_e2e[1],
                med_compute[1], med_inproc, threads, overhead, speedup, cpu[0], cpu[1],
                inproc_cpu);
        fclose(out);
    }
    free(formats[0].body);
    free(formats[1].body);
    free(p.x);
    free(p.w);
    free(p.dy);
    return 0;
}
