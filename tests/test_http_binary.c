// The binary front doors over HTTP, black-box against a convd process of the test's own:
// every golden case as safetensors on the v1 routes (both answer formats) and through the v2
// routes (JSON with no Content-Type as Triton's client sends it, binary inputs and outputs with
// Inference-Header-Content-Length), the other families' cases to their own v2
// models; malformed safetensors and v2 bodies answered 400/422 with
// the server still answering; the v2 GET routes (every model's) and v2-style
// errors for the server's own
// refusals; gzip/deflate request bodies (the size limit after decompression) and compressed
// answers; GET /openapi.yaml; what /v1/info lists.
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "server/blas_boot.h"
#include "tests/harness/binary_harness.h"
#include "tests/harness/http_harness.h"

#define MAX_BODY (4 << 20) // the test server's --max-body: decompression past it is a 413

static const char octet[] = "application/octet-stream";

// POST `body` with optional Content-Type (NULL: none) and extra headers.
static void post(th_reply *r, int port, const char *path, const char *type, const bh_bytes *body,
                 const char *const *extra) {
    th_http(r, NULL, port, "POST", path, type, body->data, body->len, extra);
}

static bool has_header(const th_reply *r, const char *name, const char *value) {
    char got[256];
    return th_header(r, name, got, sizeof got) && strcmp(got, value) == 0;
}

// ---------------------------------------------------------------- v1 safetensors

static void test_v1_golden(int port, const bh_golden *cases, int n) {
    bh_bytes body = {0}, meta = {0};
    for (int c = 0; c < n; c++) {
        const bh_golden *g = &cases[c];
        bh_tensor in[4];
        int count = bh_golden_inputs(in, g);
        bh_golden_metadata(&meta, g, NULL);
        bh_safetensors(&body, in, count, g->f64, meta.data, 8);
        for (int json = 0; json < 2; json++) {
            const char *accept[] = {json ? "Accept: application/json" : NULL, NULL};
            th_reply r;
            post(&r, port, "/v1/conv2d/backward", octet, &body, accept);
            char type[64] = "";
            th_header(&r, "Content-Type", type, sizeof type);
            if (!CHECK(r.status == 200 && strcmp(type, json ? "application/json" : octet) == 0,
                       "%s safetensors (%s answer): %ld %s %.200s", g->name,
                       json ? "JSON" : "binary", r.status, type, json ? r.body : ""))
                goto next;
            cJSON *doc = json ? cJSON_Parse(r.body) : NULL;
            for (int o = 1; o < 4; o++) {
                if (!g->out[o].rank) continue;
                bh_tensor got = {0};
                cJSON *header = NULL;
                if (json) bh_from_json(&got, bh_outputs[o], cJSON_GetObjectItemCaseSensitive(doc, bh_outputs[o]));
                else header = bh_read_safetensors(&got, r.body, r.len, bh_outputs[o], NULL);
                char why[160];
                CHECK(bh_close(&got, &g->out[o], bh_tolerance(g), why, sizeof why),
                      "%s over HTTP %s: %s", g->name, bh_outputs[o], why);
                bh_tensor_free(&got);
                cJSON_Delete(header);
            }
            cJSON_Delete(doc);
        next:
            th_reply_free(&r);
        }
    }
    bh_free(&body);
    bh_free(&meta);
}

static void test_v1_malformed(int port) {
    static const uint64_t lengths[] = {1ull << 32, (1ull << 63) + 1, 1ull << 63, 41, 3};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        bh_bytes body = {0};
        bh_put(&body, &lengths[i], 8);
        bh_puts(&body, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
        th_reply r;
        char code[64];
        post(&r, port, "/v1/conv2d/forward", octet, &body, NULL);
        CHECK(r.status == 400 && strcmp(th_error_code(&r, code, sizeof code), "invalid_json") == 0,
              "header length %llu over HTTP: %ld %.200s", (unsigned long long)lengths[i], r.status,
              r.body);
        th_reply_free(&r);
        bh_free(&body);
    }
    // JSON in, binary out on request.
    const char *accept[] = {"Accept: application/octet-stream", NULL};
    bh_bytes json = {0};
    bh_puts(&json, "{\"x\": [[1, 2], [3, 4]], \"w\": [[2]]}");
    th_reply r;
    post(&r, port, "/v1/conv2d/forward", "application/json", &json, accept);
    bh_tensor y = {0};
    cJSON *header = bh_read_safetensors(&y, r.body, r.len, "y", NULL);
    CHECK(r.status == 200 && y.n == 4 && y.data[3] == 8, "JSON in, safetensors out: %ld",
          r.status);
    bh_tensor_free(&y);
    cJSON_Delete(header);
    th_reply_free(&r);
    bh_free(&json);
}

