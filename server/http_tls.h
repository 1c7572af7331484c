// http_tls: HTTPS straight from convd, for deployments without an ingress or proxy that ends
// TLS: the PEM certificate chain and private key given by --tls-cert and --tls-key are read at
// start and handed to libmicrohttpd, which serves TLS 1.2 and 1.3 through GnuTLS.
#ifndef HTTP_TLS_H
#define HTTP_TLS_H

#include <microhttpd.h>
#include <stddef.h>

typedef struct http_tls http_tls;

// Reads and checks (GnuTLS parses them, and the key must match the certificate) the files at
// `cert_path` and `key_path`; both "" = plain HTTP. Returns NULL with the reason in `err` when
// only one is given, a file cannot be read, or the pair is not usable. The caller frees the
// result with http_tls_free, after the daemon using it has stopped.
http_tls *http_tls_load(const char *cert_path, const char *key_path, char *err, size_t err_cap);

void http_tls_free(http_tls *t);

// MHD_USE_TLS when serving HTTPS, else 0: to be or-ed into MHD_start_daemon's flags.
unsigned http_tls_flags(const http_tls *t);

// The daemon options for MHD_OPTION_ARRAY (certificate, key, protocol versions), ending with
// MHD_OPTION_END; only MHD_OPTION_END for plain HTTP. Valid while `t` lives.
const struct MHD_OptionItem *http_tls_options(const http_tls *t);

#endif
