#include "tests/harness/http_harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double th_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void th_sleep_ms(int ms) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

const char *th_convd_bin(void) {
    const char *bin = getenv("CONVD_BIN");
    return bin && *bin ? bin : "build/convd";
}

bool th_server_start(th_server *s, const char *const *args) {
    static int serial;
    memset(s, 0, sizeof *s);
    snprintf(s->log_path, sizeof s->log_path, "/tmp/convd-test-%d-%d.log", (int)getpid(), serial++);
    const char *argv[64] = {th_convd_bin(), "serve", "--host", "127.0.0.1", "--port", "0"};
    int argc = 6;
    for (int i = 0; args && args[i] && argc < 63; i++) argv[argc++] = args[i];
    argv[argc] = NULL;
    int out[2];
    if (pipe(out) != 0) return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        int log = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(out[1], 1);
        if (log >= 0) dup2(log, 2);
        close(out[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    s->pid = pid;
    char line[512];
    size_t n = 0;
    double deadline = th_now() + 60;
    while (n < sizeof line - 1 && th_now() < deadline) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        ssize_t got = read(out[0], line + n, 1);
        if (got <= 0) break;
        if (line[n++] == '\n') break;
    }
    line[n] = '\0';
    close(out[0]);
    const char *colon = strrchr(line, ':');
    s->port = colon && strstr(line, "listening on http://") ? atoi(colon + 1) : 0;
    if (s->port > 0) return true;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return false;
}

int th_server_wait(th_server *s, double seconds) {
    double deadline = th_now() + seconds;
    for (;;) {
        int status;
        pid_t got = waitpid(s->pid, &status, WNOHANG);
        if (got == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        if (got < 0 || th_now() > deadline) return -1;
        th_sleep_ms(10);
    }
}

int th_server_stop(th_server *s, double seconds) {
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int status = th_server_wait(s, seconds);
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    return status;
}

char *th_server_log(const th_server *s) {
    char *text = t_read_file(s->log_path, NULL);
    return text ? text : calloc(1, 1);
}

long th_rss_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

int th_fd_count(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

size_t th_collect_body(char *data, size_t size, size_t n, void *arg) {
    th_reply *r = arg;
    if (r->len + size * n + 1 > r->cap) { // doubling: big answers come in many pieces
        size_t cap = 2 * (r->len + size * n + 1);
        char *grown = realloc(r->body, cap);
        if (!grown) return 0;
        r->body = grown;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, size * n);
    r->len += size * n;
    r->body[r->len] = '\0';
    return size * n;
}

size_t th_collect_header(char *data, size_t size, size_t n, void *arg) {
    th_reply *r = arg;
    if (strncmp(data, "HTTP/", 5) == 0) r->headers_len = 0; // a 100 Continue came first
    size_t room = sizeof r->headers - 1 - r->headers_len, take = size * n < room ? size * n : room;
    memcpy(r->headers + r->headers_len, data, take);
    r->headers_len += take;
    r->headers[r->headers_len] = '\0';
    return size * n;
}

const char *th_header(const th_reply *r, const char *name, char *buf, size_t cap) {
    size_t n = strlen(name);
    for (const char *line = r->headers; *line; line += strcspn(line, "\n"), line += *line != 0) {
        if (strncasecmp(line, name, n) != 0 || line[n] != ':') continue;
        const char *v = line + n + 1;
        while (*v == ' ') v++;
        size_t len = strcspn(v, "\r\n");
        snprintf(buf, cap, "%.*s", (int)(len < cap ? len : cap - 1), v);
        return buf;
    }
    return NULL;
}

void th_reply_free(th_reply *r) {
    free(r->body);
    r->body = NULL;
}

bool th_http(th_reply *r, CURL *curl, int port, const char *method, const char *path,
             const char *content_type, const char *body, size_t len,
             const char *const *extra) {
    memset(r, 0, sizeof *r);
    r->body = calloc(1, 1);
    r->cap = 1;
    CURL *c = curl ? curl : curl_easy_init();
    if (!c || !r->body) return false;
    char url[512], type[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *headers = NULL;
    snprintf(type, sizeof type, "Content-Type:%s%s", content_type ? " " : "",
             content_type ? content_type : "");
    if (body) headers = curl_slist_append(headers, type);
    headers = curl_slist_append(headers, "Expect:"); // no 100-continue unless a test asks
    for (int i = 0; extra && extra[i]; i++) headers = curl_slist_append(headers, extra[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_collect_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, th_collect_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L); // after HTTPGET
    curl_easy_setopt(
        c, CURLOPT_CUSTOMREQUEST,
        strcmp(method, body ? "POST" : "GET") == 0 || strcmp(method, "HEAD") == 0 ? NULL : method);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    if (!curl) curl_easy_cleanup(c);
    return rc == CURLE_OK;
}

bool th_get(th_reply *r, int port, const char *path) {
    return th_http(r, NULL, port, "GET", path, NULL, NULL, 0, NULL);
}

bool th_post(th_reply *r, CURL *curl, int port, const char *path, const char *json) {
    return th_http(r, curl, port, "POST", path, "application/json", json, strlen(json), NULL);
}

const char *th_error_code(const th_reply *r, char *buf, size_t cap) {
    cJSON *doc = cJSON_Parse(r->body);
    const cJSON *code =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "error"), "code");
    snprintf(buf, cap, "%s", cJSON_IsString(code) ? code->valuestring : "");
    cJSON_Delete(doc);
    return buf;
}

int th_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
    if (fd >= 0) close(fd);
    return -1;
}

// Waits until `deadline` for bytes on fd and appends them to buf[*n..cap-1), NUL-terminated.
// 1 when bytes came, 0 when the deadline passed, -1 when the peer closed (EOF or reset).
static int read_some(int fd, char *buf, size_t cap, size_t *n, double deadline) {
    int left = (int)((deadline - th_now()) * 1000);
    struct pollfd p = {fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, left) <= 0) return 0;
    ssize_t got = recv(fd, buf + *n, cap - 1 - *n, 0);
    if (got <= 0) return -1;
    *n += (size_t)got;
    buf[*n] = '\0';
    return 1;
}

size_t th_read(int fd, char *buf, size_t cap, int timeout_ms, const char *stop, bool *closed) {
    size_t n = 0;
    *closed = false;
    double deadline = th_now() + timeout_ms / 1000.0;
    buf[0] = '\0';
    while (n < cap - 1) {
        int got = read_some(fd, buf, cap, &n, deadline);
        *closed = got < 0;
        if (got <= 0 || (stop && strstr(buf, stop))) break;
    }
    return n;
}

int th_read_response(int fd, char *buf, size_t cap, int timeout_ms, bool head, bool *closed) {
    size_t n = 0;
    *closed = false;
    double deadline = th_now() + timeout_ms / 1000.0;
    buf[0] = '\0';
    while (n < cap - 1) {
        const char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            const char *length = strcasestr(buf, "\r\nContent-Length:");
            size_t want =
                (size_t)(end + 4 - buf) + (length && length < end && !head ? atol(length + 17) : 0);
            if (n >= want) break;
        }
        int got = read_some(fd, buf, cap, &n, deadline);
        *closed = got < 0;
        if (got <= 0) break;
    }
    return strncmp(buf, "HTTP/1.", 7) == 0 ? atoi(buf + 9) : 0;
}

