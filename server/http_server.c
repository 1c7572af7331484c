#include "server/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api_errors.h"
#include "api/codec/codec_json_parse.h"
#include "server/http_auth.h"
#include "server/http_envelope.h"
#include "server/http_guard.h"
#include "server/http_log.h"
#include "server/http_metrics.h"
#include "server/http_pool.h"
#include "server/http_tls.h"

struct http_server {
    http_config cfg;
    struct MHD_Daemon *daemon;
    http_pool *pool;
    http_budget budget;
    http_metrics *metrics;
    http_auth *auth; // API keys and rate limits
    http_tls *tls;   // HTTPS certificate and key
    http_guard *guard; // deadlines of slow clients, uploads per client
    atomic_bool draining;
    atomic_long inflight;
    double started;
    uint16_t port;
    const char **route_names; // metrics labels: the route paths
};

typedef enum { STAGE_READING, STAGE_COMPUTING, STAGE_ANSWERED } request_stage;

// One request, from its headers to the end of its answer (MHD's per-request pointer).
typedef struct {
    http_server *srv;
    struct MHD_Connection *conn;
    const http_route *route; // NULL: no route for the path
    size_t route_index;
    unsigned method; // HTTP_GET...; 0 for any other method
    const http_format *format;
    request_stage stage;
    // A refusal decided from the headers, answered once the body is read or dropped.
    api_response refusal;
    bool keep_body;    // a compute request: buffer the body for the worker
    bool uploading;    // counted in the client's uploads (http_guard_upload_begin)
    http_guard_conn *guard;
    int retry_after_s; // of a 429 refusal (http_auth)
    char *body;
    size_t len, cap;
    uint64_t declared; // Content-Length (0 when absent)
    uint64_t bytes_in;
    size_t reserved; // memory budget held
    bool admitted;   // counted in srv->inflight
    http_lane lane;  // the pool's lane it runs in (SMALL_BODY)
    int64_t flops;   // admitted so far (admit_working_set)
    bool moved;      // found too big for the small lane: to run again in the big one
    api_response result;
    int threads;
    int status;
    uint64_t bytes_out;
    double t_start, t_queued, t_compute_start, t_compute_end;
    char method_name[16], path[512], remote[64], content_type[256], accept[256];
    http_envelope envelope; // content codings, v2 framing and error style (http_envelope.h)
} http_request;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// The memory a request of `body_len` bytes holds before the request model knows what it
// asks for: the body and its parse (codec_json_memory_bound; binary bodies cost less). Its
// outputs, scratch and answer are admitted when known (admit_working_set), a decompressed
// body when inflated (http_envelope_run).
static size_t estimate_memory(const http_server *srv, uint64_t body_len) {
    return codec_json_memory_bound((size_t)body_len) + ((size_t)64 << 10);
}

static const char *header(struct MHD_Connection *c, const char *name) {
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? v : "";
}

static void copy_text(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src); }

static unsigned method_bit(const char *m) {
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {
        {"GET", HTTP_GET}, {"HEAD", HTTP_HEAD}, {"POST", HTTP_POST}, {"OPTIONS", HTTP_OPTIONS}};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(m, known[i].name) == 0) return known[i].bit;
    return 0;
}

// The body format for a Content-Type: its media type (before ';', case-insensitive), or the
// route's first format when the header is absent. NULL when the route takes no such type.
static const http_format *format_for(const http_route *r, const char *content_type) {
    size_t n = strcspn(content_type, ";");
    while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t')) n--;
    if (n == 0) return &r->formats[0];
    for (const http_format *c = r->formats; c->media_type; c++)
        if (strlen(c->media_type) == n && strncasecmp(c->media_type, content_type, n) == 0)
            return c;
    return NULL;
}

// Holds memory budget for the request up to `bytes` (never giving back here). False when the
// budget cannot take it.
static bool hold_memory(http_request *r, size_t bytes) {
    if (bytes <= r->reserved) return true;
    if (!http_budget_take(&r->srv->budget, bytes - r->reserved)) return false;
    r->reserved = bytes;
    return true;
}

