#include "server/http_envelope.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "api/api_errors.h"
#include "api/api_exec.h"
#include "api/codec/codec.h"
#include "api/codec/codec_json_parse.h"
#include "api/codec/codec_v2.h"

// Answers shorter than this go out as they are: compressing them saves nothing worth the time.
#define COMPRESS_MIN_BYTES 1024
// Answers made on a connection thread (refusals, GET routes) are compressed only up to this
// size: well under a millisecond, so the I/O thread serving every connection is never held
// (a megabyte took ~10 ms). Computed answers are compressed on their worker.
#define COMPRESS_MAX_ON_CONNECTION ((size_t)64 << 10)

static void copy_header(char *dst, size_t cap, struct MHD_Connection *conn, const char *name) {
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    snprintf(dst, cap, "%s", v ? v : "");
}

void http_envelope_begin(http_envelope *ex, struct MHD_Connection *conn, const char *path) {
    *ex = (http_envelope){0};
    copy_header(ex->content_encoding, sizeof ex->content_encoding, conn,
                MHD_HTTP_HEADER_CONTENT_ENCODING);
    copy_header(ex->accept_encoding, sizeof ex->accept_encoding, conn,
                MHD_HTTP_HEADER_ACCEPT_ENCODING);
    copy_header(ex->header_length, sizeof ex->header_length, conn,
                "Inference-Header-Content-Length");
    // The protocol's URL space: /v2, /v2/health/..., /v2/models/... (unknown models included,
    // as v2 clients name them); other paths under /v2 are no protocol's and answer as v1.
    ex->v2 = strcmp(path, "/v2") == 0 || strncmp(path, "/v2/health/", 11) == 0 ||
             strncmp(path, "/v2/models/", 11) == 0;
}

// ---------------------------------------------------------------------------------------------
// Request bodies.

typedef enum { CODING_IDENTITY, CODING_GZIP, CODING_DEFLATE, CODING_UNKNOWN } coding;

static coding coding_of(const char *name) {
    size_t n = strcspn(name, " \t");
    if (n == 0 || (n == 8 && strncasecmp(name, "identity", 8) == 0)) return CODING_IDENTITY;
    if ((n == 4 && strncasecmp(name, "gzip", 4) == 0) ||
        (n == 6 && strncasecmp(name, "x-gzip", 6) == 0))
        return CODING_GZIP;
    if (n == 7 && strncasecmp(name, "deflate", 7) == 0) return CODING_DEFLATE;
    return CODING_UNKNOWN;
}

typedef enum { INFLATE_OK, INFLATE_CORRUPT, INFLATE_TOO_LARGE, INFLATE_NO_MEMORY } inflate_status;

// Decompresses `in` (windowBits as zlib takes them: 31 gzip, 15 zlib, -15 raw deflate) into a
// NUL-terminated heap buffer of at most `limit` bytes.
static inflate_status inflate_all(char **out, size_t *out_len, const char *in, size_t in_len,
                                  int window_bits, size_t limit) {
    z_stream z = {0};
    *out = NULL;
    *out_len = 0;
    if (inflateInit2(&z, window_bits) != Z_OK) return INFLATE_NO_MEMORY;
    size_t cap = in_len < limit / 4 ? in_len * 4 : limit;
    if (cap < ((size_t)64 << 10)) cap = limit < ((size_t)64 << 10) ? limit : (size_t)64 << 10;
    char *buf = malloc(cap + 1);
    size_t len = 0, fed = 0;
    inflate_status status = buf ? INFLATE_OK : INFLATE_NO_MEMORY;
    int rc = Z_OK;
    while (status == INFLATE_OK && rc != Z_STREAM_END) {
        if (z.avail_in == 0 && fed < in_len) { // zlib counts in 32 bits: feed large bodies in turns
            size_t chunk = in_len - fed < UINT_MAX ? in_len - fed : UINT_MAX;
            z.next_in = (Bytef *)(in + fed);
            z.avail_in = (uInt)chunk;
            fed += chunk;
        }
        if (len == cap) { // full: grow up to one byte past the limit, to tell "too large"
            if (cap > limit) {
                status = INFLATE_TOO_LARGE;
                break;
            }
            size_t grown_cap = cap > limit / 2 ? limit + 1 : cap * 2;
            char *grown = realloc(buf, grown_cap + 1);
            if (!grown) {
                status = INFLATE_NO_MEMORY;
                break;
            }
            buf = grown;
            cap = grown_cap;
        }
        size_t room = cap - len < UINT_MAX ? cap - len : UINT_MAX;
        z.next_out = (Bytef *)(buf + len);
        z.avail_out = (uInt)room;
        rc = inflate(&z, Z_NO_FLUSH);
        len += room - z.avail_out;
        if (rc == Z_MEM_ERROR) status = INFLATE_NO_MEMORY;
        else if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) status = INFLATE_CORRUPT;
        else if (rc == Z_BUF_ERROR && z.avail_in == 0 && fed == in_len) status = INFLATE_CORRUPT;
        if (len > limit) status = INFLATE_TOO_LARGE;
    }
    if (status == INFLATE_OK && (z.avail_in != 0 || fed != in_len))
        status = INFLATE_CORRUPT; // bytes after the end of the stream
    inflateEnd(&z);
    if (status != INFLATE_OK) {
        free(buf);
        return status;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return INFLATE_OK;
}

