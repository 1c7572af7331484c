// http_routes: what convd answers, as one table: each path with its methods and its handler
// (the GET routes here and in server/http_handlers.h) or its op and body formats. Adding an
// endpoint or a body format is one entry here; http_server, given the table through its config,
// does the rest (limits, admission, methods, CORS, logging, metrics).
#ifndef HTTP_ROUTES_H
#define HTTP_ROUTES_H

#include <stddef.h>

#include "server/http_router.h"

extern const http_route http_routes[];
extern const size_t http_n_routes;

#endif