// The refusal for a request that needs `estimate` bytes when the budget cannot take it now:
// 503 if it could fit once others finish, 413 if it never can.
static void refuse_memory(api_response *out, const http_server *srv, size_t estimate) {
    if (estimate > srv->budget.limit)
        api_error_refuse(
            out, API_E_BODY_TOO_LARGE, "",
            "this request needs about %zu MiB of working memory, more than the server's "
            "whole budget of %zu MiB (--max-memory); split it into smaller batches",
            estimate >> 20, srv->budget.limit >> 20);
    else
        api_error_refuse(out, API_E_OVERLOADED, "",
                         "the server's memory budget is taken by other requests; retry after the "
                         "Retry-After delay");
}

static void refuse_overloaded(api_response *out) {
    api_error_refuse(out, API_E_OVERLOADED, "",
                     "every compute worker is busy and the queue is full; retry after the "
                     "Retry-After delay");
}

static void refuse_draining(api_response *out) {
    api_error_refuse(out, API_E_OVERLOADED, "",
                     "the server is shutting down and takes no new work; retry (another instance "
                     "will answer)");
}

static void refuse_body_size(api_response *out, const http_server *srv, uint64_t size,
                             bool declared) {
    api_error_refuse(out, API_E_BODY_TOO_LARGE, "",
                     "the request body %s %" PRIu64
                     " bytes, over the limit of %zu bytes (--max-body, "
                     "CONVD_MAX_BODY); send smaller batches or binary tensors",
                     declared ? "declares" : "has more than", size, srv->cfg.max_body);
}

// Decides, from the request line and headers alone, whether the request is refused (filling
// r->refusal) and, for a compute request, prepares the body buffer.
static void classify(http_request *r, uint64_t declared, bool has_length) {
    http_server *srv = r->srv;
    api_response *no = &r->refusal;
    const http_route *route = r->route;
    char quoted[160];
    unsigned allowed = route ? route->methods | HTTP_OPTIONS : 0;
    if (allowed & HTTP_GET) allowed |= HTTP_HEAD;
    if (!route) {
        api_error_refuse(no, API_E_NOT_FOUND, "",
                         "there is no %s; the API is POST /v1/conv2d/forward and "
                         "POST /v1/conv2d/backward (GET /v1/info lists every route)",
                         api_quote(quoted, sizeof quoted, r->path));
    } else if (!(r->method & allowed)) {
        api_error_refuse(no, API_E_METHOD_NOT_ALLOWED, "", "%s %s is not allowed; use %s",
                         api_quote(quoted, sizeof quoted, r->method_name), route->path,
                         http_router_allow(route));
    } else if (((r->method == HTTP_POST && route->formats) ||
                (srv->cfg.metrics_auth && strcmp(route->path, "/metrics") == 0)) &&
               !http_auth_admit(srv->auth, header(r->conn, MHD_HTTP_HEADER_AUTHORIZATION), no,
                                &r->retry_after_s)) {
        // refused with 401 or 429 before anything else is looked at or held
    } else if (has_length && declared > srv->cfg.max_body) {
        refuse_body_size(no, srv, declared, true);
    } else if (r->method == HTTP_POST && route->formats) {
        if (!(r->format = format_for(route, r->content_type))) {
            api_error_refuse(no, API_E_UNSUPPORTED_MEDIA_TYPE, "",
                             "Content-Type '%s' is not accepted by %s; send 'Content-Type: %s'",
                             api_quote(quoted, sizeof quoted, r->content_type), route->path,
                             route->formats[0].media_type);
        } else if (atomic_load(&srv->draining)) {
            refuse_draining(no);
        } else if (http_pool_waiting(srv->pool) >= srv->cfg.queue &&
                   http_pool_busy(srv->pool) >= srv->cfg.workers) {
            refuse_overloaded(no);
        } else if (estimate_memory(srv, declared) > srv->budget.limit) {
            refuse_memory(no, srv, estimate_memory(srv, declared)); // 413: it never fits
        } else if (!hold_memory(r, estimate_memory(srv, 0))) {
            // Only a first slice is held now; the rest as the bytes arrive (keep_bytes), so
            // that a client declaring much and sending little holds little.
            refuse_memory(no, srv, estimate_memory(srv, 0));
        } else if (!(r->uploading = http_guard_upload_begin(srv->guard, r->remote,
                                                             srv->cfg.max_uploads))) {
            api_error_refuse(no, API_E_OVERLOADED, "",
                              "this client is already sending %d request bodies at once "
                              "(--max-uploads); retry after the Retry-After delay",
                              srv->cfg.max_uploads);
        } else {
            r->keep_body = true;
        }
    }
}

