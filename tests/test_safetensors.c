// The v1 door in safetensors, in-process (codec_v1_run): every golden case in and out as
// safetensors (aligned and misaligned data, both answer formats, JSON in with a binary answer),
// the Accept negotiation, every rule of the reference reader with header lengths at and around
// 2^32, 2^63 and the body length, and what a valid file may still say wrong (422s). Tensors are
// written and read by tests/harness/binary_harness.c, not by the codec.
#include <math.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/codec/codec.h"
#include "api/codec/codec_safetensors.h"
#include "server/blas_boot.h"
#include "tests/harness/binary_harness.h"
#include "tests/testlib.h"

// One request in-process.
static void run(api_response *r, codec_format in, const bh_bytes *body, const char *accept,
                const char *op) {
    *r = (api_response){0};
    codec_v1_run(r, in, body->data, body->len, accept, op, NULL);
}

static const char *error_field(const cJSON *doc, const char *field) {
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "error"), field);
    return cJSON_IsString(v) ? v->valuestring : "";
}

// Expects the v1 error JSON with this status and code, and a message holding `words`.
static void expect_error(const char *what, const bh_bytes *body, int status, const char *code,
                         const char *words) {
    api_response r;
    run(&r, CODEC_BINARY, body, "", "conv2d.backward");
    cJSON *doc = r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;
    const char *message = error_field(doc, "message");
    CHECK(r.status == status && strcmp(error_field(doc, "code"), code) == 0 &&
              strstr(message, words) && strcmp(r.content_type, "application/json") == 0,
          "%s: want %d %s with '%s', got %d %s: %s", what, status, code, words, r.status,
          error_field(doc, "code"), message);
    cJSON_Delete(doc);
    free(r.body);
}

// Checks every expected output of `g` named by `want` (a bit per bh_outputs index) in a
// safetensors or JSON answer.
static void check_answer(const bh_golden *g, const api_response *r, bool binary, unsigned want,
                         const char *what) {
    if (!CHECK(r->status == 200, "%s %s: status %d %.300s", g->name, what, r->status,
               r->status != 200 ? r->body : ""))
        return;
    CHECK(strcmp(r->content_type, binary ? "application/octet-stream" : "application/json") == 0,
          "%s %s: content type %s", g->name, what, r->content_type);
    cJSON *doc = binary ? NULL : cJSON_ParseWithLength(r->body, r->len);
    for (int o = 0; o < 4; o++) {
        if (!(want & (1u << o)) || !g->out[o].rank) continue;
        bh_tensor got = {0};
        if (binary) {
            const cJSON *meta = NULL;
            cJSON *header = bh_read_safetensors(&got, r->body, r->len, bh_outputs[o], &meta);
            const cJSON *op = cJSON_GetObjectItemCaseSensitive(meta, "op");
            const cJSON *algo = cJSON_GetObjectItemCaseSensitive(meta, "algorithm");
            size_t family = strlen(g->family);
            CHECK(cJSON_IsString(op) && strncmp(op->valuestring, g->family, family) == 0 &&
                      op->valuestring[family] == '.' && cJSON_IsString(algo) &&
                      (strcmp(algo->valuestring, "direct") == 0 ||
                       strcmp(algo->valuestring, "winograd") == 0),
                  "%s %s: __metadata__.op and .algorithm", g->name, what);
            cJSON_Delete(header);
        } else {
            bh_from_json(&got, bh_outputs[o], cJSON_GetObjectItemCaseSensitive(doc, bh_outputs[o]));
        }
        char why[160];
        CHECK(bh_close(&got, &g->out[o], bh_tolerance(g), why, sizeof why), "%s %s %s: %s",
              g->name, what, bh_outputs[o], why);
        bh_tensor_free(&got);
    }
    cJSON_Delete(doc);
}

