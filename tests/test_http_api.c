// The v1 API over HTTP, black-box: every golden case forward and backward in both tensor forms,
// the request model's bad-request catalog (status, code, server still answering), the limits
// passed through flags and environment, info/health/readiness/metrics, HEAD, OPTIONS, CORS and
// the JSON access log.
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv.h"
#include "server/blas_boot.h"
#include "server/version.h"
#include "tests/harness/http_harness.h"

// Server answers counted by the test, checked against GET /metrics at the end.
static int forward_ok, backward_ok;

static bool healthy(int port) {
    th_reply r;
    bool ok = th_get(&r, port, "/healthz") && r.status == 200;
    th_reply_free(&r);
    return ok;
}

// Posts `request` and checks that every tensor of `expected` named in `names` comes back.
static void check_case(int port, const char *name, const char *form, const char *path,
                       cJSON *request, const cJSON *expected, const char *const *names) {
    char *body = cJSON_PrintUnformatted(request);
    th_reply r;
    th_post(&r, NULL, port, path, body);
    char type[128] = "";
    th_header(&r, "Content-Type", type, sizeof type);
    if (!CHECK(r.status == 200 && strcmp(type, "application/json") == 0,
               "%s %s %s: status %ld type '%s' %.300s", name, path, form, r.status, type, r.body))
        goto done;
    cJSON *doc = cJSON_Parse(r.body);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "meta");
    CHECK(cJSON_IsObject(meta) && cJSON_GetObjectItemCaseSensitive(meta, "elapsed_ms"),
          "%s %s: meta with elapsed_ms", name, form);
    for (int i = 0; names[i]; i++) {
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(expected, names[i]);
        if (!want) continue;
        char why[160] = "";
        CHECK(th_tensor_close(cJSON_GetObjectItemCaseSensitive(doc, names[i]), want,
                              th_tolerance(request), why, sizeof why),
              "%s %s %s %s: %s", name, path, form, names[i], why);
    }
    cJSON_Delete(doc);
    if (strncmp(path, "/v1/conv2d/", 11) == 0) // the routes test_metrics reads back
        *(strstr(path, "forward") ? &forward_ok : &backward_ok) += 1;
done:
    th_reply_free(&r);
    free(body);
}

// Replaces every tensor field of `request` by its nested-array form.
static void nest_tensors(cJSON *request) {
    static const char *const tensors[] = {"x", "w", "b", "dy"};
    for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(request, tensors[i]);
        if (t) cJSON_ReplaceItemInObjectCaseSensitive(request, tensors[i], th_nested(t));
    }
}

// The golden cases of one directory, each sent to its family's routes; returns how many.
static int golden_dir(int port, const char *dir_path) {
    DIR *dir = opendir(dir_path);
    if (!CHECK(dir != NULL, "golden directory %s", dir_path)) return 0;
    int cases = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        if (!strstr(e->d_name, ".json")) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir_path, e->d_name);
        char *text = t_read_file(path, NULL);
        cJSON *golden = cJSON_Parse(text);
        const cJSON *expected = cJSON_GetObjectItemCaseSensitive(golden, "expected");
        const char *name = e->d_name;
        const cJSON *family_item = cJSON_GetObjectItemCaseSensitive(golden, "family");
        const char *family = cJSON_IsString(family_item) ? family_item->valuestring : "conv2d";
        char forward_route[96], backward_route[96], forward_op[64];
        snprintf(forward_route, sizeof forward_route, "/v1/%s/forward", family);
        snprintf(backward_route, sizeof backward_route, "/v1/%s/backward", family);
        snprintf(forward_op, sizeof forward_op, "%s.forward", family);
        static const char *const backward[] = {"dx", "dw", "db", NULL}, *const forward[] = {"y",
                                                                                            NULL};
        for (int nested = 0; nested < 2; nested++) {
            const char *form = nested ? "nested" : "shape+data";
            // Backward as given (with its "op" in the shape+data form, from the URL otherwise).
            cJSON *req = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(golden, "request"), 1);
            if (nested) {
                nest_tensors(req);
                cJSON_DeleteItemFromObjectCaseSensitive(req, "op");
            }
            check_case(port, name, form, backward_route, req, expected, backward);
            // Forward: the request without dy.
            cJSON_DeleteItemFromObjectCaseSensitive(req, "dy");
            cJSON_DeleteItemFromObjectCaseSensitive(req, "op");
            if (!nested) cJSON_AddStringToObject(req, "op", forward_op);
            check_case(port, name, form, forward_route, req, expected, forward);
            cJSON_Delete(req);
        }
        cJSON_Delete(golden);
        free(text);
        cases++;
    }
    closedir(dir);
    return cases;
}