static bool th_flatten(const cJSON *v, th_tensor *t, int depth) {
    if (cJSON_IsNumber(v)) {
        if ((t->n & (t->n - 1)) == 0) { // at 0, 1, 2, 4...: double the room
            double *grown = realloc(t->data, (t->n ? 2 * t->n : 1) * sizeof *grown);
            if (!grown) return false;
            t->data = grown;
        }
        t->data[t->n++] = v->valuedouble;
        return true;
    }
    if (!cJSON_IsArray(v) || depth >= 8) return false;
    long long count = cJSON_GetArraySize(v);
    if (depth >= t->rank) {
        t->rank = depth + 1;
        t->shape[depth] = count;
    } else if (t->shape[depth] != count) {
        return false; // ragged
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, v) if (!th_flatten(item, t, depth + 1)) return false;
    return true;
}

bool th_tensor_read(const cJSON *v, th_tensor *t) {
    memset(t, 0, sizeof *t);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(v, "shape");
    if (!cJSON_IsObject(v)) return th_flatten(v, t, 0);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(v, "data"), *d;
    if (!cJSON_IsArray(shape) || !cJSON_IsArray(data)) return false;
    cJSON_ArrayForEach(d, shape) {
        if (t->rank >= 8) return false;
        t->shape[t->rank++] = (long long)d->valuedouble;
    }
    th_tensor flat = {0};
    if (!th_flatten(data, &flat, 0) || flat.rank != 1) {
        free(flat.data);
        return false;
    }
    t->data = flat.data;
    t->n = flat.n;
    return true;
}

bool th_tensor_close(const cJSON *got, const cJSON *want, double tol, char *why, size_t cap) {
    th_tensor g, w;
    bool ok = th_tensor_read(got, &g) && th_tensor_read(want, &w);
    if (!ok) {
        snprintf(why, cap, "not a tensor");
    } else if (g.rank != w.rank || memcmp(g.shape, w.shape, sizeof g.shape) != 0 || g.n != w.n) {
        ok = false;
        snprintf(why, cap, "shape differs (rank %d vs %d, %zu vs %zu elements)", g.rank, w.rank,
                 g.n, w.n);
    } else {
        double scale = 0, worst = 0;
        for (size_t i = 0; i < w.n; i++) scale = fmax(scale, fabs(w.data[i]));
        for (size_t i = 0; i < w.n; i++) worst = fmax(worst, fabs(g.data[i] - w.data[i]));
        ok = worst <= tol * fmax(scale, 1e-300);
        snprintf(why, cap, "max error %.3g, largest value %.3g", worst, scale);
    }
    free(g.data);
    free(w.data);
    return ok;
}

// The nested-array form of a {"shape","data"} tensor (a new cJSON tree; NULL if malformed).
static cJSON *th_nest(const double *data, const long long *shape, int rank) {
    if (rank == 0) return cJSON_CreateNumber(*data);
    cJSON *list = cJSON_CreateArray();
    size_t stride = 1;
    for (int i = 1; i < rank; i++) stride *= (size_t)shape[i];
    for (long long i = 0; i < shape[0]; i++)
        cJSON_AddItemToArray(list, th_nest(data + (size_t)i * stride, shape + 1, rank - 1));
    return list;
}

cJSON *th_nested(const cJSON *tensor) {
    th_tensor t;
    if (!th_tensor_read(tensor, &t)) {
        free(t.data);
        return NULL;
    }
    cJSON *nested = th_nest(t.data, t.shape, t.rank);
    free(t.data);
    return nested;
}

double th_tolerance(const cJSON *request) {
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(request, "dtype");
    return cJSON_IsString(dtype) && strcmp(dtype->valuestring, "float32") == 0 ? 1e-5 : 1e-10;
}