// A per-axis request value spelt out for `axes` axes, `sides` numbers per axis, as the answer's
// __metadata__ writes it ("[2,2]"): a number for every axis, a list of one per axis, conv2d's
// four sides as they are; NULL (absent) gives `fallback` everywhere.
static void spelt_out(char *buf, size_t cap, const cJSON *v, int axes, int sides, int fallback) {
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < axes * sides; i++) {
        double x = n == 4 && sides == 2 ? cJSON_GetArrayItem(v, i)->valuedouble
                   : n                  ? cJSON_GetArrayItem(v, i / sides)->valuedouble
                   : cJSON_IsNumber(v)  ? v->valuedouble
                                        : fallback;
        len += (size_t)snprintf(buf + len, cap - len, "%s%g", i ? "," : "", x);
    }
    snprintf(buf + len, cap - len, "]");
}

// The answer's __metadata__ holds the layer as applied, one number per axis of the family
// (padding: both sides of each), worked out here from the golden request; and fed back as a
// request's __metadata__ (with the request's own padding unless it is conv2d's four sides,
// which every request may use) it gives the same layer: the same outputs.
static void check_layer_metadata(const bh_golden *g, const api_response *r, const char *op) {
    const cJSON *meta = NULL, *req = g->request;
    bh_tensor dx = {0};
    cJSON *header = bh_read_safetensors(&dx, r->body, r->len, "dx", &meta);
    bh_tensor_free(&dx);
    if (!CHECK(header && meta, "%s: a safetensors answer with __metadata__", g->name)) {
        cJSON_Delete(header);
        return;
    }
    int axes = strchr(g->family, '1') ? 1 : strchr(g->family, '3') ? 3 : 2;
    bool transposed = strstr(g->family, "transpose") != NULL;
    char want[6][96];
    spelt_out(want[0], sizeof want[0], cJSON_GetObjectItemCaseSensitive(req, "stride"), axes, 1, 1);
    spelt_out(want[1], sizeof want[1], cJSON_GetObjectItemCaseSensitive(req, "dilation"), axes, 1,
              1);
    const cJSON *padding = cJSON_GetObjectItemCaseSensitive(req, "padding");
    if (cJSON_IsString(padding) && strcmp(padding->valuestring, "same") == 0) {
        // PyTorch's "same": d*(k-1) in all, the smaller half on the low side.
        const cJSON *dilation = cJSON_GetObjectItemCaseSensitive(req, "dilation");
        size_t len = (size_t)snprintf(want[2], sizeof want[2], "[");
        for (int a = 0; a < axes; a++) {
            const cJSON *da = cJSON_IsArray(dilation) ? cJSON_GetArrayItem(dilation, a) : dilation;
            long long d = da ? (long long)da->valuedouble : 1;
            long long total = d * (g->in[1].shape[g->in[1].rank - axes + a] - 1);
            len += (size_t)snprintf(want[2] + len, sizeof want[2] - len, "%s%lld,%lld",
                                    a ? "," : "", total / 2, total - total / 2);
        }
        snprintf(want[2] + len, sizeof want[2] - len, "]");
    } else {
        spelt_out(want[2], sizeof want[2], cJSON_IsString(padding) ? NULL : padding, axes, 2, 0);
    }
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(req, "groups");
    snprintf(want[3], sizeof want[3], "%g", groups ? groups->valuedouble : 1);
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(req, "padding_mode");
    spelt_out(want[4], sizeof want[4], cJSON_GetObjectItemCaseSensitive(req, "output_padding"),
              axes, 1, 0);
    snprintf(want[5], sizeof want[5], "%s", cJSON_IsString(mode) ? mode->valuestring : "zeros");
    static const char *const fields[6] = {"stride", "dilation",       "padding",
                                          "groups", "output_padding", "padding_mode"};
    cJSON *back = cJSON_CreateObject();
    cJSON_AddStringToObject(back, "op", op);
    for (int f = 0; f < 6; f++) {
        const cJSON *got = cJSON_GetObjectItemCaseSensitive(meta, fields[f]);
        bool expected = f < 4 || (f == 4) == transposed;
        if (!expected) {
            CHECK(!got, "%s: __metadata__.%s only for %s ops", g->name, fields[f],
                  f == 4 ? "transposed" : "the other");
            continue;
        }
        CHECK(cJSON_IsString(got) && strcmp(got->valuestring, want[f]) == 0,
              "%s: __metadata__.%s is %s, want %s", g->name, fields[f],
              cJSON_IsString(got) ? got->valuestring : "absent", want[f]);
        if (f == 2 && (axes != 2 || transposed)) { // the request's own padding
            char *text = cJSON_PrintUnformatted(padding);
            cJSON_AddStringToObject(back, "padding", text ? text : "0");
            free(text);
        } else if (cJSON_IsString(got)) {
            cJSON_AddStringToObject(back, fields[f], got->valuestring);
        }
    }
    char *text = cJSON_PrintUnformatted(back);
    bh_tensor in[4];
    int count = bh_golden_inputs(in, g);
    bh_bytes body = {0};
    bh_safetensors(&body, in, count, g->f64, text, 8);
    api_response again;
    run(&again, CODEC_BINARY, &body, "", NULL);
    check_answer(g, &again, true, 0xE, "backward from the answer's __metadata__");
    free(again.body);
    bh_free(&body);
    free(text);
    cJSON_Delete(back);
    cJSON_Delete(header);
}