static void add_cors(struct MHD_Response *resp, const http_request *r) {
    const char *allowed = r->srv->cfg.cors_origin;
    if (!*allowed) return;
    if (strcmp(allowed, "*") == 0) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    } else {
        const char *origin = header(r->conn, "Origin");
        size_t n = strlen(origin);
        for (const char *p = allowed; n && *p; p += strcspn(p, ","), p += *p == ',') {
            while (*p == ' ') p++;
            size_t len = strcspn(p, ", ");
            if (len == n && strncmp(p, origin, n) == 0) {
                MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
                break;
            }
        }
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "Retry-After");
    if (r->method == HTTP_OPTIONS) {
        const char *asked = header(r->conn, "Access-Control-Request-Headers");
        MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                r->route ? http_router_allow(r->route) : "");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                *asked ? asked : "Content-Type, Accept, Authorization");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
}

// Queues `answer` (taking its body) with the headers its status calls for. `close` asks for the
// connection to end after it (unread body, draining).
static enum MHD_Result answer(http_request *r, api_response *answer, bool close) {
    http_envelope_finish(&r->envelope, answer);
    struct MHD_Response *resp =
        answer->body
            ? MHD_create_response_from_buffer(answer->len, answer->body, MHD_RESPMEM_MUST_FREE)
            : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(answer->body);
        answer->body = NULL;
        return MHD_NO;
    }
    int status = answer->status;
    size_t len = answer->len;
    answer->body = NULL;
    if (len) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, answer->content_type);
    http_envelope_headers(&r->envelope, resp);
    if (r->route && (status == 405 || r->method == HTTP_OPTIONS))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, http_router_allow(r->route));
    if (status == 503) {
        char seconds[16];
        snprintf(seconds, sizeof seconds, "%d", r->srv->cfg.retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
    }
    http_auth_headers(resp, status, r->retry_after_s);
    add_cors(resp, r);
    if (close || atomic_load(&r->srv->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES) {
        r->status = status;
        r->bytes_out = r->method == HTTP_HEAD ? 0 : len;
        r->stage = STAGE_ANSWERED;
    }
    return ok;
}

// Small requests run in the pool's small lane, so that they are not stuck behind big ones: a
// body of at most SMALL_BODY starts there, and moves to the big lane once the request model
// finds it needs more than SMALL_FLOPS of work or SMALL_MEMORY of memory (then its parse
// is done again, at a cost under a millisecond).
#define SMALL_BODY ((size_t)64 << 10)
#define SMALL_FLOPS ((int64_t)100000000)
#define SMALL_MEMORY ((size_t)16 << 20)

// The request model asks, once it knows, for the memory the request's outputs, scratch and
// answer need on top of what its body holds, and the work it will do: the memory is taken from
// the budget, given back with the rest when the request ends. On the compute worker (the
// connection is suspended meanwhile).
static api_admission admit_working_set(void *ctx, size_t bytes, int64_t flops) {
    http_request *r = ctx;
    r->flops += flops;
    if (r->lane == HTTP_LANE_SMALL && (r->flops > SMALL_FLOPS || bytes > SMALL_MEMORY)) {
        r->moved = true;
        return API_ADMIT_MOVE;
    }
    if (bytes > r->srv->budget.limit - r->reserved) return API_ADMIT_NEVER;
    if (!http_budget_take(&r->srv->budget, bytes)) return API_ADMIT_LATER;
    r->reserved += bytes;
    return API_ADMIT_OK;
}

// Runs on a compute worker: the request model answers the body, then the connection resumes.
static void compute(void *arg, int threads) {
    http_request *r = arg;
    r->t_compute_start = now_s();
    api_options opt = r->srv->cfg.api;
    opt.threads = threads;
    opt.admit = admit_working_set;
    opt.admit_ctx = r;
    r->threads = threads;
    http_body body = {r->body, r->len, r->content_type, r->accept, r->envelope.header_length};
    size_t held_for_body = r->reserved;
    http_envelope_run(&r->envelope, &r->result, r->format->run, &body, r->route->op, &opt,
                      r->srv->cfg.max_body);
    if (r->moved) { // too big for the small lane: again in the big one, or refused
        free(r->result.body);
        r->result = (api_response){0};
        http_budget_give_back(&r->srv->budget, r->reserved - held_for_body);
        r->reserved = held_for_body;
        r->moved = false;
        r->flops = 0;
        r->lane = HTTP_LANE_BIG;
        if (http_pool_reserve(r->srv->pool, HTTP_LANE_BIG)) {
            http_pool_submit(r->srv->pool, HTTP_LANE_BIG, compute, r);
            return;
        }
        refuse_overloaded(&r->result);
    }
    free(r->body); // the body is the largest thing held; drop it before the answer goes out
    r->body = NULL;
    r->t_compute_end = now_s();
    MHD_resume_connection(r->conn);
}

// Answers a request that waited for a worker when draining ran out of time.
static void cancel(void *arg, int threads) {
    http_request *r = arg;
    refuse_draining(&r->result);
    MHD_resume_connection(r->conn);
}

// The body is complete: admit it to the pool (suspending the connection) or refuse it.
static enum MHD_Result dispatch(http_request *r) {
    http_server *srv = r->srv;
    api_response no;
    size_t need = estimate_memory(srv, r->len);
    // Counted before draining is read: the drain then either sees this request in flight or
    // this request sees the drain (both are sequentially consistent atomics).
    atomic_fetch_add(&srv->inflight, 1);
    if (atomic_load(&srv->draining)) {
        refuse_draining(&no);
    } else if (!hold_memory(r, need)) {
        refuse_memory(&no, srv, need);
    } else if (!http_pool_reserve(srv->pool, r->lane = r->len <= SMALL_BODY ? HTTP_LANE_SMALL
                                                                              : HTTP_LANE_BIG)) {
        refuse_overloaded(&no);
    } else {
        r->admitted = true;
        r->stage = STAGE_COMPUTING;
        r->t_queued = now_s();
        MHD_suspend_connection(r->conn);
        http_pool_submit(srv->pool, r->lane, compute, r);
        return MHD_YES;
    }
    atomic_fetch_sub(&srv->inflight, 1);
    return answer(r, &no, false);
}

static bool expects_continue(struct MHD_Connection *c) {
    return strcasecmp(header(c, MHD_HTTP_HEADER_EXPECT), "100-continue") == 0;
}

static http_request *request_begin(http_server *srv, struct MHD_Connection *conn, const char *url,
                                   const char *method) {
    http_request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = srv;
    r->conn = conn;
    r->t_start = now_s();
    r->method = method_bit(method);
    copy_text(r->method_name, sizeof r->method_name, method);
    copy_text(r->path, sizeof r->path, url);
    copy_text(r->content_type, sizeof r->content_type, header(conn, MHD_HTTP_HEADER_CONTENT_TYPE));
    copy_text(r->accept, sizeof r->accept, header(conn, MHD_HTTP_HEADER_ACCEPT));
    http_envelope_begin(&r->envelope, conn, url);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info ? info->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->remote,
                  sizeof r->remote);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->remote,
                  sizeof r->remote);
    r->route = http_router_find(r->srv->cfg.routes, r->srv->cfg.n_routes, url, &r->route_index);
    return r;
}