// ---------------------------------------------------------------- v2

static void test_v2_golden(int port, const bh_golden *cases, int n) {
    const bh_v2_form forms[] = {{false, false, 0, false}, {true, false, 1, false},
                                {true, false, 2, true}};
    for (int c = 0; c < n; c++)
        for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
            const bh_golden *g = &cases[c];
            bh_bytes body = {0};
            size_t header_len;
            bh_v2_body(&body, &header_len, g, true, forms[f], "golden");
            char length[64];
            snprintf(length, sizeof length, "Inference-Header-Content-Length: %zu", header_len);
            const char *extra[] = {forms[f].binary_in ? length : NULL, NULL};
            th_reply r;
            // As Triton's client: no Content-Type, JSON or binary; to the family's model.
            char route[96];
            snprintf(route, sizeof route, "/v2/models/%s_backward/infer", g->family);
            post(&r, port, route, NULL, &body, extra);
            bh_tensor outs[4];
            char names[4][8], got_length[32] = "";
            size_t json_len = 0;
            cJSON *doc = r.status == 200 ? bh_v2_read(r.body, r.len, outs, names, &json_len) : NULL;
            bool binary = forms[f].binary_out != 0;
            th_header(&r, "Inference-Header-Content-Length", got_length, sizeof got_length);
            if (CHECK(doc && has_header(&r, "Content-Type", binary ? octet : "application/json") &&
                          (binary ? (size_t)atol(got_length) == json_len : !*got_length),
                      "%s v2 form %zu: %ld, header length '%s' for %zu: %.200s", g->name, f,
                      r.status, got_length, json_len, r.status == 200 ? "" : r.body)) {
                for (int o = 1; o < 4; o++) {
                    bool named = forms[f].pick ? o == 1 || o == 2 : true;
                    if (!g->out[o].rank || !named) continue;
                    char why[160];
                    CHECK(bh_close(&outs[o], &g->out[o], bh_tolerance(g), why, sizeof why),
                          "%s v2 form %zu %s: %s", g->name, f, bh_outputs[o], why);
                }
                for (int o = 0; o < 4; o++) bh_tensor_free(&outs[o]);
            }
            cJSON_Delete(doc);
            th_reply_free(&r);
            bh_free(&body);
        }
}

// A v2 error: the status, and a body {"error": "<string>"}.
static void expect_v2_error(const th_reply *r, long status, const char *words, const char *what) {
    cJSON *doc = cJSON_Parse(r->body);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(doc, "error");
    CHECK(r->status == status && cJSON_IsString(error) && strstr(error->valuestring, words),
          "%s: want %ld {\"error\": \"...%s...\"}, got %ld %.300s", what, status, words, r->status,
          r->body);
    cJSON_Delete(doc);
}

