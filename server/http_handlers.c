#include "server/http_handlers.h"

#include <stdlib.h>
#include <string.h>

#include "api/api_errors.h"
#include "api/codec/codec.h"
#include "api/codec/codec_v2.h"
#include "server/http_server.h"
#include "server/version.h"

// api/openapi.yaml, assembled into the binary (the path is the build's working directory, the
// repository root; the Makefile names the file as a prerequisite of this object).
__asm__(".pushsection .rodata\n"
        "http_handlers_openapi_start:\n"
        ".incbin \"api/openapi.yaml\"\n"
        "http_handlers_openapi_end:\n"
        ".popsection\n");
extern const char http_handlers_openapi_start[], http_handlers_openapi_end[];

// server/playground.html, assembled the same way: the page works with no file beside the binary.
__asm__(".pushsection .rodata\n"
        "http_handlers_playground_start:\n"
        ".incbin \"server/playground.html\"\n"
        "http_handlers_playground_end:\n"
        ".popsection\n");
extern const char http_handlers_playground_start[], http_handlers_playground_end[];

static void run_v1_json(api_response *out, const http_body *body, const char *op,
                        const api_options *opt) {
    codec_v1_run(out, CODEC_JSON, body->data, body->len, body->accept, op, opt);
}

static void run_v1_safetensors(api_response *out, const http_body *body, const char *op,
                               const api_options *opt) {
    codec_v1_run(out, CODEC_BINARY, body->data, body->len, body->accept, op, opt);
}

static void run_v2(api_response *out, const http_body *body, const char *op,
                   const api_options *opt) {
    codec_v2_infer(out, body->data, body->len, body->header_length, op, opt);
}

const http_format http_handlers_v1_formats[] = {
    {codec_json_type, run_v1_json},
    {codec_binary_type, run_v1_safetensors},
    {NULL, NULL},
};

// curl -d labels a body application/x-www-form-urlencoded, and KServe's own documented curl
// recipes post v2 JSON that way: taken as what it is.
const http_format http_handlers_v2_formats[] = {
    {codec_json_type, run_v2},
    {codec_binary_type, run_v2},
    {"application/x-www-form-urlencoded", run_v2},
    {NULL, NULL},
};

// A copy of `text` as the answer (answers are freed by the server).
static void reply_text(api_response *out, int status, const char *type, const char *text,
                       size_t len) {
    out->body = malloc(len + 1);
    if (!out->body) {
        api_error_refuse(out, API_E_OUT_OF_MEMORY, "", "out of memory for the answer; retry");
        return;
    }
    memcpy(out->body, text, len);
    out->body[len] = '\0';
    out->len = len;
    out->status = status;
    out->content_type = type;
}

static bool refuse_if_draining(api_response *out, http_server *srv) {
    if (!http_server_draining(srv)) return false;
    api_error_refuse(out, API_E_OVERLOADED, "",
                     "the server is shutting down and takes no new work; send requests to "
                     "another instance");
    return true;
}

void http_handlers_v2_server(api_response *out, http_server *srv, const char *op) {
    codec_v2_server_metadata(out, CONVD_VERSION);
}

void http_handlers_v2_live(api_response *out, http_server *srv, const char *op) {
    static const char live[] = "{\"live\":true}";
    reply_text(out, 200, codec_json_type, live, sizeof live - 1);
}

void http_handlers_v2_ready(api_response *out, http_server *srv, const char *op) {
    static const char ready[] = "{\"ready\":true}";
    if (!refuse_if_draining(out, srv)) reply_text(out, 200, codec_json_type, ready, sizeof ready - 1);
}

void http_handlers_v2_model(api_response *out, http_server *srv, const char *op) {
    codec_v2_model_metadata(out, op);
}

void http_handlers_v2_model_ready(api_response *out, http_server *srv, const char *op) {
    if (!refuse_if_draining(out, srv)) codec_v2_model_ready(out, op);
}

void http_handlers_openapi(api_response *out, http_server *srv, const char *op) {
    reply_text(out, 200, "application/yaml", http_handlers_openapi_start,
               (size_t)(http_handlers_openapi_end - http_handlers_openapi_start));
}

void http_handlers_playground(api_response *out, http_server *srv, const char *op) {
    reply_text(out, 200, "text/html; charset=utf-8", http_handlers_playground_start,
               (size_t)(http_handlers_playground_end - http_handlers_playground_start));
}
