// Access control and HTTPS from the outside (issue 7), against convd processes of the test's
// own: API keys (plain and sha256: lines; missing, wrong, near-miss and digest-as-key tokens
// refused with 401 + WWW-Authenticate in the v1 and v2 error styles; health, metadata and
// CORS preflight open; keep-alive across a refusal), per-key token buckets (429 + Retry-After,
// buckets independent, refilled at the configured rate, counted against the bucket formula),
// the start-up errors of bad key files and certificates, and HTTPS with a self-signed
// certificate made here by openssl (verified by libcurl's OpenSSL, so a second TLS
// implementation than the server's GnuTLS).
#include "server/blas_boot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/harness/http_harness.h"

#define PLAIN_KEY "plain-key-0123456789abcdef"
#define HASHED_KEY "hashed-key-ZYXWVUTSRQ-9876"
#define THIRD_KEY "third-key-for-the-sustained-rate"
#define RATE 2
#define BURST 3

static char dir[64];        // this test's files: keys, certificate, private keys
static char keys_path[128]; // PLAIN_KEY as itself, HASHED_KEY as sha256:, THIRD_KEY as itself
static char hashed_line[80];
static char *forward_body; // a golden case's forward request
static cJSON *expected_y;  // PyTorch's y for it

static void path_in_dir(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

static bool write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    bool ok = f && fputs(text, f) >= 0;
    return f && fclose(f) == 0 && ok;
}

// sha256sum's digest of `text`: a reference independent of the server's GnuTLS.
static bool sha256_hex(char out[65], const char *text) {
    char command[256];
    snprintf(command, sizeof command, "printf '%%s' '%s' | sha256sum", text);
    FILE *p = popen(command, "r");
    bool ok = p && fscanf(p, "%64s", out) == 1 && strlen(out) == 64;
    return p && pclose(p) == 0 && ok;
}

static bool load_golden_forward(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/cs231n_forward.json", t_golden_dir());
    char *text = t_read_file(path, NULL);
    cJSON *golden = cJSON_Parse(text);
    free(text);
    cJSON *request = cJSON_DetachItemFromObjectCaseSensitive(golden, "request");
    cJSON_DeleteItemFromObjectCaseSensitive(request, "dy");
    cJSON_DeleteItemFromObjectCaseSensitive(request, "op");
    expected_y = cJSON_DetachItemFromObjectCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(golden, "expected"), "y");
    forward_body = request ? cJSON_PrintUnformatted(request) : NULL;
    cJSON_Delete(request);
    cJSON_Delete(golden);
    return forward_body && expected_y;
}

// True when a 200 answer's y is PyTorch's.
static bool y_is_right(const th_reply *r) {
    cJSON *doc = cJSON_Parse(r->body);
    char why[160] = "no y";
    const cJSON *y = cJSON_GetObjectItemCaseSensitive(doc, "y");
    bool ok = r->status == 200 && y && th_tensor_close(y, expected_y, 1e-10, why, sizeof why);
    cJSON_Delete(doc);
    return ok;
}

// POST of the golden forward request with `authorization` ("Authorization: ..." or NULL).
static bool post_with(th_reply *r, CURL *curl, int port, const char *path,
                      const char *authorization) {
    const char *const extra[] = {authorization, NULL};
    return th_http(r, curl, port, "POST", path, "application/json", forward_body,
                   strlen(forward_body), authorization ? extra : NULL);
}