// The forward of golden case g as safetensors, with `op` in __metadata__ and no route op (the
// command line's case): its inputs but dy, y checked.
static void check_forward(const bh_golden *g, const char *op) {
    bh_tensor in[3];
    int count = 0;
    for (int i = 0; i < 3; i++)
        if (g->in[i].rank) in[count++] = g->in[i];
    bh_bytes body = {0}, meta = {0};
    bh_golden_metadata(&meta, g, op);
    bh_safetensors(&body, in, count, g->f64, meta.data, 8);
    api_response r;
    run(&r, CODEC_BINARY, &body, "application/octet-stream", NULL);
    check_answer(g, &r, true, 0x1, "forward");
    free(r.body);
    bh_free(&body);
    bh_free(&meta);
}

// The other ops' golden cases (tests/golden/family) as safetensors, their new fields
// (output_padding, padding_mode) in __metadata__ like the others: backward by the route's op
// (its answer's __metadata__ checked and sent back), forward by __metadata__.op.
static void test_family_golden(void) {
    static bh_golden cases[48];
    char dir[600];
    snprintf(dir, sizeof dir, "%s/family", t_golden_dir());
    int n = bh_golden_load_from(dir, cases, 48);
    CHECK(n >= 24, "golden cases found in %s: %d", dir, n);
    bh_bytes body = {0}, meta = {0};
    for (int c = 0; c < n; c++) {
        const bh_golden *g = &cases[c];
        char backward[48], forward[48];
        snprintf(backward, sizeof backward, "%s.backward", g->family);
        snprintf(forward, sizeof forward, "%s.forward", g->family);
        bh_tensor in[4];
        int count = bh_golden_inputs(in, g);
        api_response r;
        bh_golden_metadata(&meta, g, NULL);
        bh_safetensors(&body, in, count, g->f64, meta.data, 8);
        run(&r, CODEC_BINARY, &body, "", backward);
        check_answer(g, &r, true, 0xE, "backward");
        if (r.status == 200) check_layer_metadata(g, &r, backward);
        free(r.body);
        check_forward(g, forward);
    }
    for (int c = 0; c < n; c++) bh_golden_free(&cases[c]);
    bh_free(&body);
    bh_free(&meta);
}

