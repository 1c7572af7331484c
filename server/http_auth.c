#include "server/http_auth.h"

#include <ctype.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api_errors.h"

#define DIGEST_LEN 32
// Shorter keys can be guessed: 16 random characters of base64 are 96 bits.
#define MIN_KEY_LEN 16
#define MAX_KEY_LEN 512
#define HASH_PREFIX "sha256:"

// A key's token bucket: `tokens` requests may start now; it refills at the rate up to the burst.
typedef struct {
    unsigned char digest[DIGEST_LEN];
    double tokens;
    double updated; // CLOCK_MONOTONIC seconds of the last refill
} auth_key;

struct http_auth {
    auth_key *keys;
    size_t n_keys;
    double rate; // requests per second per key; 0 = no limit
    double burst;
    pthread_mutex_t lock; // the buckets
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static bool sha256(unsigned char out[DIGEST_LEN], const char *text, size_t len) {
    return gnutls_hash_fast(GNUTLS_DIG_SHA256, text, len, out) == 0;
}

// Every byte is looked at whatever the contents, so the time taken tells nothing about where
// two digests differ.
static bool same_digest(const unsigned char *a, const unsigned char *b) {
    unsigned char diff = 0;
    for (size_t i = 0; i < DIGEST_LEN; i++) diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

// RFC 6750's token68: what a client can send after "Bearer ".
static bool token_char(char c) { return isalnum((unsigned char)c) || strchr("-._~+/=", c) != NULL; }

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// One line of the key file (trimmed, not blank, not a comment) into `key`. False with the
// reason in `why` when it is not a key.
static bool parse_key_line(auth_key *key, const char *line, size_t len, char *why, size_t cap) {
    size_t prefix = strlen(HASH_PREFIX);
    if (len >= prefix && strncasecmp(line, HASH_PREFIX, prefix) == 0) {
        if (len - prefix != 2 * DIGEST_LEN) {
            snprintf(why, cap, "'sha256:' must be followed by 64 hex digits, not %zu characters",
                     len - prefix);
            return false;
        }
        for (size_t i = 0; i < DIGEST_LEN; i++) {
            int hi = hex_value(line[prefix + 2 * i]), lo = hex_value(line[prefix + 2 * i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(why, cap, "'sha256:' must be followed by hex digits only");
                return false;
            }
            key->digest[i] = (unsigned char)(hi << 4 | lo);
        }
        return true;
    }
    if (len < MIN_KEY_LEN || len > MAX_KEY_LEN) {
        snprintf(why, cap, "a key must have %d to %d characters, this one has %zu", MIN_KEY_LEN,
                 MAX_KEY_LEN, len);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!token_char(line[i])) {
            snprintf(why, cap,
                     "a key may hold letters, digits and -._~+/= only (what a Bearer token "
                     "can carry)");
            return false;
        }
    }
    if (!sha256(key->digest, line, len)) {
        snprintf(why, cap, "SHA-256 is not available from GnuTLS");
        return false;
    }
    return true;
}

// Reads every key of the file at `path`. False with the reason in `err`.
static bool load_keys(http_auth *a, const char *path, char *err, size_t err_cap) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_cap, "--api-keys %s: %s", path, strerror(errno));
        return false;
    }
    char line[MAX_KEY_LEN + 64];
    size_t cap = 0;
    bool ok = true;
    for (int number = 1; ok && fgets(line, sizeof line, f); number++) {
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            snprintf(err, err_cap, "--api-keys %s line %d: longer than %d characters", path, number,
                     MAX_KEY_LEN);
            ok = false;
            break;
        }
        const char *start = line;
        while (isspace((unsigned char)*start)) start++;
        len = strlen(start);
        while (len > 0 && isspace((unsigned char)start[len - 1])) len--;
        if (len == 0 || start[0] == '#') continue;
        if (a->n_keys == cap) {
            cap = cap ? 2 * cap : 8;
            auth_key *grown = realloc(a->keys, cap * sizeof *grown);
            if (!grown) {
                snprintf(err, err_cap, "--api-keys %s: out of memory", path);
                ok = false;
                break;
            }
            a->keys = grown;
        }
        char why[160];
        auth_key *key = &a->keys[a->n_keys];
        memset(key, 0, sizeof *key);
        if (!parse_key_line(key, start, len, why, sizeof why)) {
            snprintf(err, err_cap, "--api-keys %s line %d: %s", path, number, why);
            ok = false;
        }
        a->n_keys += ok;
    }
    memset(line, 0, sizeof line); // the last key read, in plain text
    if (ok && ferror(f)) {
        snprintf(err, err_cap, "--api-keys %s: %s", path, strerror(errno));
        ok = false;
    }
    fclose(f);
    if (ok && a->n_keys == 0) {
        snprintf(err, err_cap, "--api-keys %s holds no key: every compute request would be refused",
                 path);
        ok = false;
    }
    return ok;
}