// Appends streamed body bytes; grows the buffer (and the memory held) as a chunked body
// arrives. False with r->refusal filled when the budget cannot grow or memory runs out.
static bool keep_bytes(http_request *r, const char *data, size_t n) {
    if (r->len + n + 1 > r->cap) {
        // The buffer, and the memory held for it, grow by doubling as bytes arrive (up to a
        // declared length): what a client has not sent holds nothing.
        size_t cap = r->cap ? r->cap : (size_t)64 << 10;
        while (cap < r->len + n + 1) cap *= 2;
        if (r->declared && cap > r->declared + 1 && r->len + n + 1 <= r->declared + 1)
            cap = (size_t)r->declared + 1;
        if (cap > r->srv->cfg.max_body + 1) cap = r->srv->cfg.max_body + 1;
        size_t need = estimate_memory(r->srv, cap);
        char *grown = hold_memory(r, need) ? realloc(r->body, cap) : NULL;
        if (!grown) {
            refuse_memory(&r->refusal, r->srv, need);
            return false;
        }
        r->body = grown;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0'; // the request model gets a terminated text, whatever it expects
    return true;
}

// libmicrohttpd 0.9.75 takes an answer only before the body is read or after all of it
// (MHD_queue_response fails in between), so a request refused for its body is answered once
// the body has been read and dropped. This is how much a client may send in all before the
// connection is cut instead: twice --max-body.
static uint64_t discard_limit(const http_server *srv) { return 2 * (uint64_t)srv->cfg.max_body; }

// The request's body is complete or dropped: it no longer counts in its client's uploads.
static void end_upload(http_request *r) {
    if (r->uploading) http_guard_upload_end(r->srv->guard, r->remote);
    r->uploading = false;
}

// Drops what the request buffered: it will be refused.
static void drop_body(http_request *r) {
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    r->keep_body = false;
    end_upload(r);
}

static enum MHD_Result count_lengths(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) (*(int *)cls)++;
    return MHD_YES;
}

