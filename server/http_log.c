#include "server/http_log.h"

#include <stdarg.h>
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

// Writes the line in one write(2): stderr is unbuffered, and stdio would split a long line.
static void write_line(FILE *to, const char *line, size_t len) {
    fflush(to);
    while (len > 0) {
        ssize_t n = write(fileno(to), line, len);
        if (n <= 0) return;
        line += n;
        len -= (size_t)n;
    }
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

void http_log_access(FILE *to, const http_access *a) {
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
    write_line(to, line, n);
}

void http_log_event(FILE *to, const char *event, const char *message) {
    char line[1200], ts[40], ev[64], msg[1024];
    put_timestamp(ts, sizeof ts);
    http_json_escape(ev, sizeof ev, event);
    http_json_escape(msg, sizeof msg, message);
    size_t n = 0;
    n = append(line, sizeof line, n, "{\"ts\":\"%s\",\"event\":\"%s\",\"message\":\"%s\"}\n", ts,
               ev, msg);
    write_line(to, line, n);
}
