// http_router: what a route is and how a request finds its own. A route is either a GET route
// answered on the connection thread (health, info, metrics: cheap, never blocking), or a compute
// route whose body goes to a compute worker through the body format its Content-Type names.
// The routes themselves are a table the server is given in its config (http_config.routes;
// convd's is server/http_routes.c), so the server knows no handler by name.
#ifndef HTTP_ROUTER_H
#define HTTP_ROUTER_H

#include <stddef.h>

#include "api/api.h"

typedef struct http_server http_server;

enum { HTTP_GET = 1, HTTP_HEAD = 2, HTTP_POST = 4, HTTP_OPTIONS = 8 };

// A request body as a compute worker receives it. Header values are "" when absent.
typedef struct {
    const char *data;
    size_t len;
    const char *content_type;
    const char *accept;
    const char *header_length; // Inference-Header-Content-Length (v2 binary tensors); "" or NULL
} http_body;

// Computes the answer to one body for the route's `op`; runs on a compute worker, with
// `opt->threads` set by the pool. Must always fill `out` (the request model never fails to).
typedef void (*http_body_fn)(api_response *out, const http_body *body, const char *op,
                             const api_options *opt);

// A body format: the media type of Content-Type (parameters such as charset ignored).
typedef struct {
    const char *media_type;
    http_body_fn run;
} http_format;

// Answers a GET route; runs on a connection thread, so it must be quick. `op` is the route's
// (NULL for most GET routes; a v2 model's metadata routes name their op).
typedef void (*http_get_fn)(api_response *out, http_server *srv, const char *op);

typedef struct {
    const char *path;           // matched exactly (the query string is not part of it)
    unsigned methods;           // HTTP_GET (HEAD implied) or HTTP_POST; OPTIONS always answered
    http_get_fn get;            // GET routes
    const char *op;             // compute routes: the op given to the request model; GET
                                // routes: given to `get` (a v2 model's op)
    const http_format *formats; // compute routes: accepted formats, ending with {NULL, NULL};
                                // the first also serves requests that send no Content-Type
} http_route;

// The route for `path` among `routes[0..n)`, its index stored in *index (n when none matches);
// NULL when none matches.
const http_route *http_router_find(const http_route *routes, size_t n, const char *path,
                                   size_t *index);

// "GET, HEAD, OPTIONS" or "POST, OPTIONS": the Allow header of a route.
const char *http_router_allow(const http_route *r);

#endif