static void test_v2_routes(int port) {
    static const struct {
        const char *path, *holds;
    } gets[] = {
        {"/v2", "\"binary_tensor_data\""},
        {"/v2/health/live", "{\"live\":true}"},
        {"/v2/health/ready", "{\"ready\":true}"},
        {"/v2/models/conv2d_forward", "\"name\":\"conv2d_forward\""},
        {"/v2/models/conv2d_backward", "{\"name\":\"dy\""},
        {"/v2/models/conv2d_forward/ready", "\"ready\":true"},
        {"/v2/models/conv2d_backward/ready", "\"ready\":true"},
    };
    for (size_t i = 0; i < sizeof gets / sizeof *gets; i++) {
        th_reply r;
        th_get(&r, port, gets[i].path);
        CHECK(r.status == 200 && strstr(r.body, gets[i].holds) &&
                  has_header(&r, "Content-Type", "application/json"),
              "GET %s: %ld %.200s", gets[i].path, r.status, r.body);
        th_reply_free(&r);
    }
    // Every family's models, with x of the family's rank in their metadata.
    static const struct {
        const char *family, *x_shape;
    } models[] = {
        {"conv1d", "[-1,-1,-1]"},           {"conv3d", "[-1,-1,-1,-1,-1]"},
        {"conv_transpose1d", "[-1,-1,-1]"}, {"conv_transpose2d", "[-1,-1,-1,-1]"},
        {"conv_transpose3d", "[-1,-1,-1,-1,-1]"},
    };
    for (size_t i = 0; i < sizeof models / sizeof *models; i++)
        for (int pass = 0; pass < 2; pass++) {
            char path[96], holds[96];
            const char *pass_name = pass ? "backward" : "forward";
            snprintf(path, sizeof path, "/v2/models/%s_%s", models[i].family, pass_name);
            snprintf(holds, sizeof holds, "{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":%s}",
                     models[i].x_shape);
            th_reply r;
            th_get(&r, port, path);
            CHECK(r.status == 200 && strstr(r.body, holds), "GET %s: %ld %.200s", path, r.status,
                  r.body);
            th_reply_free(&r);
            strcat(path, "/ready");
            th_get(&r, port, path);
            CHECK(r.status == 200 && strstr(r.body, "\"ready\":true"), "GET %s: %ld %.200s", path,
                  r.status, r.body);
            th_reply_free(&r);
        }
    th_reply r;
    th_get(&r, port, "/v2/models/resnet50/infer");
    expect_v2_error(&r, 404, "there is no", "an unknown model");
    th_reply_free(&r);
    th_get(&r, port, "/v2/models/conv2d_forward/infer");
    expect_v2_error(&r, 405, "not allowed", "GET on infer");
    th_reply_free(&r);
    bh_bytes body = {0};
    bh_puts(&body, "{\"inputs\":[]}");
    post(&r, port, "/v2/models/conv2d_forward/infer", "text/plain", &body, NULL);
    expect_v2_error(&r, 415, "Content-Type", "a text/plain infer");
    th_reply_free(&r);
    // Framing errors from the header.
    static const struct {
        const char *header, *words;
    } framings[] = {
        {"Inference-Header-Content-Length: 1000", "has only"},
        {"Inference-Header-Content-Length: -1", "byte count"},
        {"Inference-Header-Content-Length: 5", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof framings / sizeof *framings; i++) {
        const char *extra[] = {framings[i].header, NULL};
        post(&r, port, "/v2/models/conv2d_forward/infer", octet, &body, extra);
        expect_v2_error(&r, 400, framings[i].words, framings[i].header);
        th_reply_free(&r);
    }
    body.len = 0;
    bh_puts(&body, "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,2],\"datatype\":\"FP32\","
                   "\"parameters\":{\"binary_data_size\":16}}]}");
    post(&r, port, "/v2/models/conv2d_forward/infer", NULL, &body, NULL);
    expect_v2_error(&r, 400, "only 0 bytes", "binary_data_size without binary data");
    th_reply_free(&r);
    bh_free(&body);
    CHECK(th_get(&r, port, "/healthz") && r.status == 200, "still answering after bad bodies");
    th_reply_free(&r);
}

// ---------------------------------------------------------------- content codings

// zlib's own compression of `in` (window bits 31 gzip, 15 zlib, -15 raw deflate).
static void pack(bh_bytes *out, const bh_bytes *in, int window_bits) {
    z_stream z = {0};
    deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
    out->len = 0;
    bh_put(out, NULL, 0);
    size_t cap = deflateBound(&z, in->len);
    bh_bytes room = {0};
    room.data = malloc(cap + 1);
    z.next_in = (Bytef *)in->data;
    z.avail_in = (uInt)in->len;
    z.next_out = (Bytef *)room.data;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    bh_put(out, room.data, cap - z.avail_out);
    deflateEnd(&z);
    free(room.data);
}

static bool unpack(bh_bytes *out, const char *in, size_t len, int window_bits) {
    z_stream z = {0};
    inflateInit2(&z, window_bits);
    out->len = 0;
    char chunk[65536];
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    int rc;
    do {
        z.next_out = (Bytef *)chunk;
        z.avail_out = sizeof chunk;
        rc = inflate(&z, Z_NO_FLUSH);
        bh_put(out, chunk, sizeof chunk - z.avail_out);
    } while (rc == Z_OK);
    inflateEnd(&z);
    return rc == Z_STREAM_END;
}