http_auth *http_auth_create(const char *keys_path, double rate, int burst, char *err,
                            size_t err_cap) {
    if (rate > 0 && !*keys_path) {
        snprintf(err, err_cap,
                 "--rate-limit is per API key and needs --api-keys (limit anonymous clients "
                 "at the load balancer)");
        return NULL;
    }
    http_auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    a->rate = rate;
    a->burst = burst > 0 ? burst : fmax(1, ceil(rate));
    if (*keys_path && !load_keys(a, keys_path, err, err_cap)) {
        http_auth_free(a);
        return NULL;
    }
    double start = now_s();
    for (size_t i = 0; i < a->n_keys; i++) {
        a->keys[i].tokens = a->burst;
        a->keys[i].updated = start;
    }
    return a;
}

void http_auth_free(http_auth *a) {
    if (!a) return;
    pthread_mutex_destroy(&a->lock);
    free(a->keys);
    free(a);
}

// The key a request presents, or NULL when its Authorization header carries no Bearer token.
static auth_key *find_key(http_auth *a, const char *authorization) {
    static const char scheme[] = "Bearer";
    size_t n = sizeof scheme - 1;
    if (strncasecmp(authorization, scheme, n) != 0 || authorization[n] != ' ') return NULL;
    const char *token = authorization + n;
    while (*token == ' ') token++;
    size_t len = strlen(token);
    while (len > 0 && (token[len - 1] == ' ' || token[len - 1] == '\t')) len--;
    unsigned char digest[DIGEST_LEN];
    if (len == 0 || !sha256(digest, token, len)) return NULL;
    auth_key *found = NULL;
    for (size_t i = 0; i < a->n_keys; i++) // no early exit: every key costs the same time
        if (same_digest(digest, a->keys[i].digest)) found = &a->keys[i];
    return found;
}

// Takes one request from the key's bucket. False with the seconds until the next one when the
// bucket is empty.
static bool take_token(http_auth *a, auth_key *key, int *retry_after_s) {
    pthread_mutex_lock(&a->lock);
    double now = now_s();
    key->tokens = fmin(a->burst, key->tokens + (now - key->updated) * a->rate);
    key->updated = now;
    bool ok = key->tokens >= 1;
    if (ok)
        key->tokens -= 1;
    else
        *retry_after_s = (int)ceil((1 - key->tokens) / a->rate);
    pthread_mutex_unlock(&a->lock);
    return ok;
}

bool http_auth_admit(http_auth *a, const char *authorization, api_response *out,
                     int *retry_after_s) {
    if (a->n_keys == 0) return true;
    auth_key *key = find_key(a, authorization);
    if (!key) {
        api_error_refuse(out, API_E_UNAUTHORIZED, "", "%s",
                         *authorization
                              ? "the API key of this request is not valid; send "
                                "'Authorization: Bearer <key>' with a key of this server"
                              : "this server needs an API key: send 'Authorization: Bearer <key>'");
        return false;
    }
    if (a->rate > 0 && !take_token(a, key, retry_after_s)) {
        api_error_refuse(out, API_E_RATE_LIMITED, "",
                         "this API key has used its %g requests per second (bursts of %g); "
                         "retry after the Retry-After delay",
                         a->rate, a->burst);
        return false;
    }
    return true;
}

void http_auth_headers(struct MHD_Response *resp, int status, int retry_after_s) {
    if (status == 401) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"convd\"");
    } else if (status == 429) {
        char seconds[16];
        snprintf(seconds, sizeof seconds, "%d", retry_after_s > 0 ? retry_after_s : 1);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
    }
}