// Refuses (into r->refusal) framing that libmicrohttpd 0.9.75 lets through and that would
// make the body's end ambiguous (request smuggling) or never come: a second Content-Length
// (it used the first and served the rest as another request), one that is not a number, or a
// Transfer-Encoding other than chunked (it waited for --timeout). False when refused.
static bool check_framing(http_request *r, const char *length) {
    int lengths = 0;
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_lengths, &lengths);
    const char *coding = header(r->conn, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    char quoted[64];
    if (lengths > 1 || (length && (!*length || length[strspn(length, "0123456789")])))
        api_error_refuse(&r->refusal, API_E_INVALID_HTTP, "",
                          "the request has %s Content-Length; send exactly one, a number",
                          lengths > 1 ? "more than one" : "an invalid");
    else if (*coding && strcasecmp(coding, "chunked") != 0)
        api_error_refuse(&r->refusal, API_E_NOT_IMPLEMENTED, "",
                          "Transfer-Encoding '%s' is not supported; send a Content-Length or "
                          "'Transfer-Encoding: chunked'",
                          api_quote(quoted, sizeof quoted, coding));
    else
        return true;
    return false;
}

// The guard's record of the connection (http_guard_open when it opened); NULL if none.
static http_guard_conn *guard_of(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    http_request *r = *con_cls;
    if (!r) {
        if (!(r = request_begin(cls, conn, url, method))) return MHD_NO;
        *con_cls = r;
        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        r->declared = length ? strtoull(length, NULL, 10) : 0;
        r->guard = guard_of(conn);
        bool framed = check_framing(r, length);
        if (framed) classify(r, r->declared, length != NULL);
        bool body_follows = r->declared > 0 || *header(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        http_guard_headers_done(r->guard, body_follows);
        // Answering now would make libmicrohttpd 0.9.75 drop keep-alive, so a refusal is
        // answered now only when its body must not be read: bad framing, the client waits
        // for 100-continue, or the declared body is over --max-body.
        if (r->refusal.status &&
            (!framed || (body_follows && (expects_continue(conn) ||
                                          r->declared > r->srv->cfg.max_body))))
            return answer(r, &r->refusal, true);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->bytes_in += n;
        http_guard_body_bytes(r->guard, r->bytes_in);
        if (r->stage == STAGE_ANSWERED) return MHD_YES;         // answered before the body: dropped
        if (r->bytes_in > discard_limit(r->srv)) return MHD_NO; // cut the connection
        if (r->bytes_in > r->srv->cfg.max_body && r->refusal.status != 413) {
            free(r->refusal.body); // a refusal waiting for the body's end gives way to this one
            refuse_body_size(&r->refusal, r->srv, r->srv->cfg.max_body, false);
            drop_body(r);
        }
        if (r->keep_body && !r->refusal.status && !keep_bytes(r, upload_data, n)) drop_body(r);
        return MHD_YES;
    }
    if (r->stage == STAGE_COMPUTING) return answer(r, &r->result, false);
    http_guard_busy(r->guard);
    end_upload(r);
    if (r->refusal.status) return answer(r, &r->refusal, false);
    if (r->method == HTTP_OPTIONS) {
        api_response none = {.status = 204};
        return answer(r, &none, false);
    }
    if (r->route->get) {
        api_response out = {0};
        r->route->get(&out, r->srv, r->route->op);
        return answer(r, &out, false);
    }
    return dispatch(r);
}

static const char *termination_reason(enum MHD_RequestTerminationCode toe) {
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK: return NULL;
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: return "shutdown";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT: return "client_closed";
    default: return "error";
    }
}

