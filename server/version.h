// version: the release of convd, as `convd --version`, GET /v1/info and GET /v2 report it. A
// header of its own so that what reports it need not include anything else.
#ifndef VERSION_H
#define VERSION_H

#define CONVD_VERSION "0.1.0"

#endif
