// http_handlers: the handlers that convd's route table (server/http_routes.c) names for the
// api/codec doors: the v1 routes' body formats (JSON and safetensors, either answering in the
// format Accept picks), the Open Inference Protocol v2 routes, and GET /openapi.yaml. Each is a
// thin adapter: the work is in api/codec/.
#ifndef HTTP_HANDLERS_H
#define HTTP_HANDLERS_H

#include "server/http_router.h"

// Body format lists for compute routes. The v1 list takes application/json (the default when no
// Content-Type is sent) and application/octet-stream (safetensors); the v2 list takes
// application/json (the default: Triton's client sends none) and application/octet-stream,
// both read as v2 bodies (JSON, then binary tensors when Inference-Header-Content-Length says),
// and application/x-www-form-urlencoded, what curl -d sends.
extern const http_format http_handlers_v1_formats[];
extern const http_format http_handlers_v2_formats[];

// GET /v2, /v2/health/live, /v2/health/ready (503 while draining).
void http_handlers_v2_server(api_response *out, http_server *srv, const char *op);
void http_handlers_v2_live(api_response *out, http_server *srv, const char *op);
void http_handlers_v2_ready(api_response *out, http_server *srv, const char *op);
// GET /v2/models/{model} and /v2/models/{model}/ready (503 while draining), the model of the
// route's op.
void http_handlers_v2_model(api_response *out, http_server *srv, const char *op);
void http_handlers_v2_model_ready(api_response *out, http_server *srv, const char *op);

// GET /openapi.yaml: api/openapi.yaml, embedded in the binary when it is built.
void http_handlers_openapi(api_response *out, http_server *srv, const char *op);

// GET /: the playground (server/playground.html, embedded in the binary when it is built), a
// page that computes layers and grades answers through this server's API.
void http_handlers_playground(api_response *out, http_server *srv, const char *op);

#endif