// libmicrohttpd is done with the request (answered, or the client or a timeout ended it):
// account for it, log it and free everything it held.
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    http_request *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    http_server *srv = cls;
    double total = now_s() - r->t_start;
    bool computed = r->t_compute_end > 0;
    double queue_s = computed ? r->t_compute_start - r->t_queued : -1;
    double compute_s = computed ? r->t_compute_end - r->t_compute_start : -1;
    // A computed answer whose client left is counted with the status it had: whether
    // libmicrohttpd saw the hang-up before or after queueing it is a race, not a difference.
    int status = r->status || !computed ? r->status : r->result.status;
    http_metrics_observe(srv->metrics,
                         &(http_observation){r->route_index, status, total, queue_s, compute_s,
                                             r->bytes_in, r->bytes_out});
    if (srv->cfg.access_log)
        http_log_access(&(http_access){r->remote, r->method_name, r->path, status, r->bytes_in,
                                       r->bytes_out, queue_s * 1e3, compute_s * 1e3, total * 1e3,
                                       r->threads, termination_reason(toe)});
    if (r->reserved) http_budget_give_back(&srv->budget, r->reserved);
    if (r->admitted) atomic_fetch_sub(&srv->inflight, 1);
    end_upload(r);
    http_guard_idle(guard_of(conn));
    free(r->body);
    free(r->refusal.body);
    free(r->result.body);
    free(r);
}

// libmicrohttpd opened or closed a connection: the guard follows it from its first byte.
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = info ? http_guard_open(srv->guard, info->connect_fd) : NULL;
    } else {
        http_guard_close(srv->guard, *socket_context);
        *socket_context = NULL;
    }
}

static void on_library_message(void *cls, const char *fmt, va_list ap) {
    char message[512];
    vsnprintf(message, sizeof message, fmt, ap);
    message[strcspn(message, "\n")] = '\0';
    http_log_event("libmicrohttpd", message);
}

