#include "server/http_routes.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_errors.h"
#include "api/grade/grade_json.h"
#include "core/conv.h"
#include "server/blas_boot.h"
#include "server/http_handlers.h"
#include "server/http_server.h"
#include "server/version.h"

static const char json_type[] = "application/json";

// Serialises and frees `doc` into `out` (status 200 unless changed after).
static void reply_json(api_response *out, int status, cJSON *doc) {
    out->status = status;
    out->content_type = json_type;
    out->body = doc ? cJSON_PrintUnformatted(doc) : NULL;
    out->len = out->body ? strlen(out->body) : 0;
    cJSON_Delete(doc);
}

static void reply_status(api_response *out, const char *status) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "status", status);
    reply_json(out, 200, doc);
}

static void get_healthz(api_response *out, http_server *srv, const char *op) {
    reply_status(out, "ok");
}

static void get_readyz(api_response *out, http_server *srv, const char *op) {
    if (http_server_draining(srv))
        api_error_refuse(out, API_E_OVERLOADED, "",
                         "the server is shutting down and takes no new work; send requests "
                         "to another instance");
    else
        reply_status(out, "ready");
}

static void get_metrics(api_response *out, http_server *srv, const char *op) {
    out->body = http_server_metrics_text(srv, &out->len);
    if (!out->body) {
        api_error_refuse(out, API_E_OUT_OF_MEMORY, "", "out of memory for the metrics; retry");
        return;
    }
    out->status = 200;
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

// Adds `value` to the string array `list` unless it is there already.
static void add_unique(cJSON *list, const char *value) {
    const cJSON *item;
    cJSON_ArrayForEach(item, list) if (strcmp(item->valuestring, value) == 0) return;
    cJSON_AddItemToArray(list, cJSON_CreateString(value));
}

static void get_info(api_response *out, http_server *srv, const char *op) {
    const http_config *cfg = http_server_config(srv);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "name", "convd");
    cJSON_AddStringToObject(doc, "version", CONVD_VERSION);
    cJSON *blas = cJSON_AddObjectToObject(doc, "blas");
    cJSON_AddStringToObject(blas, "library", "OpenBLAS");
    cJSON_AddStringToObject(blas, "core", blas_core_name());
    cJSON_AddStringToObject(blas, "core_source", blas_core_source());
    cJSON_AddNumberToObject(blas, "threads_per_call", 1);
    // The hand-vectorised loops' ISA (CONVD_ISA or the best this CPU runs).
    cJSON_AddStringToObject(doc, "isa", conv_isa_name(CONV_ISA_AUTO));
    // Whose GEMM the passes run: convd's own under AVX-512, else the BLAS core above.
    cJSON_AddStringToObject(doc, "gemm", conv_gemm_name(CONV_ISA_AUTO));
    cJSON *threads = cJSON_AddObjectToObject(doc, "threads");
    cJSON_AddNumberToObject(threads, "cores", cfg->cores);
    cJSON_AddNumberToObject(threads, "workers", cfg->workers);
    cJSON_AddNumberToObject(threads, "io_threads", cfg->io_threads);
    cJSON_AddStringToObject(threads, "per_request", "max(1, cores / busy workers)");
    cJSON *limits = cJSON_AddObjectToObject(doc, "limits");
    cJSON_AddNumberToObject(limits, "max_body_bytes", (double)cfg->max_body);
    cJSON_AddNumberToObject(limits, "max_memory_bytes", (double)cfg->max_memory);
    cJSON_AddNumberToObject(limits, "max_elements", (double)cfg->api.max_elements);
    cJSON_AddNumberToObject(limits, "max_flops", (double)cfg->api.max_flops);
    cJSON_AddNumberToObject(limits, "workspace_cap_bytes", (double)cfg->api.workspace_cap);
    cJSON_AddNumberToObject(limits, "queue", cfg->queue);
    cJSON_AddNumberToObject(limits, "max_connections", cfg->max_connections);
    cJSON_AddNumberToObject(limits, "timeout_s", cfg->timeout_s);
    cJSON *ops = cJSON_AddArrayToObject(doc, "ops");
    cJSON *types = cJSON_AddArrayToObject(doc, "content_types");
    cJSON *routes = cJSON_AddArrayToObject(doc, "routes");
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const http_route *r = &cfg->routes[i];
        char route[160];
        snprintf(route, sizeof route, "%s %s", r->methods & HTTP_POST ? "POST" : "GET", r->path);
        cJSON_AddItemToArray(routes, cJSON_CreateString(route));
        if (r->op) add_unique(ops, r->op);
        for (const http_format *c = r->formats; c && c->media_type; c++)
            add_unique(types, c->media_type);
    }
    cJSON *dtypes = cJSON_AddArrayToObject(doc, "dtypes");
    cJSON_AddItemToArray(dtypes, cJSON_CreateString("float32"));
    cJSON_AddItemToArray(dtypes, cJSON_CreateString("float64"));
    reply_json(out, 200, doc);
}

