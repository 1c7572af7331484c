#include "server/http_tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// TLS 1.0 and 1.1 are deprecated (RFC 8996); the rest of GnuTLS's NORMAL set stays.
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
// A PEM chain or key far past this is not one.
#define MAX_PEM_BYTES (1 << 20)

struct http_tls {
    char *cert, *key; // PEM text, NUL-terminated
    size_t key_len;
    struct MHD_OptionItem options[4];
};

// The whole file at `path` as a NUL-terminated string; NULL with the reason in `err`.
static char *read_pem(const char *path, const char *flag, size_t *len, char *err, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "%s %s: %s", flag, path, strerror(errno));
        return NULL;
    }
    char *text = malloc(MAX_PEM_BYTES + 1);
    size_t n = text ? fread(text, 1, MAX_PEM_BYTES + 1, f) : 0;
    bool failed = !text || ferror(f) || n == 0 || n > MAX_PEM_BYTES;
    fclose(f);
    if (failed) {
        snprintf(err, cap, "%s %s: %s", flag, path,
                 !text    ? "out of memory"
                 : n == 0 ? "empty or unreadable"
                          : "larger than 1 MiB: not a PEM file");
        free(text);
        return NULL;
    }
    text[n] = '\0';
    *len = n;
    return text;
}

// GnuTLS's own verdict on the pair, so a wrong file is named at start rather than as a
// failed handshake on the first connection.
static bool check_pair(const http_tls *t, const char *cert_path, const char *key_path, char *err,
                       size_t cap) {
    gnutls_certificate_credentials_t creds;
    if (gnutls_certificate_allocate_credentials(&creds) != GNUTLS_E_SUCCESS) {
        snprintf(err, cap, "TLS: out of memory");
        return false;
    }
    gnutls_datum_t cert = {(unsigned char *)t->cert, (unsigned)strlen(t->cert)};
    gnutls_datum_t key = {(unsigned char *)t->key, (unsigned)t->key_len};
    int rc = gnutls_certificate_set_x509_key_mem2(creds, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_certificate_free_credentials(creds);
    if (rc < 0) {
        snprintf(err, cap,
                 "--tls-cert %s with --tls-key %s: %s (both must be PEM, the key "
                 "unencrypted and matching the certificate)",
                 cert_path, key_path, gnutls_strerror(rc));
        return false;
    }
    return true;
}

http_tls *http_tls_load(const char *cert_path, const char *key_path, char *err, size_t err_cap) {
    http_tls *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    t->options[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    if (!*cert_path && !*key_path) return t;
    size_t cert_len;
    if (!*cert_path || !*key_path) {
        snprintf(err, err_cap, "HTTPS needs both --tls-cert and --tls-key (%s is missing)",
                 *cert_path ? "--tls-key" : "--tls-cert");
    } else if ((t->cert = read_pem(cert_path, "--tls-cert", &cert_len, err, err_cap)) &&
               (t->key = read_pem(key_path, "--tls-key", &t->key_len, err, err_cap)) &&
               check_pair(t, cert_path, key_path, err, err_cap)) {
        t->options[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, t->cert};
        t->options[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, t->key};
        t->options[2] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES};
        t->options[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
        return t;
    }
    http_tls_free(t);
    return NULL;
}

void http_tls_free(http_tls *t) {
    if (!t) return;
    if (t->key) explicit_bzero(t->key, t->key_len); // the private key leaves no copy behind
    free(t->key);
    free(t->cert);
    free(t);
}

unsigned http_tls_flags(const http_tls *t) { return t->cert ? MHD_USE_TLS : 0; }

const struct MHD_OptionItem *http_tls_options(const http_tls *t) { return t->options; }
