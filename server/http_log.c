#include "server/http_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

size_t http_json_escape(char *dst, size_t cap, const char *src) {
    size_t n = 0;
    for (const unsigned char *s = (const unsigned char *)src; *s; s++) {
        char esc[8];
        size_t len = 1;
        esc[0] = (char)*s;
        if (*s == '"' || *s == '\\') {
            esc[0] = '\\', esc[1] = (char)*s, len = 2;
        } else if (*s < 0x20 || *s == 0x7f || *s >= 0x80) {
            // Bytes outside printable ASCII come from clients: \u00XX keeps the line valid
            // JSON whatever the encoding was.
            len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *s);
        }
        if (n + len >= cap) break;
        memcpy(dst + n, esc, len);
        n += len;
    }
    if (cap) dst[n] = '\0';
    return n;
}

static size_t put_timestamp(char *out, size_t cap) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &utc);
    return n + (size_t)snprintf(out + n, cap - n, ".%03ldZ", now.tv_nsec / 1000000);
}

static void write_all(const char *text, size_t len) {
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, text, len);
        if (n <= 0) return; // a log that cannot be written must not stop the server
        text += n;
        len -= (size_t)n;
    }
}

// The access lines not yet written (one process, one stderr).
static struct {
    pthread_mutex_t lock;
    char text[64 << 10];
    size_t len;
    double oldest; // monotonic seconds of the first line in `text`
} pending = {.lock = PTHREAD_MUTEX_INITIALIZER};

#define FLUSH_AFTER_S 0.1

static double monotonic_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void flush_locked(void) {
    write_all(pending.text, pending.len);
    pending.len = 0;
}

void http_log_flush(void) {
    pthread_mutex_lock(&pending.lock);
    flush_locked();
    pthread_mutex_unlock(&pending.lock);
}

// Adds one line to the pending block (writing the block first when it has no room left, and
// after when it has waited long enough); `now` 0 writes everything at once.
static void put_line(const char *line, size_t len, double now) {
    pthread_mutex_lock(&pending.lock);
    if (pending.len + len > sizeof pending.text) flush_locked();
    if (len > sizeof pending.text) {
        write_all(line, len);
    } else {
        if (pending.len == 0) pending.oldest = now;
        memcpy(pending.text + pending.len, line, len);
        pending.len += len;
    }
    if (now == 0 || now - pending.oldest >= FLUSH_AFTER_S) flush_locked();
    pthread_mutex_unlock(&pending.lock);
}

// Appends a printf-formatted piece at offset `n` of `buf` (`cap` bytes) and returns the new
// length, clamped so that the text stays NUL-terminated. The fields of a line are bounded, so
// the buffers below never clamp.
__attribute__((format(printf, 4, 5))) static size_t append(char *buf, size_t cap, size_t n,
                                                           const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int wrote = vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
    if (wrote < 0) return n;
    return n + (size_t)wrote < cap ? n + (size_t)wrote : cap - 1;
}

void http_log_access(const http_access *a) {
    char line[1536], ts[40], remote[96], method[48], path[640];
    put_timestamp(ts, sizeof ts);
    http_json_escape(remote, sizeof remote, a->remote);
    http_json_escape(method, sizeof method, a->method);
    http_json_escape(path, sizeof path, a->path);
    size_t n = 0;
    n = append(
        line, sizeof line, n,
        "{\"ts\":\"%s\",\"event\":\"access\",\"remote\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
        "\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu",
        ts, remote, method, path, a->status, (unsigned long long)a->bytes_in,
        (unsigned long long)a->bytes_out);
    if (a->queue_ms >= 0) n = append(line, sizeof line, n, ",\"queue_ms\":%.3f", a->queue_ms);
    if (a->compute_ms >= 0)
        n = append(line, sizeof line, n, ",\"compute_ms\":%.3f,\"threads\":%d", a->compute_ms,
                   a->threads);
    if (a->termination) n = append(line, sizeof line, n, ",\"termination\":\"%s\"", a->termination);
    n = append(line, sizeof line, n, ",\"total_ms\":%.3f}\n", a->total_ms);
    put_line(line, n, monotonic_s());
}

void http_log_event(const char *event, const char *message) {
    char line[1200], ts[40], ev[64], msg[1024];
    put_timestamp(ts, sizeof ts);
    http_json_escape(ev, sizeof ev, event);
    http_json_escape(msg, sizeof msg, message);
    size_t n = 0;
    n = append(line, sizeof line, n, "{\"ts\":\"%s\",\"event\":\"%s\",\"message\":\"%s\"}\n", ts,
               ev, msg);
    put_line(line, n, 0);
}