static void test_keys(int port) {
    th_reply r;
    char code[64], header[256];
    post_with(&r, NULL, port, "/v1/conv2d/forward", NULL);
    CHECK(r.status == 401 && strcmp(th_error_code(&r, code, sizeof code), "unauthorized") == 0 &&
              strstr(r.body, "Authorization: Bearer"),
          "no key: 401 unauthorized naming the header (got %ld %s)", r.status, r.body);
    CHECK(th_header(&r, "WWW-Authenticate", header, sizeof header) &&
              strncmp(header, "Bearer realm=", 13) == 0,
          "a 401 carries WWW-Authenticate: Bearer (got '%s')",
          th_header(&r, "WWW-Authenticate", header, sizeof header) ? header : "");
    th_reply_free(&r);

    char sha_token[96];
    snprintf(sha_token, sizeof sha_token, "Authorization: Bearer %s", hashed_line + 7);
    const char *const refused[] = {
        "Authorization: Bearer wrong-key-0123456789abcdef",
        "Authorization: Bearer " PLAIN_KEY "x",
        "Authorization: Bearer plain-key-0123456789abcde", // one character short
        "Authorization: Basic cGxhaW4ta2V5LTAxMjM0NTY3ODlhYmNkZWY=",
        "Authorization: " PLAIN_KEY,
        "Authorization: Bearer",
        sha_token, // the file's digest is not itself a key
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        post_with(&r, NULL, port, "/v1/conv2d/forward", refused[i]);
        CHECK(r.status == 401 &&
                  strcmp(th_error_code(&r, code, sizeof code), "unauthorized") == 0 &&
                  th_header(&r, "WWW-Authenticate", header, sizeof header),
              "'%s': 401 (got %ld %s)", refused[i], r.status, r.body);
        th_reply_free(&r);
    }

    const char *const accepted[] = {
        "Authorization: Bearer " PLAIN_KEY,
        "Authorization: bearer   " HASHED_KEY "  ", // scheme in any case, spaces around
        "Authorization: Bearer " THIRD_KEY,
    };
    for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++) {
        post_with(&r, NULL, port, "/v1/conv2d/forward", accepted[i]);
        CHECK(y_is_right(&r), "'%s': 200 with PyTorch's y (got %ld %.200s)", accepted[i], r.status,
              r.body);
        th_reply_free(&r);
    }

    // Every compute route is closed, in its own error style.
    post_with(&r, NULL, port, "/v1/conv2d/check", NULL);
    CHECK(r.status == 401, "/v1/conv2d/check without a key: 401 (got %ld)", r.status);
    th_reply_free(&r);
    post_with(&r, NULL, port, "/v2/models/conv2d_forward/infer", NULL);
    cJSON *doc = cJSON_Parse(r.body);
    CHECK(r.status == 401 && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "error")),
          "v2 infer without a key: 401 in the v2 style {\"error\": \"...\"} (got %ld %s)", r.status,
          r.body);
    cJSON_Delete(doc);
    th_reply_free(&r);

    // Probes, metadata and CORS preflights carry no credentials and stay open.
    const char *const open_paths[] = {"/healthz", "/readyz", "/v1/info", "/metrics",
                                      "/v2/health/ready"};
    for (size_t i = 0; i < sizeof open_paths / sizeof *open_paths; i++) {
        th_get(&r, port, open_paths[i]);
        CHECK(r.status == 200, "GET %s without a key: 200 (got %ld)", open_paths[i], r.status);
        th_reply_free(&r);
    }
    th_http(&r, NULL, port, "OPTIONS", "/v1/conv2d/forward", NULL, NULL, 0, NULL);
    CHECK(r.status == 204, "OPTIONS preflight without a key: 204 (got %ld)", r.status);
    th_reply_free(&r);

    // A refusal keeps the connection: the next request with the key reuses it.
    CURL *curl = curl_easy_init();
    post_with(&r, curl, port, "/v1/conv2d/forward", NULL);
    long first = r.status, connects = -1;
    th_reply_free(&r);
    post_with(&r, curl, port, "/v1/conv2d/forward", "Authorization: Bearer " PLAIN_KEY);
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
    CHECK(first == 401 && y_is_right(&r) && connects == 0,
          "401 then 200 on one kept-alive connection (%ld, %ld, new connections %ld)", first,
          r.status, connects);
    th_reply_free(&r);
    curl_easy_cleanup(curl);
}