static void test_golden(int port) {
    char family_dir[1024];
    snprintf(family_dir, sizeof family_dir, "%s/family", t_golden_dir());
    int conv2d = golden_dir(port, t_golden_dir()), family = golden_dir(port, family_dir);
    CHECK(conv2d >= 15 && family >= 24, "golden cases found: %d conv2d, %d of the other ops",
          conv2d, family);
}

// The request model's catalog, one mistake per request, each answered with its status and code
// while the server keeps answering.
static void test_bad_requests(int port) {
    static const struct {
        const char *path, *body;
        int status;
        const char *code;
    } bad[] = {
        {"/v1/conv2d/forward", "{\"x\": [[1, 2], [3, 4]], \"w\": [[1", 400, "invalid_json"},
        {"/v1/conv2d/forward", "", 400, "invalid_json"},
        {"/v1/conv2d/forward", "{\"x\": [[1,2],[3,4]], \"w\": [[1]]} trailing", 400,
         "invalid_json"},
        {"/v1/conv2d/forward", "{\"x\": [[1,2],[3,4]], \"w\": [[1]], \"strid\": 1}", 422,
         "unknown_field"},
        {"/v1/conv2d/forward", "{\"x\": [[1,2],[3,4]]}", 422, "missing_field"},
        {"/v1/conv2d/forward", "{\"x\": [[1,2],[3,4]], \"w\": \"ones\"}", 422, "invalid_type"},
        {"/v1/conv2d/forward", "{\"x\": [[1,2],[3]], \"w\": [[1]]}", 422, "ragged_array"},
        {"/v1/conv2d/forward", "{\"x\": {\"shape\": [2,2], \"data\": [1,2,3]}, \"w\": [[1]]}", 422,
         "data_length_mismatch"},
        {"/v1/conv2d/forward", "{\"x\": [[1,2],[3,4]], \"w\": [[1]], \"stride\": 0}", 422,
         "invalid_value"},
        {"/v1/conv2d/forward", "{\"x\": [[1,2],[3,4]], \"w\": [[1,1,1],[1,1,1],[1,1,1]]}", 422,
         "kernel_too_large"},
        {"/v1/conv2d/forward", "{\"x\": [[1,2],[3,4]], \"w\": [[1]], \"dtype\": \"float16\"}", 422,
         "unsupported_dtype"},
        {"/v1/conv2d/forward",
         "{\"op\": \"conv2d.backward\", \"x\": [[1,2],[3,4]], \"w\": [[1]], \"dy\": [[1,1],[1,1]]}",
         422, "op_mismatch"},
        {"/v1/conv2d/backward", "{\"x\": [[1,2],[3,4]], \"w\": [[1]], \"dy\": [[1,1]]}", 422,
         "shape_mismatch"},
        {"/v1/conv2d/backward",
         "{\"x\": [[1,2],[3,4]], \"w\": [[1]], \"dy\": [[1,1],[1,1]], \"outputs\": [\"dz\"]}", 422,
         "unknown_output"},
        {"/v1/conv2d/forward", "{\"x\": [[1e39, 2],[3,4]], \"w\": [[1]], \"dtype\": \"float32\"}",
         422, "value_out_of_range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        th_reply r;
        char code[64];
        th_post(&r, NULL, port, bad[i].path, bad[i].body);
        CHECK(r.status == bad[i].status &&
                  strcmp(th_error_code(&r, code, sizeof code), bad[i].code) == 0,
              "bad request %zu (%s): want %d %s, got %ld %.300s", i, bad[i].body, bad[i].status,
              bad[i].code, r.status, r.body);
        th_reply_free(&r);
        CHECK(healthy(port), "server answers after bad request %zu", i);
    }
}

// The flags reach the request model: tiny element and FLOP limits refuse what defaults take.
static void test_request_limits(void) {
    th_server s;
    const char *const args[] = {"--max-elements", "8", "--max-flops", "20", NULL};
    if (!CHECK(th_server_start(&s, args), "server with tiny limits starts")) return;
    th_reply r;
    char code[64];
    // x has 9 elements (over 8) and needs 18 FLOPs (within 20).
    th_post(&r, NULL, s.port, "/v1/conv2d/forward",
            "{\"x\": [[1,2,3],[4,5,6],[7,8,9]], \"w\": [[1],[1],[1]]}");
    CHECK(r.status == 422 && strcmp(th_error_code(&r, code, sizeof code), "too_many_elements") == 0,
          "--max-elements 8 refuses a 3x3 input: %ld %.200s", r.status, r.body);
    th_reply_free(&r);
    // Every tensor within 8 elements, but y (1x3) takes 3 x 4 multiply-adds: 24 FLOPs.
    th_post(&r, NULL, s.port, "/v1/conv2d/forward",
            "{\"x\": [[1,2,3,4],[5,6,7,8]], \"w\": [[1,1],[1,1]]}");
    CHECK(r.status == 422 && strcmp(th_error_code(&r, code, sizeof code), "too_much_work") == 0,
          "--max-flops 20 refuses 24 FLOPs: %ld %.200s", r.status, r.body);
    th_reply_free(&r);
    CHECK(th_server_stop(&s, 60) == 0, "server exits 0 on SIGTERM");
}

static void test_info_health(int port) {
    th_reply r;
    th_get(&r, port, "/v1/info");
    cJSON *info = cJSON_Parse(r.body);
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(info, "version");
    const cJSON *blas = cJSON_GetObjectItemCaseSensitive(info, "blas");
    const cJSON *core = cJSON_GetObjectItemCaseSensitive(blas, "core");
    const cJSON *limits = cJSON_GetObjectItemCaseSensitive(info, "limits");
    const cJSON *max_body = cJSON_GetObjectItemCaseSensitive(limits, "max_body_bytes");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(info, "ops");
    const cJSON *dtypes = cJSON_GetObjectItemCaseSensitive(info, "dtypes");
    CHECK(r.status == 200 && cJSON_IsString(version) &&
              strcmp(version->valuestring, CONVD_VERSION) == 0,
          "/v1/info version: %.300s", r.body);
    CHECK(cJSON_IsString(core) && strcmp(core->valuestring, blas_core_name()) == 0,
          "/v1/info names the BLAS core this machine loads (%s)", blas_core_name());
    const cJSON *isa = cJSON_GetObjectItemCaseSensitive(info, "isa");
    CHECK(cJSON_IsString(isa) && strcmp(isa->valuestring, conv_isa_name(CONV_ISA_AUTO)) == 0,
          "/v1/info names the kernels' ISA (%s)", conv_isa_name(CONV_ISA_AUTO));
    const cJSON *gemm = cJSON_GetObjectItemCaseSensitive(info, "gemm");
    const bool own_gemm = strcmp(conv_isa_name(CONV_ISA_AUTO), "avx512") == 0;
    CHECK(cJSON_IsString(gemm) &&
              strcmp(gemm->valuestring, own_gemm ? "convd-avx512" : "openblas") == 0,
          "/v1/info names whose GEMM runs (%s under %s)",
          cJSON_IsString(gemm) ? gemm->valuestring : "none", conv_isa_name(CONV_ISA_AUTO));
    // The server was started with CONVD_MAX_BODY in its environment: it shows here.
    CHECK(cJSON_IsNumber(max_body) && max_body->valuedouble == 5 * 1048576.0,
          "CONVD_MAX_BODY=5M reaches /v1/info limits");
    char *ops_text = cJSON_PrintUnformatted(ops), *dtypes_text = cJSON_PrintUnformatted(dtypes);
    CHECK(ops_text && strstr(ops_text, "\"conv2d.forward\"") &&
              strstr(ops_text, "\"conv2d.backward\""),
          "/v1/info ops: %s", ops_text ? ops_text : "(none)");
    CHECK(dtypes_text && strstr(dtypes_text, "\"float32\"") && strstr(dtypes_text, "\"float64\""),
          "/v1/info dtypes: %s", dtypes_text ? dtypes_text : "(none)");
    free(ops_text);
    free(dtypes_text);
    cJSON_Delete(info);
    th_reply_free(&r);

    th_get(&r, port, "/healthz");
    CHECK(r.status == 200 && strcmp(r.body, "{\"status\":\"ok\"}") == 0, "/healthz: %s", r.body);
    th_reply_free(&r);
    th_get(&r, port, "/readyz");
    CHECK(r.status == 200, "/readyz while serving: %ld", r.status);
    th_reply_free(&r);

    char length[32] = "";
    th_http(&r, NULL, port, "HEAD", "/healthz", NULL, NULL, 0, NULL);
    CHECK(r.status == 200 && r.len == 0 && th_header(&r, "Content-Length", length, sizeof length) &&
              atoi(length) == 15,
          "HEAD /healthz: status %ld, no body (%zu bytes), Content-Length %s", r.status, r.len,
          length);
    th_reply_free(&r);

    char allow[64] = "";
    th_http(&r, NULL, port, "OPTIONS", "/v1/conv2d/backward", NULL, NULL, 0, NULL);
    CHECK(r.status == 204 && th_header(&r, "Allow", allow, sizeof allow) &&
              strcmp(allow, "POST, OPTIONS") == 0,
          "OPTIONS: %ld Allow '%s'", r.status, allow);
    th_reply_free(&r);
}

// Exactly the answers this test got back, counted by the server by route and status.
static void test_metrics(int port) {
    th_reply r;
    th_get(&r, port, "/metrics");
    char type[128] = "", line[160];
    th_header(&r, "Content-Type", type, sizeof type);
    CHECK(r.status == 200 && strncmp(type, "text/plain; version=0.0.4", 25) == 0,
          "/metrics: %ld %s", r.status, type);
    snprintf(line, sizeof line,
             "\nconvd_http_requests_total{route=\"/v1/conv2d/forward\",code=\"200\"} %d\n",
             forward_ok);
    CHECK(strstr(r.body, line) != NULL, "/metrics counts %d forward answers", forward_ok);
    snprintf(line, sizeof line,
             "\nconvd_http_requests_total{route=\"/v1/conv2d/backward\",code=\"200\"} %d\n",
             backward_ok);
    CHECK(strstr(r.body, line) != NULL, "/metrics counts %d backward answers", backward_ok);
    static const char *const series[] = {"convd_http_request_duration_seconds_bucket{route=",
                                         "convd_queue_wait_seconds_count",
                                         "convd_inflight_requests 0",
                                         "convd_queue_depth 0",
                                         "convd_draining 0",
                                         "convd_open_connections"};
    for (size_t i = 0; i < sizeof series / sizeof *series; i++)
        CHECK(strstr(r.body, series[i]) != NULL, "/metrics has %s", series[i]);
    th_reply_free(&r);
}

static void test_cors(void) {
    th_server s;
    const char *const args[] = {"--cors-origin", "https://a.example, https://b.example", NULL};
    if (!CHECK(th_server_start(&s, args), "server with CORS starts")) return;
    static const struct {
        const char *origin;
        bool allowed;
    } cases[] = {{"https://b.example", true}, {"https://evil.example", false}};
    for (size_t i = 0; i < 2; i++) {
        char origin[128], got[128] = "", methods[64] = "";
        snprintf(origin, sizeof origin, "Origin: %s", cases[i].origin);
        const char *const headers[] = {origin, "Access-Control-Request-Method: POST", NULL};
        th_reply r;
        th_http(&r, NULL, s.port, "OPTIONS", "/v1/conv2d/forward", NULL, NULL, 0, headers);
        bool has = th_header(&r, "Access-Control-Allow-Origin", got, sizeof got) != NULL;
        CHECK(r.status == 204 && has == cases[i].allowed &&
                  (!has || strcmp(got, cases[i].origin) == 0),
              "preflight from %s: %ld, allow-origin '%s'", cases[i].origin, r.status, got);
        CHECK(th_header(&r, "Access-Control-Allow-Methods", methods, sizeof methods) &&
                  strstr(methods, "POST"),
              "preflight lists the methods: '%s'", methods);
        th_reply_free(&r);
    }
    int status = th_server_stop(&s, 60);
    CHECK(status == 0, "CORS server exits 0 (%d)", status);
}

// Every line of the server's log is one JSON object; each request made one "access" line.
static void test_access_log(const th_server *s) {
    char *log = th_server_log(s);
    int lines = 0, bad = 0, access = 0, computed = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *doc = cJSON_Parse(line);
        const cJSON *event = cJSON_GetObjectItemCaseSensitive(doc, "event");
        lines++;
        bad += !cJSON_IsString(event);
        if (cJSON_IsString(event) && strcmp(event->valuestring, "access") == 0) {
            access++;
            bool fields = cJSON_GetObjectItemCaseSensitive(doc, "status") &&
                          cJSON_GetObjectItemCaseSensitive(doc, "bytes_in") &&
                          cJSON_GetObjectItemCaseSensitive(doc, "bytes_out") &&
                          cJSON_GetObjectItemCaseSensitive(doc, "total_ms") &&
                          cJSON_GetObjectItemCaseSensitive(doc, "method") &&
                          cJSON_GetObjectItemCaseSensitive(doc, "path");
            bad += !fields;
            computed += cJSON_GetObjectItemCaseSensitive(doc, "compute_ms") != NULL &&
                        cJSON_GetObjectItemCaseSensitive(doc, "queue_ms") != NULL;
        }
        cJSON_Delete(doc);
    }
    CHECK(lines > 0 && bad == 0, "log: %d lines, %d not JSON events with their fields", lines, bad);
    CHECK(computed >= forward_ok + backward_ok && access > computed,
          "log: %d access lines, %d with queue and compute times", access, computed);
    free(log);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setenv("CONVD_MAX_BODY", "5M", 1);
    th_server s;
    bool up = th_server_start(&s, NULL);
    unsetenv("CONVD_MAX_BODY");
    if (CHECK(up, "server starts (%s)", th_convd_bin())) {
        test_golden(s.port);
        test_bad_requests(s.port);
        test_info_health(s.port);
        test_metrics(s.port);
        CHECK(th_server_stop(&s, 60) == 0, "server drains and exits 0 on SIGTERM");
        test_access_log(&s);
        remove(s.log_path);
    }
    test_request_limits();
    test_cors();
    curl_global_cleanup();
    return t_finish("test_http_api");
}