static void test_codings(int port) {
    bh_bytes json = {0}, packed = {0}, plain = {0};
    bh_puts(&json, "{\"x\": [[1, 2], [3, 4]], \"w\": [[2]]}");
    static const struct {
        const char *coding;
        int window;
    } codings[] = {{"gzip", 31}, {"deflate", 15}, {"deflate", -15}, {"x-gzip", 31}};
    for (size_t i = 0; i < sizeof codings / sizeof *codings; i++) {
        pack(&packed, &json, codings[i].window);
        char header[64];
        snprintf(header, sizeof header, "Content-Encoding: %s", codings[i].coding);
        const char *extra[] = {header, NULL};
        th_reply r;
        post(&r, port, "/v1/conv2d/forward", "application/json", &packed, extra);
        CHECK(r.status == 200 && strstr(r.body, "[2.0,4.0,6.0,8.0]"), "%s body (window %d): %ld %.200s",
              codings[i].coding, codings[i].window, r.status, r.body);
        th_reply_free(&r);
    }
    // Corrupt, cut, unknown codings; a bomb past the limit after decompression.
    pack(&packed, &json, 31);
    packed.data[packed.len / 2] ^= 0x55;
    const char *gzip[] = {"Content-Encoding: gzip", NULL};
    th_reply r;
    char code[64];
    post(&r, port, "/v1/conv2d/forward", "application/json", &packed, gzip);
    CHECK(r.status == 400 && strstr(r.body, "not valid gzip"), "corrupt gzip: %ld %.200s",
          r.status, r.body);
    th_reply_free(&r);
    pack(&packed, &json, 31);
    packed.len -= 6;
    post(&r, port, "/v1/conv2d/forward", "application/json", &packed, gzip);
    CHECK(r.status == 400 && strstr(r.body, "cut short"), "cut gzip: %ld %.200s", r.status, r.body);
    th_reply_free(&r);
    const char *brotli[] = {"Content-Encoding: br", NULL};
    post(&r, port, "/v1/conv2d/forward", "application/json", &json, brotli);
    CHECK(r.status == 415 &&
              strcmp(th_error_code(&r, code, sizeof code), "unsupported_media_type") == 0,
          "br: %ld %.200s", r.status, r.body);
    th_reply_free(&r);
    bh_bytes bomb = {0};
    for (int i = 0; i < MAX_BODY / 64 + 1; i++)
        bh_puts(&bomb, "                                                                ");
    pack(&packed, &bomb, 31);
    post(&r, port, "/v1/conv2d/forward", "application/json", &packed, gzip);
    CHECK(r.status == 413 && strstr(r.body, "decompresses to more than"),
          "%zu compressed bytes of %zu: %ld %.200s", packed.len, bomb.len, r.status, r.body);
    th_reply_free(&r);
    pack(&packed, &bomb, 31);
    post(&r, port, "/v2/models/conv2d_forward/infer", NULL, &packed, gzip);
    expect_v2_error(&r, 413, "decompresses to more than", "a v2 bomb");
    th_reply_free(&r);
    bh_free(&bomb);

    // Compressed answers: JSON, safetensors, and a v2 binary answer whose header length is of
    // the plain body.
    static const char *const accepts[] = {"Accept-Encoding: gzip", "Accept-Encoding: deflate",
                                          "Accept-Encoding: br;q=1, gzip;q=0.5",
                                          "Accept-Encoding: gzip;q=0, deflate"};
    static const int windows[] = {31, 15, 31, 15};
    json.len = 0;
    bh_puts(&json, "{\"x\": {\"shape\": [40, 40], \"data\": [");
    for (int i = 0; i < 1600; i++) bh_printf(&json, "%s%d", i ? "," : "", i % 17);
    bh_puts(&json, "]}, \"w\": [[1, 2], [3, 4]]}");
    for (size_t i = 0; i < sizeof accepts / sizeof *accepts; i++) {
        const char *extra[] = {accepts[i], NULL};
        post(&r, port, "/v1/conv2d/forward", "application/json", &json, extra);
        bool packed_ok = unpack(&plain, r.body, r.len, windows[i]);
        CHECK(r.status == 200 &&
                  has_header(&r, "Content-Encoding", windows[i] == 31 ? "gzip" : "deflate") &&
                  has_header(&r, "Vary", "Accept-Encoding") && packed_ok &&
                  strstr(plain.data, "\"shape\":[39, 39]"),
              "%s: %ld, %zu bytes", accepts[i], r.status, r.len);
        th_reply_free(&r);
    }
    const char *identity[] = {"Accept-Encoding: identity", NULL};
    post(&r, port, "/v1/conv2d/forward", "application/json", &json, identity);
    CHECK(r.status == 200 && !th_header(&r, "Content-Encoding", code, sizeof code),
          "identity: not compressed");
    th_reply_free(&r);
    bh_bytes v2 = {0};
    bh_puts(&v2, "{\"parameters\":{\"binary_data_output\":true},\"inputs\":["
                 "{\"name\":\"x\",\"shape\":[40,40],\"datatype\":\"FP32\",\"data\":[");
    for (int i = 0; i < 1600; i++) bh_printf(&v2, "%s%d", i ? "," : "", i % 17);
    bh_puts(&v2, "]},{\"name\":\"w\",\"shape\":[2,2],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}");
    const char *v2_gzip[] = {"Accept-Encoding: gzip", "Content-Encoding: gzip", NULL};
    pack(&packed, &v2, 31);
    post(&r, port, "/v2/models/conv2d_forward/infer", NULL, &packed, v2_gzip);
    char length[32] = "";
    th_header(&r, "Inference-Header-Content-Length", length, sizeof length);
    bool packed_ok = unpack(&plain, r.body, r.len, 31);
    bh_tensor outs[4];
    char names[4][8];
    size_t json_len = 0;
    cJSON *doc = packed_ok ? bh_v2_read(plain.data, plain.len, outs, names, &json_len) : NULL;
    CHECK(r.status == 200 && has_header(&r, "Content-Encoding", "gzip") && doc &&
              (size_t)atol(length) == json_len && outs[0].n == 39 * 39 && outs[0].data[0] == 48,
          "v2 gzip both ways: %ld, header length '%s' vs %zu", r.status, length, json_len);
    if (doc) bh_tensor_free(&outs[0]);
    cJSON_Delete(doc);
    th_reply_free(&r);
    bh_free(&v2);
    bh_free(&json);
    bh_free(&packed);
    bh_free(&plain);
}