static void test_rate_limit(int port) {
    th_reply r;
    char code[64], header[64];
    const char *const key_a = "Authorization: Bearer " PLAIN_KEY;
    for (int i = 0; i < BURST; i++) {
        post_with(&r, NULL, port, "/v1/conv2d/forward", key_a);
        CHECK(y_is_right(&r), "burst request %d of %d: 200 (got %ld)", i + 1, BURST, r.status);
        th_reply_free(&r);
    }
    post_with(&r, NULL, port, "/v1/conv2d/forward", key_a);
    const char *retry = th_header(&r, "Retry-After", header, sizeof header);
    int retry_s = retry ? atoi(retry) : 0;
    CHECK(r.status == 429 && strcmp(th_error_code(&r, code, sizeof code), "rate_limited") == 0 &&
              strstr(r.body, "2 requests per second") && retry_s == 1,
          "past the burst: 429 rate_limited naming the rate, Retry-After 1 (got %ld, '%s', %s)",
          r.status, retry ? retry : "", r.body);
    th_reply_free(&r);

    post_with(&r, NULL, port, "/v1/conv2d/forward", "Authorization: Bearer " HASHED_KEY);
    CHECK(y_is_right(&r), "another key has its own bucket: 200 (got %ld)", r.status);
    th_reply_free(&r);
    post_with(&r, NULL, port, "/v1/conv2d/forward", NULL);
    CHECK(r.status == 401, "no key while a bucket is empty: still 401 (got %ld)", r.status);
    th_reply_free(&r);
    th_get(&r, port, "/healthz");
    CHECK(r.status == 200, "health is not rate-limited (got %ld)", r.status);
    th_reply_free(&r);

    th_sleep_ms(retry_s * 1000 + 50);
    post_with(&r, NULL, port, "/v1/conv2d/forward", key_a);
    CHECK(y_is_right(&r), "after Retry-After the key is served again (got %ld)", r.status);
    th_reply_free(&r);

    // A client sending as fast as it can for `seconds` gets what the bucket holds plus the
    // refill: BURST + RATE * seconds, within one request either way (timing at the edges).
    const double seconds = 2.0;
    CURL *curl = curl_easy_init();
    int served = 0, limited = 0, other = 0;
    double start = th_now();
    while (th_now() - start < seconds) {
        post_with(&r, curl, port, "/v1/conv2d/forward", "Authorization: Bearer " THIRD_KEY);
        served += r.status == 200;
        limited += r.status == 429;
        other += r.status != 200 && r.status != 429;
        th_reply_free(&r);
    }
    curl_easy_cleanup(curl);
    double expected = BURST + RATE * seconds;
    CHECK(fabs(served - expected) <= 1 && limited > 10 && other == 0,
          "sustained: %d served (bucket formula: %.0f), %d limited, %d other", served, expected,
          limited, other);
}

// Starts convd with `args`, expecting it to refuse to start with a log naming `reason`.
static void expect_refusal(const char *const *args, const char *reason, const char *what) {
    th_server s;
    bool started = th_server_start(&s, args);
    char *log = th_server_log(&s);
    CHECK(!started && strstr(log, reason), "%s: refused to start, saying '%s' (log: %s)", what,
          reason, log);
    if (started) th_server_stop(&s, 10);
    free(log);
    remove(s.log_path);
}

static void test_start_errors(void) {
    char path[160], missing[160], cert[160], key[160], other_key[160];
    path_in_dir(missing, sizeof missing, "no-such-file");
    path_in_dir(cert, sizeof cert, "cert.pem");
    path_in_dir(key, sizeof key, "key.pem");
    path_in_dir(other_key, sizeof other_key, "other-key.pem");
    path_in_dir(path, sizeof path, "bad-keys");
    const struct {
        const char *contents, *reason, *what;
    } files[] = {
        {"# comments and blanks only\n\n   \n", "holds no key", "a key file without keys"},
        {PLAIN_KEY "\nshort-key\n", "line 2: a key must have 16 to 512", "a short key"},
        {"sha256:0123456789abcdef\n", "64 hex digits", "a digest of the wrong length"},
        {"sha256:zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
         "hex digits only", "a digest that is not hex"},
        {"key with spaces in it 0123\n", "letters, digits", "a key a Bearer token cannot carry"},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        write_text(path, files[i].contents);
        const char *const args[] = {"--api-keys", path, NULL};
        expect_refusal(args, files[i].reason, files[i].what);
    }
    remove(path);
    const char *const no_file[] = {"--api-keys", missing, NULL};
    expect_refusal(no_file, "No such file", "a missing key file");
    const char *const rate_alone[] = {"--rate-limit", "5", NULL};
    expect_refusal(rate_alone, "needs --api-keys", "a rate limit without keys");
    const char *const cert_alone[] = {"--tls-cert", cert, NULL};
    expect_refusal(cert_alone, "both --tls-cert and --tls-key", "a certificate without its key");
    const char *const wrong_key[] = {"--tls-cert", cert, "--tls-key", other_key, NULL};
    expect_refusal(wrong_key, "matching the certificate", "a key that is not the certificate's");
    const char *const key_as_cert[] = {"--tls-cert", keys_path, "--tls-key", key, NULL};
    expect_refusal(key_as_cert, "--tls-cert", "a certificate file that holds no certificate");
}