// HTTP's "deflate" is zlib-wrapped (RFC 9110), but some clients send raw deflate: tell them
// apart by the zlib header (CMF/FLG: method 8, a multiple of 31).
static int deflate_window(const char *in, size_t len) {
    const unsigned char *b = (const unsigned char *)in;
    return len >= 2 && (b[0] & 0x0f) == 8 && ((unsigned)b[0] << 8 | b[1]) % 31 == 0 ? 15 : -15;
}

// The body decoded into *plain (a heap copy the caller frees, or NULL for identity). False with
// `out` holding the refusal.
static bool decode_body(char **plain, size_t *plain_len, const http_envelope *ex,
                        const http_body *body, size_t max_body, api_response *out) {
    *plain = NULL;
    char quoted[48];
    coding c = coding_of(ex->content_encoding);
    if (c == CODING_IDENTITY) return true;
    if (c == CODING_UNKNOWN) {
        api_error_refuse(out, API_E_UNSUPPORTED_MEDIA_TYPE, "",
                         "Content-Encoding '%s' is not supported; send gzip, deflate or an "
                         "uncompressed body",
                         api_quote(quoted, sizeof quoted, ex->content_encoding));
        return false;
    }
    int window = c == CODING_GZIP ? 31 : deflate_window(body->data, body->len);
    inflate_status s = inflate_all(plain, plain_len, body->data, body->len, window, max_body);
    if (s == INFLATE_OK) return true;
    if (s == INFLATE_TOO_LARGE)
        api_error_refuse(out, API_E_BODY_TOO_LARGE, "",
                         "the request body decompresses to more than %zu bytes, the limit "
                         "(--max-body, CONVD_MAX_BODY, which applies after decompression); "
                         "send smaller batches",
                         max_body);
    else if (s == INFLATE_CORRUPT)
        api_error_refuse(out, API_E_INVALID_JSON, "",
                         "the request body is not valid %s data (Content-Encoding: %s): it is "
                         "corrupt, cut short, or followed by other bytes",
                         c == CODING_GZIP ? "gzip" : "deflate",
                         api_quote(quoted, sizeof quoted, ex->content_encoding));
    else
        api_error_refuse(out, API_E_OUT_OF_MEMORY, "",
                         "out of memory to decompress the request body; retry");
    return false;
}

// ---------------------------------------------------------------------------------------------
// Answers.

// The coding Accept-Encoding prefers among gzip and deflate (gzip on a tie, '*' counting as
// gzip), or CODING_IDENTITY.
static coding preferred_coding(const char *accept) {
    double gzip = 0, deflate = 0;
    for (const char *p = accept; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        size_t item = strcspn(p, ","), name = strcspn(p, ";, \t");
        if (!item) break;
        double q = 1;
        const char *param = memchr(p, ';', item);
        while (param && param < p + item) {
            const char *v = param + 1;
            while (*v == ' ') v++;
            if ((*v == 'q' || *v == 'Q') && v[1] == '=') q = strtod(v + 2, NULL);
            param = memchr(v, ';', (size_t)(p + item - v));
        }
        char token[16];
        snprintf(token, sizeof token, "%.*s", (int)(name < 15 ? name : 15), p);
        coding c = strcmp(token, "*") == 0 ? CODING_GZIP : coding_of(token);
        if (c == CODING_GZIP && q > gzip) gzip = q;
        if (c == CODING_DEFLATE && q > deflate) deflate = q;
        p += item;
    }
    if (gzip <= 0 && deflate <= 0) return CODING_IDENTITY;
    return gzip >= deflate ? CODING_GZIP : CODING_DEFLATE;
}

