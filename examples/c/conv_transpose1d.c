// convd from C with libcurl: a conv_transpose1d layer (upsampling by 3, padding 1,
// output_padding 2, two groups) forward and backward, sent and answered as safetensors (the
// tensors' bytes as they are in memory, the layer's parameters in __metadata__), checked
// against PyTorch's definition computed here: each x[n][ci][i] scattered through the kernel
// onto y[n][f][i*STRIDE + k - PAD].
//
// Build: cc -O2 examples/c/conv_transpose1d.c -lcurl -lm -o conv_transpose1d
// Usage: CONVD_URL=http://127.0.0.1:8080 ./conv_transpose1d
#include <curl/curl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 2, C = 4, L = 7, F = 6, K = 4, GROUPS = 2, STRIDE = 3, PAD = 1, OUTPUT_PADDING = 2 };
enum { LO = (L - 1) * STRIDE - 2 * PAD + (K - 1) + OUTPUT_PADDING + 1, CG = C / GROUPS,
       FG = F / GROUPS };

// PyTorch's shapes: x [N, C, L], w [C, F/groups, K], y [N, F, LO].
static float x[N][C][L], w[C][FG][K], b[F], dy[N][F][LO];
static double y_want[N][F][LO], dx_want[N][C][L], dw_want[C][FG][K], db_want[F];

// y and, for upstream gradient dy, dx, dw and db, by the scatter definition.
static void reference(void) {
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++)
            for (int o = 0; o < LO; o++) {
                y_want[n][f][o] += b[f];
                db_want[f] += dy[n][f][o];
            }
    for (int n = 0; n < N; n++)
        for (int ci = 0; ci < C; ci++)
            for (int i = 0; i < L; i++)
                for (int fo = 0; fo < FG; fo++)
                    for (int k = 0; k < K; k++) {
                        int f = ci / CG * FG + fo, o = i * STRIDE + k - PAD;
                        if (o < 0 || o >= LO) continue;
                        y_want[n][f][o] += (double)x[n][ci][i] * w[ci][fo][k];
                        dx_want[n][ci][i] += (double)dy[n][f][o] * w[ci][fo][k];
                        dw_want[ci][fo][k] += (double)dy[n][f][o] * x[n][ci][i];
                    }
}

typedef struct {
    char *data;
    size_t len;
} buffer;

static size_t collect(char *data, size_t size, size_t n, void *arg) {
    buffer *buf = arg;
    char *grown = realloc(buf->data, buf->len + size * n);
    if (!grown) return 0;
    memcpy(grown + buf->len, data, size * n);
    buf->data = grown;
    buf->len += size * n;
    return size * n;
}

typedef struct {
    const char *name;
    int rank, shape[3];
    const void *data;
    size_t bytes;
} tensor;

// POSTs the tensors (float32) as a safetensors file with `metadata` (JSON object members)
// to `route`; the answer's bytes into *answer. Returns whether it was a 200.
static bool post(const char *route, const char *metadata, const tensor *tensors, int count,
                 buffer *answer) {
    char header[1024], url[512];
    size_t len = (size_t)snprintf(header, sizeof header, "{\"__metadata__\":{%s}", metadata);
    buffer body = {0};
    size_t offset = 0;
    for (int t = 0; t < count; t++) {
        const tensor *v = &tensors[t];
        len += (size_t)snprintf(header + len, sizeof header - len,
                                ",\"%s\":{\"dtype\":\"F32\",\"shape\":[", v->name);
        for (int d = 0; d < v->rank; d++)
            len += (size_t)snprintf(header + len, sizeof header - len, "%s%d", d ? "," : "",
                                    v->shape[d]);
        len += (size_t)snprintf(header + len, sizeof header - len, "],\"data_offsets\":[%zu,%zu]}",
                                offset, offset + v->bytes);
        offset += v->bytes;
    }
    len += (size_t)snprintf(header + len, sizeof header - len, "}");
    while (len % 8) header[len++] = ' '; // tensors start 8-byte aligned
    uint64_t header_len = len;
    collect((char *)&header_len, 1, 8, &body); // little-endian, as this machine
    collect(header, 1, len, &body);
    for (int t = 0; t < count; t++) collect((char *)tensors[t].data, 1, tensors[t].bytes, &body);

    const char *base = getenv("CONVD_URL") ? getenv("CONVD_URL") : "http://127.0.0.1:8080";
    snprintf(url, sizeof url, "%s%s", base, route);
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(body.data);
    if (rc != CURLE_OK || status != 200)
        fprintf(stderr, "FAIL %s: %s, HTTP %ld: %.*s\n", route, curl_easy_strerror(rc), status,
                (int)answer->len, answer->data ? answer->data : "");
    return rc == CURLE_OK && status == 200;
}

