#include "server/http_router.h"

#include <string.h>

const http_route *http_router_find(const http_route *routes, size_t n, const char *path,
                                   size_t *index) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(routes[i].path, path) == 0) {
            *index = i;
            return &routes[i];
        }
    *index = n;
    return NULL;
}

const char *http_router_allow(const http_route *r) {
    return r->methods & HTTP_POST ? "POST, OPTIONS" : "GET, HEAD, OPTIONS";
}