static void test_golden(void) {
    static bh_golden cases[32];
    int n = bh_golden_load(cases, 32);
    CHECK(n >= 8, "golden cases found in %s: %d", t_golden_dir(), n);
    bh_bytes body = {0}, meta = {0};
    for (int c = 0; c < n; c++) {
        const bh_golden *g = &cases[c];
        bh_tensor in[4];
        int count = bh_golden_inputs(in, g);
        api_response r;
        // Backward: aligned as the reference writer aligns, then misaligned (copied once).
        bh_golden_metadata(&meta, g, NULL);
        for (int pad = 8; pad >= 1; pad -= 7) {
            bh_safetensors(&body, in, count, g->f64, meta.data, pad);
            run(&r, CODEC_BINARY, &body, "", "conv2d.backward");
            check_answer(g, &r, true, 0xE, pad == 8 ? "backward aligned" : "backward misaligned");
            free(r.body);
        }
        run(&r, CODEC_BINARY, &body, "application/json", "conv2d.backward");
        check_answer(g, &r, false, 0xE, "backward, JSON answer");
        free(r.body);
        check_forward(g, "conv2d.forward");
        // JSON in, binary answer on request.
        char *json = cJSON_PrintUnformatted(g->request);
        bh_bytes text = {json, strlen(json), strlen(json) + 1};
        run(&r, CODEC_JSON, &text, "application/octet-stream", "conv2d.backward");
        check_answer(g, &r, true, 0xE, "JSON in, binary out");
        if (r.status == 200) check_layer_metadata(g, &r, "conv2d.backward");
        free(r.body);
        free(json);
    }
    for (int c = 0; c < n; c++) bh_golden_free(&cases[c]);
    bh_free(&body);
    bh_free(&meta);
}