static void free_server(http_server *s) {
    http_pool_destroy(s->pool);
    http_metrics_free(s->metrics);
    http_auth_free(s->auth);
    http_tls_free(s->tls);
    http_guard_free(s->guard);
    free(s->route_names);
    free(s);
}

http_server *http_server_start(const http_config *cfg, char *err, size_t err_cap) {
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->budget.limit = cfg->max_memory;
    s->started = now_s();
    s->route_names = calloc(s->cfg.n_routes, sizeof *s->route_names);
    for (size_t i = 0; s->route_names && i < s->cfg.n_routes; i++)
        s->route_names[i] = s->cfg.routes[i].path;
    s->metrics = s->route_names ? http_metrics_create(s->route_names, s->cfg.n_routes) : NULL;
    s->pool = http_pool_create(cfg->workers, cfg->queue, cfg->cores);
    s->guard = http_guard_create((unsigned)cfg->max_connections, cfg->header_timeout_s,
                                 cfg->min_body_rate);
    if (!s->metrics || !s->pool || !s->guard) {
        snprintf(err, err_cap, "cannot start %d compute workers (out of memory or threads)",
                 cfg->workers);
        free_server(s);
        return NULL;
    }
    if (!(s->auth =
              http_auth_create(cfg->api_keys, cfg->rate_limit, cfg->rate_burst, err, err_cap)) ||
        !(s->tls = http_tls_load(cfg->tls_cert, cfg->tls_key, err, err_cap))) {
        free_server(s);
        return NULL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *addr;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int rc = getaddrinfo(cfg->host, port, &hints, &addr);
    if (rc != 0) {
        snprintf(err, err_cap, "cannot resolve --host '%s': %s", cfg->host, gai_strerror(rc));
        free_server(s);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_TURBO | MHD_USE_ERROR_LOG | http_tls_flags(s->tls) |
                     (addr->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        on_library_message, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->io_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
        MHD_OPTION_SOCK_ADDR, addr->ai_addr, MHD_OPTION_ARRAY, http_tls_options(s->tls),
        MHD_OPTION_END);
    freeaddrinfo(addr);
    if (!s->daemon) {
        snprintf(err, err_cap,
                 "cannot listen on %s port %d (in use, or not an address of this "
                 "machine?)",
                 cfg->host, cfg->port);
        free_server(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (uint16_t)cfg->port;
    return s;
}

uint16_t http_server_port(const http_server *s) { return s->port; }

const http_config *http_server_config(const http_server *s) { return &s->cfg; }

void http_server_drain(http_server *s) { atomic_store(&s->draining, true); }

bool http_server_draining(const http_server *s) { return atomic_load(&s->draining); }

long http_server_inflight(const http_server *s) { return atomic_load(&s->inflight); }

size_t http_server_cancel_waiting(http_server *s) {
    return http_pool_cancel_waiting(s->pool, cancel);
}

char *http_server_metrics_text(http_server *s, size_t *len) {
    const union MHD_DaemonInfo *conns =
        MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    http_guard_counts cut = http_guard_counters(s->guard);
    http_gauges g = {
        .workers = s->cfg.workers,
        .workers_busy = http_pool_busy(s->pool),
        .queue_waiting = http_pool_waiting(s->pool),
        .queue_limit = s->cfg.queue,
        .inflight = atomic_load(&s->inflight),
        .memory_held = atomic_load(&s->budget.held),
        .memory_limit = s->budget.limit,
        .connections = conns ? conns->num_connections : 0,
        .draining = atomic_load(&s->draining),
        .uptime_s = now_s() - s->started,
        .cut_header_timeout = cut.header_timeouts,
        .cut_slow_body = cut.slow_bodies,
        .cut_evicted = cut.evicted,
    };
    return http_metrics_render(s->metrics, &g, len);
}

bool http_server_stop(http_server *s) {
    if (atomic_load(&s->inflight) > 0) return false;
    MHD_stop_daemon(s->daemon);
    free_server(s);
    return true;
}
