#include "api/api_errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/api_buf.h"

static const struct {
    const char *name;
    int status;
} codes[API_E_COUNT] = {
#define API_ERROR_ROW(e, code, status) [e] = {code, status},
    API_ERROR_CODES(API_ERROR_ROW)
#undef API_ERROR_ROW
};

const char *api_code_name(api_code code) {
    return (unsigned)code < API_E_COUNT ? codes[code].name : codes[API_E_INTERNAL].name;
}

int api_code_status(api_code code) {
    return (unsigned)code < API_E_COUNT ? codes[code].status : 500;
}

static void fill(api_error *err, api_code code, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void fill(api_error *err, api_code code, const char *path, const char *fmt, va_list ap) {
    err->code = code;
    snprintf(err->path, sizeof err->path, "%s", path ? path : "");
    vsnprintf(err->message, sizeof err->message, fmt, ap);
}

bool api_fail(api_error *err, api_code code, const char *path, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        fill(err, code, path, fmt, ap);
        va_end(ap);
    }
    return false;
}

const char *api_quote(char *buf, size_t cap, const char *s) {
    size_t n = strlen(s);
    bool cut = n >= cap;
    size_t keep = cut ? cap - 4 : n;
    for (size_t i = 0; i < keep; i++) buf[i] = s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?';
    strcpy(buf + keep, cut ? "..." : "");
    return buf;
}

void api_error_to_response(api_response *out, const api_error *err) {
    api_buf b = {0};
    api_buf_puts(&b, "{\"error\":{\"code\":");
    api_buf_json_string(&b, api_code_name(err->code));
    api_buf_puts(&b, ",\"message\":");
    api_buf_json_string(&b, err->message);
    if (err->path[0]) {
        api_buf_puts(&b, ",\"path\":");
        api_buf_json_string(&b, err->path);
    }
    api_buf_puts(&b, "}}");
    out->body = api_buf_take(&b, &out->len);
    out->status = out->body ? api_code_status(err->code) : api_code_status(API_E_OUT_OF_MEMORY);
    out->content_type = "application/json";
}

void api_error_refuse(api_response *out, api_code code, const char *path, const char *fmt, ...) {
    api_error err;
    va_list ap;
    va_start(ap, fmt);
    fill(&err, code, path, fmt, ap);
    va_end(ap);
    api_error_to_response(out, &err);
}