// HTTPS request through libcurl (OpenSSL), trusting only `cafile` (NULL: the system's CAs).
// `tls_version` is a CURL_SSLVERSION_* value (with its MAX_ part). Returns the CURLcode.
static CURLcode https_post(th_reply *r, CURL *curl, int port, const char *cafile, long tls_version,
                           const char *authorization) {
    memset(r, 0, sizeof *r);
    r->body = calloc(1, 1);
    r->cap = 1;
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/v1/conv2d/forward", port);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (authorization) headers = curl_slist_append(headers, authorization);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, forward_body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, th_collect_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, th_collect_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, tls_version);
    curl_easy_setopt(curl, CURLOPT_CAINFO, cafile);
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    return rc;
}

static void test_tls(int port, const char *cert) {
    th_reply r;
    CURL *curl = curl_easy_init();
    const char *const key = "Authorization: Bearer " PLAIN_KEY;
    CURLcode rc = https_post(&r, curl, port, cert, CURL_SSLVERSION_DEFAULT, key);
    CHECK(rc == CURLE_OK && y_is_right(&r),
          "HTTPS verified against the self-signed certificate: PyTorch's y (%s, %ld)",
          curl_easy_strerror(rc), r.status);
    th_reply_free(&r);
    long connects = -1;
    int right = 0;
    for (int i = 0; i < 20; i++) {
        https_post(&r, curl, port, cert, CURL_SSLVERSION_DEFAULT, key);
        right += y_is_right(&r);
        th_reply_free(&r);
    }
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
    CHECK(right == 20 && connects == 0,
          "20 more over one kept-alive TLS connection: %d right, "
          "%ld new connections",
          right, connects);
    curl_easy_cleanup(curl);

    const struct {
        long version;
        const char *name;
    } versions[] = {{CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2, "TLS 1.2"},
                    {CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3, "TLS 1.3"}};
    for (size_t i = 0; i < sizeof versions / sizeof *versions; i++) {
        curl = curl_easy_init();
        rc = https_post(&r, curl, port, cert, versions[i].version, key);
        CHECK(rc == CURLE_OK && y_is_right(&r), "%s only: answered (%s)", versions[i].name,
              curl_easy_strerror(rc));
        th_reply_free(&r);
        curl_easy_cleanup(curl);
    }

    curl = curl_easy_init();
    rc = https_post(&r, curl, port, cert, CURL_SSLVERSION_DEFAULT, NULL);
    CHECK(rc == CURLE_OK && r.status == 401, "HTTPS without a key: 401 (got %ld)", r.status);
    th_reply_free(&r);
    curl_easy_cleanup(curl);
    curl = curl_easy_init();
    rc = https_post(&r, curl, port, NULL, CURL_SSLVERSION_DEFAULT, key);
    CHECK(rc == CURLE_PEER_FAILED_VERIFICATION,
          "a client that does not trust the certificate refuses it (%s)", curl_easy_strerror(rc));
    th_reply_free(&r);
    curl_easy_cleanup(curl);

    bool answered = th_get(&r, port, "/healthz");
    CHECK(!answered || r.status == 0, "plain HTTP to the HTTPS port gets no HTTP answer (%ld)",
          r.status);
    th_reply_free(&r);
}