// Tensor `name` of a safetensors answer checked against `want` (`expected` values).
static int compare(const buffer *answer, const char *name, const double *want, size_t expected) {
    uint64_t n = 0;
    if (answer->len >= 8) memcpy(&n, answer->data, 8);
    char key[32], *header = strndup(answer->data + 8, answer->len >= 8 + n ? (size_t)n : 0);
    snprintf(key, sizeof key, "\"%s\":{", name);
    const char *entry = strstr(header, key);
    const char *offsets = entry ? strstr(entry, "\"data_offsets\":[") : NULL;
    size_t begin = 0, end = 0;
    bool found = offsets && sscanf(offsets, "\"data_offsets\":[%zu,%zu]", &begin, &end) == 2 &&
                 8 + n + end <= answer->len;
    free(header);
    size_t count = found ? (end - begin) / sizeof(float) : 0;
    if (count != expected) {
        fprintf(stderr, "FAIL %s: %zu values, want %zu\n", name, count, expected);
        return 1;
    }
    const float *got = (const float *)(answer->data + 8 + n + begin); // 8-byte aligned
    for (size_t i = 0; i < count; i++)
        if (fabs(got[i] - want[i]) > 1e-4 * (1 + fabs(want[i]))) {
            fprintf(stderr, "FAIL %s[%zu]: %g, want %g\n", name, i, got[i], want[i]);
            return 1;
        }
    return 0;
}

int main(void) {
    unsigned state = 7;
    float *all[] = {&x[0][0][0], &w[0][0][0], b, &dy[0][0][0]};
    size_t sizes[] = {sizeof x / 4, sizeof w / 4, sizeof b / 4, sizeof dy / 4};
    for (int t = 0; t < 4; t++)
        for (size_t i = 0; i < sizes[t]; i++)
            all[t][i] = (float)((state = state * 1664525u + 1013904223u) >> 8) / (1 << 23) - 1;
    reference();

    const tensor tensors[] = {
        {"x", 3, {N, C, L}, x, sizeof x},
        {"w", 3, {C, FG, K}, w, sizeof w},
        {"b", 1, {F}, b, sizeof b},
        {"dy", 3, {N, F, LO}, dy, sizeof dy},
    };
    // One integer each: conv_transpose1d has one spatial axis.
    char layer[256];
    snprintf(layer, sizeof layer,
             "\"stride\":\"%d\",\"padding\":\"%d\",\"output_padding\":\"%d\",\"groups\":\"%d\"",
             STRIDE, PAD, OUTPUT_PADDING, GROUPS);
    buffer forward = {0}, backward = {0};
    bool ok = post("/v1/conv_transpose1d/forward", layer, tensors, 3, &forward) &&
              post("/v1/conv_transpose1d/backward", layer, tensors, 4, &backward);
    int failed = !ok;
    if (ok)
        failed += compare(&forward, "y", &y_want[0][0][0], sizeof y_want / 8) +
                  compare(&backward, "dx", &dx_want[0][0][0], sizeof dx_want / 8) +
                  compare(&backward, "dw", &dw_want[0][0][0], sizeof dw_want / 8) +
                  compare(&backward, "db", db_want, F);
    free(forward.data);
    free(backward.data);
    if (!failed) printf("c conv_transpose1d example: ok\n");
    return failed;
}