static void test_negotiation(void) {
    static const struct {
        const char *accept;
        codec_format own, want;
    } cases[] = {
        {"", CODEC_BINARY, CODEC_BINARY},
        {"", CODEC_JSON, CODEC_JSON},
        {"*/*", CODEC_BINARY, CODEC_BINARY},
        {"*/*", CODEC_JSON, CODEC_JSON},
        {"application/json", CODEC_BINARY, CODEC_JSON},
        {"application/octet-stream", CODEC_JSON, CODEC_BINARY},
        {"Application/JSON; charset=utf-8", CODEC_BINARY, CODEC_JSON},
        {"application/json;q=0.5, application/octet-stream", CODEC_JSON, CODEC_BINARY},
        {"application/json, application/octet-stream;q=0.9", CODEC_BINARY, CODEC_JSON},
        {"application/*;q=0.2, application/json", CODEC_BINARY, CODEC_JSON},
        {"*/*;q=0.1, application/octet-stream", CODEC_JSON, CODEC_BINARY},
        {"text/html", CODEC_BINARY, CODEC_BINARY},
        {"application/octet-stream;q=0", CODEC_BINARY, CODEC_BINARY}, // q=0 for both: a tie
        {"application/octet-stream;q=0, */*", CODEC_BINARY, CODEC_JSON},
        {" application/json ,", CODEC_BINARY, CODEC_JSON},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(codec_negotiate(cases[i].accept, cases[i].own) == cases[i].want,
              "Accept '%s' with a %s request", cases[i].accept,
              cases[i].own == CODEC_JSON ? "JSON" : "binary");
}

// A small valid backward request: x [1,1,3,3], w [1,1,2,2], dy [1,1,2,2] in float32.
static const char valid_header[] =
    "{\"__metadata__\":{\"padding\":\"0\"},"
    "\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,3,3],\"data_offsets\":[0,36]},"
    "\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[36,52]},"
    "\"dy\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[52,68]}}";

// A body of an 8-byte length `n`, the header text, and `data` bytes of 0x3f (1/2-ish floats).
static void file_of(bh_bytes *b, uint64_t n, const char *header, size_t header_len, size_t data) {
    b->len = 0;
    bh_put(b, &n, 8);
    bh_put(b, header, header_len);
    for (size_t i = 0; i < data; i++) bh_put(b, "\x3f", 1);
}

static void file_text(bh_bytes *b, const char *header, size_t data) {
    file_of(b, strlen(header), header, strlen(header), data);
}

static void test_valid_small(void) {
    bh_bytes b = {0};
    file_text(&b, valid_header, 68);
    api_response r;
    run(&r, CODEC_BINARY, &b, "application/json", "conv2d.backward");
    cJSON *doc = cJSON_ParseWithLength(r.body, r.len);
    bh_tensor dw = {0};
    bh_from_json(&dw, "dw", cJSON_GetObjectItemCaseSensitive(doc, "dw"));
    // Every x and dy element is the float 0x3f3f3f3f: dw = 4 * v * v for each of the 4 taps.
    float v;
    memcpy(&v, "\x3f\x3f\x3f\x3f", 4);
    CHECK(r.status == 200 && dw.n == 4 && fabs(dw.data[0] - 4.0 * v * v) < 1e-5 &&
              !cJSON_GetObjectItemCaseSensitive(doc, "db"),
          "the hand-built file: %d %.200s", r.status, r.body);
    bh_tensor_free(&dw);
    cJSON_Delete(doc);
    free(r.body);
    // Trailing spaces (the reference writer's padding), "format" from safetensors' helpers,
    // and __metadata__ null are all fine.
    const char *fine[] = {
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,3,3],\"data_offsets\":[0,36]},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[36,52]},"
        "\"dy\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[52,68]}}      ",
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"dy\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[52,68]},"
        "\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,3,3],\"data_offsets\":[0,36]},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[36,52]}}",
        "{\"__metadata__\":null,"
        "\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,3,3],\"data_offsets\":[0,36],\"extra\":1},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[36,52]},"
        "\"dy\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[52,68]}}",
        "{\"__metadata__\":{\"padding\":\"valid\",\"stride\":\"[1, 1]\",\"op\":\"conv2d.backward\","
        "\"outputs\":\"[\\\"dw\\\"]\",\"dtype\":\"\\\"float32\\\"\"},"
        "\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,3,3],\"data_offsets\":[0,36]},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[36,52]},"
        "\"dy\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[52,68]}}",
    };
    for (size_t i = 0; i < sizeof fine / sizeof *fine; i++) {
        file_text(&b, fine[i], 68);
        run(&r, CODEC_BINARY, &b, "", "conv2d.backward");
        bh_tensor got = {0};
        cJSON *header = bh_read_safetensors(&got, r.body, r.len, "dw", NULL);
        CHECK(r.status == 200 && got.n == 4 && fabs(got.data[3] - 4.0 * v * v) < 1e-5,
              "valid file %zu: %d %.300s", i, r.status, r.status == 200 ? "" : r.body);
        bh_tensor_free(&got);
        cJSON_Delete(header);
        free(r.body);
    }
    bh_free(&b);
}