// The test's folder: a key file and, made by openssl, a self-signed certificate for 127.0.0.1
// with its key and one more unrelated key.
static bool make_files(char *cert, size_t cap) {
    snprintf(dir, sizeof dir, "/tmp/convd-auth-XXXXXX");
    if (!mkdtemp(dir)) return false;
    char digest[65], text[512], command[1024];
    if (!sha256_hex(digest, HASHED_KEY)) return false;
    snprintf(hashed_line, sizeof hashed_line, "sha256:%s", digest);
    snprintf(text, sizeof text, "# convd test keys\n\n  %s  \n%s\n%s\n", PLAIN_KEY, hashed_line,
             THIRD_KEY);
    path_in_dir(keys_path, sizeof keys_path, "keys");
    path_in_dir(cert, cap, "cert.pem");
    snprintf(command, sizeof command,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost "
             "-keyout %s/key.pem -out %s 2>/dev/null && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
             "-out %s/other-key.pem 2>/dev/null",
             dir, cert, dir);
    return write_text(keys_path, text) && system(command) == 0;
}

static void remove_files(void) {
    const char *const names[] = {"keys", "cert.pem", "key.pem", "other-key.pem"};
    char path[160];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        path_in_dir(path, sizeof path, names[i]);
        remove(path);
    }
    rmdir(dir);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char cert[160], key[160], rate[16], burst[16];
    if (!CHECK(load_golden_forward(), "golden case cs231n_forward in %s", t_golden_dir()) ||
        !CHECK(make_files(cert, sizeof cert), "key file and openssl certificate in %s", dir)) {
        curl_global_cleanup();
        return t_finish("test_http_auth");
    }
    path_in_dir(key, sizeof key, "key.pem");
    snprintf(rate, sizeof rate, "%d", RATE);
    snprintf(burst, sizeof burst, "%d", BURST);

    th_server s;
    const char *const keys_only[] = {"--api-keys", keys_path, NULL};
    if (CHECK(th_server_start(&s, keys_only), "server with API keys starts")) {
        test_keys(s.port);
        CHECK(th_server_stop(&s, 30) == 0, "keys server drains and exits 0");
        remove(s.log_path);
    }
    // --metrics-auth: /metrics (which shows the live budget and queue) needs a key too; health
    // stays open for probes.
    const char *const metrics_locked[] = {"--api-keys", keys_path, "--metrics-auth", "on", NULL};
    if (CHECK(th_server_start(&s, metrics_locked), "server with --metrics-auth starts")) {
        th_reply r;
        const char *const with_key[] = {"Authorization: Bearer " PLAIN_KEY, NULL};
        CHECK(th_get(&r, s.port, "/metrics") && r.status == 401, "/metrics without a key: %ld",
              r.status);
        th_reply_free(&r);
        CHECK(th_http(&r, NULL, s.port, "GET", "/metrics", NULL, NULL, 0, with_key) &&
                  r.status == 200 && strstr(r.body, "convd_inflight_memory_bytes"),
              "/metrics with a key: %ld", r.status);
        th_reply_free(&r);
        CHECK(th_get(&r, s.port, "/healthz") && r.status == 200, "/healthz stays open: %ld",
              r.status);
        th_reply_free(&r);
        CHECK(th_server_stop(&s, 30) == 0, "metrics-auth server drains and exits 0");
        remove(s.log_path);
    }
    const char *const limited[] = {"--api-keys", keys_path, "--rate-limit", rate, "--rate-burst",
                                   burst,        NULL};
    if (CHECK(th_server_start(&s, limited), "server with a rate limit starts")) {
        test_rate_limit(s.port);
        CHECK(th_server_stop(&s, 30) == 0, "rate-limited server drains and exits 0");
        remove(s.log_path);
    }
    const char *const https[] = {"--api-keys", keys_path, "--tls-cert", cert,
                                 "--tls-key",  key,       NULL};
    if (CHECK(th_server_start(&s, https), "HTTPS server starts")) {
        test_tls(s.port, cert);
        CHECK(th_server_stop(&s, 30) == 0, "HTTPS server drains and exits 0");
        remove(s.log_path);
    }
    test_start_errors();

    remove_files();
    free(forward_body);
    cJSON_Delete(expected_y);
    curl_global_cleanup();
    return t_finish("test_http_auth");
}