static void test_openapi_and_info(int port) {
    th_reply r;
    th_get(&r, port, "/openapi.yaml");
    size_t len = 0;
    char *file = t_read_file("api/openapi.yaml", &len);
    CHECK(r.status == 200 && has_header(&r, "Content-Type", "application/yaml") && file &&
              r.len == len && memcmp(r.body, file, len) == 0,
          "GET /openapi.yaml serves api/openapi.yaml (%ld, %zu vs %zu bytes)", r.status, r.len,
          len);
    free(file);
    th_reply_free(&r);
    th_get(&r, port, "/v1/info");
    CHECK(r.status == 200 && strstr(r.body, "application/octet-stream") &&
              strstr(r.body, "POST /v2/models/conv2d_backward/infer"),
          "info lists the binary type and the v2 routes: %.300s", r.body);
    th_reply_free(&r);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static bh_golden cases[32], family[48];
    int n = bh_golden_load(cases, 32);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/family", t_golden_dir());
    int n_family = bh_golden_load_from(dir, family, 48);
    CHECK(n >= 8 && n_family >= 24, "golden cases: %d conv2d, %d of the other families", n,
          n_family);
    th_server s;
    char max_body[32];
    snprintf(max_body, sizeof max_body, "%d", MAX_BODY);
    const char *args[] = {"--max-body", max_body, NULL};
    if (CHECK(th_server_start(&s, args), "convd serve starts")) {
        test_v1_golden(s.port, cases, n);
        test_v1_malformed(s.port);
        test_v2_golden(s.port, cases, n);
        test_v2_golden(s.port, family, n_family);
        test_v2_routes(s.port);
        test_codings(s.port);
        test_openapi_and_info(s.port);
        CHECK(th_server_stop(&s, 30) == 0, "convd drains and exits 0");
    }
    for (int c = 0; c < n; c++) bh_golden_free(&cases[c]);
    for (int c = 0; c < n_family; c++) bh_golden_free(&family[c]);
    curl_global_cleanup();
    return t_finish("test_http_binary");
}