// The grading routes take the v1 JSON of a problem and a submission (docs/GRADING.md).
static void check_json(api_response *out, const http_body *b, const char *op,
                       const api_options *opt) {
    grade_json_check(out, b->data, b->len, op, opt);
}
static void problem_json(api_response *out, const http_body *b, const char *op,
                         const api_options *opt) {
    grade_json_problem(out, b->data, b->len, op, opt);
}
static const http_format check_formats[] = {{json_type, check_json}, {NULL, NULL}};
static const http_format problem_formats[] = {{json_type, problem_json}, {NULL, NULL}};

// An op's v2 model: its metadata, readiness and infer routes ("conv1d", "forward" is the model
// conv1d_forward of op conv1d.forward); and both models of a family.
#define V2_MODEL(family, pass)                                                                    \
    {"/v2/models/" family "_" pass, HTTP_GET, http_handlers_v2_model, family "." pass, NULL},      \
        {"/v2/models/" family "_" pass "/ready", HTTP_GET, http_handlers_v2_model_ready,           \
         family "." pass, NULL},                                                                   \
        {"/v2/models/" family "_" pass "/infer", HTTP_POST, NULL, family "." pass,                 \
         http_handlers_v2_formats}
#define V2_MODELS(family) V2_MODEL(family, "forward"), V2_MODEL(family, "backward")

const http_route http_routes[] = {
    {"/v1/conv2d/forward", HTTP_POST, NULL, "conv2d.forward", http_handlers_v1_formats},
    {"/v1/conv2d/backward", HTTP_POST, NULL, "conv2d.backward", http_handlers_v1_formats},
    {"/v1/conv1d/forward", HTTP_POST, NULL, "conv1d.forward", http_handlers_v1_formats},
    {"/v1/conv1d/backward", HTTP_POST, NULL, "conv1d.backward", http_handlers_v1_formats},
    {"/v1/conv3d/forward", HTTP_POST, NULL, "conv3d.forward", http_handlers_v1_formats},
    {"/v1/conv3d/backward", HTTP_POST, NULL, "conv3d.backward", http_handlers_v1_formats},
    {"/v1/conv_transpose1d/forward", HTTP_POST, NULL, "conv_transpose1d.forward",
     http_handlers_v1_formats},
    {"/v1/conv_transpose1d/backward", HTTP_POST, NULL, "conv_transpose1d.backward",
     http_handlers_v1_formats},
    {"/v1/conv_transpose3d/forward", HTTP_POST, NULL, "conv_transpose3d.forward",
     http_handlers_v1_formats},
    {"/v1/conv_transpose3d/backward", HTTP_POST, NULL, "conv_transpose3d.backward",
     http_handlers_v1_formats},
    {"/v1/conv_transpose2d/forward", HTTP_POST, NULL, "conv_transpose2d.forward",
     http_handlers_v1_formats},
    {"/v1/conv_transpose2d/backward", HTTP_POST, NULL, "conv_transpose2d.backward",
     http_handlers_v1_formats},
    {"/v1/conv2d/check", HTTP_POST, NULL, "conv2d.check", check_formats},
    {"/v1/conv2d/problem", HTTP_POST, NULL, "conv2d.problem", problem_formats},
    {"/healthz", HTTP_GET, get_healthz, NULL, NULL},
    {"/readyz", HTTP_GET, get_readyz, NULL, NULL},
    {"/v1/info", HTTP_GET, get_info, NULL, NULL},
    {"/metrics", HTTP_GET, get_metrics, NULL, NULL},
    {"/openapi.yaml", HTTP_GET, http_handlers_openapi, NULL, NULL},
    {"/", HTTP_GET, http_handlers_playground, NULL, NULL},
    {"/v2", HTTP_GET, http_handlers_v2_server, NULL, NULL},
    {"/v2/health/live", HTTP_GET, http_handlers_v2_live, NULL, NULL},
    {"/v2/health/ready", HTTP_GET, http_handlers_v2_ready, NULL, NULL},
    V2_MODELS("conv2d"),
    V2_MODELS("conv1d"),
    V2_MODELS("conv3d"),
    V2_MODELS("conv_transpose1d"),
    V2_MODELS("conv_transpose2d"),
    V2_MODELS("conv_transpose3d"),
};
#undef V2_MODELS
#undef V2_MODEL
const size_t http_n_routes = sizeof http_routes / sizeof *http_routes;