// Compresses the answer's body in place when the client asks and it is worth it.
static void compress_answer(http_envelope *ex, api_response *answer) {
    if (ex->answer_encoding || !answer->body || answer->len < COMPRESS_MIN_BYTES) return;
    coding c = preferred_coding(ex->accept_encoding);
    if (c == CODING_IDENTITY) return;
    z_stream z = {0};
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, c == CODING_GZIP ? 31 : 15, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return;
    size_t cap = deflateBound(&z, (uLong)answer->len);
    char *packed = malloc(cap);
    size_t fed = 0;
    int rc = packed ? Z_OK : Z_MEM_ERROR;
    z.next_out = (Bytef *)packed;
    while (rc == Z_OK) {
        if (z.avail_in == 0) {
            size_t chunk = answer->len - fed < UINT_MAX ? answer->len - fed : UINT_MAX;
            z.next_in = (Bytef *)(answer->body + fed);
            z.avail_in = (uInt)chunk;
            fed += chunk;
        }
        size_t room = cap - (size_t)((char *)z.next_out - packed);
        z.avail_out = (uInt)(room < UINT_MAX ? room : UINT_MAX);
        rc = deflate(&z, fed == answer->len ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_BUF_ERROR && z.avail_out) rc = Z_OK; // wanted more input: the loop feeds it
    }
    size_t packed_len = (size_t)((char *)z.next_out - packed);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(packed);
        return;
    }
    free(answer->body);
    answer->body = packed;
    answer->len = packed_len;
    ex->answer_encoding = c == CODING_GZIP ? "gzip" : "deflate";
}

void http_envelope_run(http_envelope *ex, api_response *out, http_body_fn run,
                       const http_body *body, const char *op, const api_options *opt,
                       size_t max_body) {
    char *plain;
    size_t plain_len;
    if (!decode_body(&plain, &plain_len, ex, body, max_body, out)) return;
    api_error err;
    if (plain && !api_admit(opt, codec_json_memory_bound(plain_len), 0, "the decompressed body", &err)) {
        free(plain);
        api_error_to_response(out, &err);
        return;
    }
    http_body decoded = *body;
    if (plain) {
        decoded.data = plain;
        decoded.len = plain_len;
    }
    run(out, &decoded, op, opt);
    free(plain);
    if (ex->v2 && out->status == 200 && out->body &&
        strcmp(out->content_type, codec_binary_type) == 0)
        snprintf(ex->answer_header_length, sizeof ex->answer_header_length, "%zu",
                 codec_v2_header_length(out->body, out->len));
    // The compressed copy is held beside the answer until it replaces it: admitted like the
    // rest, or the answer goes out as it is.
    if (out->body && out->len >= COMPRESS_MIN_BYTES &&
        preferred_coding(ex->accept_encoding) != CODING_IDENTITY &&
        api_admit(opt, out->len + out->len / 1000 + 64, 0, "the compressed answer", &err))
        compress_answer(ex, out);
}

void http_envelope_finish(http_envelope *ex, api_response *answer) {
    if (ex->v2 && answer->status >= 400) codec_v2_restyle_error(answer);
    if (answer->len <= COMPRESS_MAX_ON_CONNECTION) compress_answer(ex, answer);
}

void http_envelope_headers(const http_envelope *ex, struct MHD_Response *resp) {
    if (*ex->accept_encoding) MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (ex->answer_encoding)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, ex->answer_encoding);
    if (*ex->answer_header_length)
        MHD_add_response_header(resp, "Inference-Header-Content-Length",
                                ex->answer_header_length);
}