// Every way a file breaks the reference reader's rules: 400 invalid_json, named.
static void test_malformed(void) {
    bh_bytes b = {0};
    const size_t data = 68;
    size_t hlen = strlen(valid_header);
    // The body shorter than its 8-byte length.
    for (size_t n = 0; n < 8; n++) {
        file_of(&b, 0, "", 0, 0);
        b.len = n;
        expect_error("a body of fewer than 8 bytes", &b, 400, "invalid_json", "fewer than the 8");
    }
    // Header lengths at and around 2^32, 2^63, 2^64 and the limit: too large, not a crash.
    const uint64_t huge[] = {
        100000001ull,       (1ull << 32) - 1, 1ull << 32, (1ull << 32) + 1, (1ull << 63) - 1,
        1ull << 63,         (1ull << 63) + 1, UINT64_MAX, UINT64_MAX - 7,
    };
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        file_of(&b, huge[i], valid_header, hlen, data);
        expect_error("a header length over the limit", &b, 400, "invalid_json",
                     "over the limit of 100000000");
    }
    // Header lengths around the body's length: past it, and eating the data.
    size_t body_len = 8 + hlen + data;
    const uint64_t near[] = {body_len - 8 + 1, body_len, body_len + 1, 100000000ull};
    for (size_t i = 0; i < sizeof near / sizeof *near; i++) {
        file_of(&b, near[i], valid_header, hlen, data);
        expect_error("a header length past the body", &b, 400, "invalid_json",
                     "bytes follow them");
    }
    file_of(&b, body_len - 8, valid_header, hlen, data); // the header takes every byte
    expect_error("a header length of the whole body", &b, 400, "invalid_json",
                 "after its JSON object");
    file_of(&b, hlen - 1, valid_header, hlen, data); // one short: the JSON is cut
    expect_error("a header length one short", &b, 400, "invalid_json", "not valid JSON");
    file_of(&b, hlen + 1, valid_header, hlen, data); // one long: a data byte in the header
    expect_error("a header length one long", &b, 400, "invalid_json", "after its JSON object");

    static const struct {
        const char *what, *header;
        size_t data;
        const char *words;
    } cases[] = {
        {"an empty header", "", 0, "start with '{'"},
        {"a header starting with a space", " {}", 0, "start with '{'"},
        {"a header that is a list", "[]", 0, "start with '{'"},
        {"a header that is not UTF-8", "{\"x\xff\":{}}", 0, "not UTF-8"},
        {"a header with an overlong UTF-8 form", "{\"\xc0\xaf\":{}}", 0, "not UTF-8"},
        {"a header with a UTF-8 surrogate", "{\"\xed\xa0\x80\":{}}", 0, "not UTF-8"},
        {"a header cut inside a UTF-8 sequence", "{\"\xe2\x82", 0, "not UTF-8"},
        {"a header with a control character", "{\"x\":{\"dtype\":\"F32\x01\"}}", 0,
         "control character"},
        {"a header that is not JSON", "{\"x\":", 0, "not valid JSON"},
        {"a header with bytes after the object", "{} x", 0, "after its JSON object"},
        {"an entry that is not an object", "{\"x\":[1]}", 0, "must be an object"},
        {"an entry without dtype", "{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "no \"dtype\""},
        {"an entry without shape", "{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
         "no \"shape\""},
        {"an entry without data_offsets", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
         "no \"data_offsets\""},
        {"an unknown dtype", "{\"x\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         4, "not a safetensors dtype"},
        {"a dtype that is not a string",
         "{\"x\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "not a safetensors dtype"},
        {"a dtype given twice",
         "{\"x\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "twice"},
        {"a shape that is not a list",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, "list of sizes"},
        {"a negative size", "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
         "not a size"},
        {"a fractional size", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
         4, "not a size"},
        {"a size that is a string",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, "not a size"},
        {"sizes whose product overflows 64 bits",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
         "64-bit"},
        {"a byte count that overflows 64 bits",
         "{\"x\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4,
         "64-bit"},
        {"offsets that are not a pair",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "pair"},
        {"offsets that are not numbers",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4, "pair"},
        {"offsets that run backwards",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "end before"},
        {"a byte range that does not fit the shape",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "takes 8 bytes"},
        {"a byte range that does not fit the dtype",
         "{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "takes 8 bytes"},
        {"a duplicate name",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "more than once"},
        {"a gap between tensors",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         12, "gaps"},
        {"a gap before the first tensor",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gaps"},
        {"overlapping tensors",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "overlaps"},
        {"data longer than the tensors",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5,
         "must end where the body does"},
        {"data shorter than the tensors",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 7,
         "must end where the body does"},
        {"no tensors but data", "{}", 4, "must end where the body does"},
        {"__metadata__ that is not an object", "{\"__metadata__\":[]}", 0, "object of strings"},
        {"a __metadata__ value that is not a string", "{\"__metadata__\":{\"stride\":2}}", 0,
         "strings only"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        file_text(&b, cases[i].header, cases[i].data);
        expect_error(cases[i].what, &b, 400, "invalid_json", cases[i].words);
    }
    bh_free(&b);
}

// Valid files that say something convd cannot take: 422s with the v1 codes.
static void test_invalid_requests(void) {
    static const struct {
        const char *what, *header;
        size_t data;
        const char *code, *words;
    } cases[] = {
        {"an F16 tensor", "{\"x\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
         "unsupported_dtype", "F16"},
        {"mixed F32 and F64",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[4,12]}}",
         12, "unsupported_dtype", "one dtype"},
        {"a dtype other than __metadata__'s",
         "{\"__metadata__\":{\"dtype\":\"float64\"},"
         "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         4, "unsupported_dtype", "__metadata__.dtype"},
        {"an unknown tensor", "{\"weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         4, "unknown_field", "x, w, b and dy"},
        {"a tensor in __metadata__", "{\"__metadata__\":{\"x\":\"[1, 2]\"}}", 0,
         "field_not_allowed", "safetensors tensor"},
        {"an unknown parameter", "{\"__metadata__\":{\"strides\":\"2\"}}", 0, "unknown_field",
         "did you mean \"stride\""},
        {"a bad parameter", "{\"__metadata__\":{\"stride\":\"[1, 2, 3, 4]\"}}", 0, "invalid_value",
         "stride"},
        {"an unknown padding word", "{\"__metadata__\":{\"padding\":\"full\"}}", 0,
         "invalid_value", "full"},
        {"an op other than the route's", "{\"__metadata__\":{\"op\":\"conv2d.forward\"}}", 0,
         "op_mismatch", "conv2d.forward"},
        {"a scalar tensor", "{\"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
         "invalid_shape", "0 dimensions"},
        {"an empty tensor", "{\"x\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", 0,
         "invalid_shape", "at least 1"},
        {"a 9-D tensor",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         "invalid_shape", "9 dimensions"},
        {"no tensors", "{}", 0, "missing_field", "x is required"},
        {"no dy for backward",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[3,3],\"data_offsets\":[0,36]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[36,52]}}",
         52, "missing_field", "dy is required"},
        {"dy of the wrong shape",
         "{\"x\":{\"dtype\":\"F32\",\"shape\":[3,3],\"data_offsets\":[0,36]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[36,52]},"
         "\"dy\":{\"dtype\":\"F32\",\"shape\":[3,3],\"data_offsets\":[52,88]}}",
         88, "shape_mismatch", "dy has shape [3, 3] but y has shape [2, 2]"},
    };
    bh_bytes b = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        file_text(&b, cases[i].header, cases[i].data);
        expect_error(cases[i].what, &b, 422, cases[i].code, cases[i].words);
    }
    // NaN and infinity are representable in binary but refused as JSON refuses them (issue 12:
    // they passed through), with the tensor and the flat index.
    static const float non_finite[2] = {NAN, -INFINITY};
    for (int k = 0; k < 2; k++) {
        file_text(&b, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                      "\"w\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[16,20]},"
                      "\"dy\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[20,36]}}",
                  0);
        float values[9] = {1, 2, 3, 4, 2, 1, 1, 1, 1};
        values[k ? 4 : 2] = non_finite[k];
        bh_put(&b, values, sizeof values);
        expect_error(k ? "-Infinity in w" : "NaN in x", &b, 422, "non_finite_number",
                     k ? "w (flat index 0) is -Infinity" : "x (flat index 2) is NaN");
    }
    const char *header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                         "\"w\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[16,20]}}";
    file_text(&b, header, 0);
    float values[5] = {1, 2, 3, 4, 2};
    bh_put(&b, values, sizeof values);
    api_response r;
    run(&r, CODEC_BINARY, &b, "", "conv2d.forward");
    bh_tensor y = {0};
    cJSON *h = bh_read_safetensors(&y, r.body, r.len, "y", NULL);
    CHECK(r.status == 200 && y.n == 4 && y.data[0] == 2 && y.data[3] == 8,
          "forward 1x1: %d (y %zu)", r.status, y.n);
    bh_tensor_free(&y);
    cJSON_Delete(h);
    free(r.body);
    bh_free(&b);
}

// A header of a million names: refused (unknown tensor) in linear time, not compared pairwise.
static void test_many_names(void) {
    bh_bytes header = {0}, b = {0};
    bh_puts(&header, "{");
    for (int i = 0; i < 1000000; i++) bh_printf(&header, "%s\"t%d\":0", i ? "," : "", i);
    bh_puts(&header, ",\"t7\":0}");
    file_text(&b, header.data, 0);
    double start = (double)clock() / CLOCKS_PER_SEC;
    expect_error("a million names, one twice", &b, 400, "invalid_json", "more than once");
    double seconds = (double)clock() / CLOCKS_PER_SEC - start;
    CHECK(seconds < 10, "a million names took %.1f s", seconds);
    bh_free(&header);
    bh_free(&b);
}

// convd run --format safetensors: the same door on the command line (CONVD_BIN, or build/convd).
static void test_command_line(void) {
    const char *bin = getenv("CONVD_BIN") && *getenv("CONVD_BIN") ? getenv("CONVD_BIN")
                                                                   : "build/convd";
    char in[64], out[64], command[512];
    snprintf(in, sizeof in, "/tmp/convd-st-in-%d", (int)getpid());
    snprintf(out, sizeof out, "/tmp/convd-st-out-%d", (int)getpid());
    bh_bytes b = {0};
    static const char header[] =
        "{\"__metadata__\":{\"op\":\"conv2d.backward\",\"outputs\":\"[\\\"dw\\\"]\"},"
        "\"x\":{\"dtype\":\"F64\",\"shape\":[3,3],\"data_offsets\":[0,72]},"
        "\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[72,104]},"
        "\"dy\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[104,136]}}";
    const double values[17] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 1, 1, 1, 1};
    for (int broken = 0; broken < 2; broken++) {
        file_text(&b, header, 0);
        bh_put(&b, values, broken ? sizeof values - 1 : sizeof values);
        FILE *f = fopen(in, "wb");
        fwrite(b.data, 1, b.len, f);
        fclose(f);
        snprintf(command, sizeof command, "%s run --format safetensors %s > %s", bin, in, out);
        int rc = system(command);
        size_t len = 0;
        char *answer = t_read_file(out, &len);
        if (!broken) {
            bh_tensor dw = {0};
            cJSON *h = bh_read_safetensors(&dw, answer, len, "dw", NULL);
            // dw[a][b] = the sum of x's 2x2 window at (a, b).
            CHECK(rc == 0 && dw.n == 4 && dw.data[0] == 12 && dw.data[1] == 16 &&
                      dw.data[2] == 24 && dw.data[3] == 28 && answer[len - 1] != '\n',
                  "convd run --format safetensors: exit %d, %zu bytes", rc, len);
            bh_tensor_free(&dw);
            cJSON_Delete(h);
        } else {
            CHECK(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 2 && answer &&
                      strstr(answer, "\"code\":\"invalid_json\"") && strstr(answer, "safetensors"),
                  "convd run --format safetensors on a cut file: exit %d: %s", rc, answer);
        }
        free(answer);
    }
    snprintf(command, sizeof command, "%s run --format xml %s 2>/dev/null", bin, in);
    int rc = system(command);
    CHECK(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "--format xml: exit 2");
    unlink(in);
    unlink(out);
    bh_free(&b);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    test_negotiation();
    test_golden();
    test_family_golden();
    test_valid_small();
    test_malformed();
    test_invalid_requests();
    test_many_names();
    test_command_line();
    return t_finish("test_safetensors");
}
