// convd from C with libcurl: one conv2d backward pass sent and answered as safetensors (the
// tensors' bytes as they are in memory, no text), checked against a direct summation here.
//
// Build: cc -O2 examples/c/backward.c -lcurl -o backward
// Usage: CONVD_URL=http://127.0.0.1:8080 ./backward
#include <curl/curl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 2, C = 4, H = 10, W = 9, F = 5, K = 3, STRIDE = 2, PAD = 1 };
enum { HO = (H + 2 * PAD - K) / STRIDE + 1, WO = (W + 2 * PAD - K) / STRIDE + 1 };

static float x[N][C][H][W], w[F][C][K][K], dy[N][F][HO][WO];
static double dx_want[N][C][H][W], dw_want[F][C][K][K];

// dx and dw of y = conv2d(x, w) for upstream gradient dy.
static void reference(void) {
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++)
            for (int i = 0; i < HO; i++)
                for (int j = 0; j < WO; j++)
                    for (int c = 0; c < C; c++)
                        for (int a = 0; a < K; a++)
                            for (int e = 0; e < K; e++) {
                                int r = i * STRIDE + a - PAD, s = j * STRIDE + e - PAD;
                                if (r < 0 || r >= H || s < 0 || s >= W) continue;
                                dw_want[f][c][a][e] += (double)dy[n][f][i][j] * x[n][c][r][s];
                                dx_want[n][c][r][s] += (double)dy[n][f][i][j] * w[f][c][a][e];
                            }
}

typedef struct {
    char *data;
    size_t len;
} buffer;

static size_t collect(char *data, size_t size, size_t n, void *arg) {
    buffer *b = arg;
    char *grown = realloc(b->data, b->len + size * n);
    if (!grown) return 0;
    memcpy(grown + b->len, data, size * n);
    b->data = grown;
    b->len += size * n;
    return size * n;
}

// Appends `bytes` of `data` to the body and its header entry to `header`.
static void add_tensor(buffer *body, char *header, size_t cap, const char *name, const int *shape,
                       int rank, const void *data, size_t bytes) {
    size_t len = strlen(header);
    len += (size_t)snprintf(header + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[", name);
    for (int i = 0; i < rank; i++)
        len += (size_t)snprintf(header + len, cap - len, "%s%d", i ? "," : "", shape[i]);
    snprintf(header + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", body->len, body->len + bytes);
    collect((char *)data, 1, bytes, body);
}

// The bytes of tensor `name` in a safetensors answer (its "data_offsets" read from the header),
// or NULL.
static const float *find_tensor(const buffer *answer, const char *name, size_t *count) {
    if (answer->len < 8) return NULL;
    uint64_t n;
    memcpy(&n, answer->data, 8); // little-endian, as this machine
    char key[32], *header = strndup(answer->data + 8, (size_t)n);
    snprintf(key, sizeof key, "\"%s\":{", name);
    const char *entry = strstr(header, key);
    const char *offsets = entry ? strstr(entry, "\"data_offsets\":[") : NULL;
    size_t begin, end;
    bool ok = offsets && sscanf(offsets, "\"data_offsets\":[%zu,%zu]", &begin, &end) == 2;
    free(header);
    if (!ok || 8 + n + end > answer->len) return NULL;
    *count = (end - begin) / sizeof(float);
    return (const float *)(answer->data + 8 + n + begin); // 8-byte aligned by the server
}

static int compare(const char *name, const float *got, size_t count, const double *want,
                   size_t expected) {
    if (!got || count != expected) {
        fprintf(stderr, "FAIL %s: %zu values, want %zu\n", name, got ? count : 0, expected);
        return 1;
    }
    for (size_t i = 0; i < count; i++)
        if (fabs(got[i] - want[i]) > 1e-4 * (1 + fabs(want[i]))) {
            fprintf(stderr, "FAIL %s[%zu]: %g, want %g\n", name, i, got[i], want[i]);
            return 1;
        }
    return 0;
}

int main(void) {
    const char *base = getenv("CONVD_URL") ? getenv("CONVD_URL") : "http://127.0.0.1:8080";
    unsigned state = 42;
    float *all[] = {&x[0][0][0][0], &w[0][0][0][0], &dy[0][0][0][0]};
    size_t sizes[] = {sizeof x / 4, sizeof w / 4, sizeof dy / 4};
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < sizes[t]; i++)
            all[t][i] = (float)((state = state * 1664525u + 1013904223u) >> 8) / (1 << 23) - 1;
    reference();

    // The request: the tensors after an 8-byte header length and a JSON header that names them
    // and carries the layer's parameters in __metadata__.
    buffer data = {0}, answer = {0};
    char header[1024] = "{\"__metadata__\":{\"stride\":\"2\",\"padding\":\"1\"}";
    add_tensor(&data, header, sizeof header, "x", (int[]){N, C, H, W}, 4, x, sizeof x);
    add_tensor(&data, header, sizeof header, "w", (int[]){F, C, K, K}, 4, w, sizeof w);
    add_tensor(&data, header, sizeof header, "dy", (int[]){N, F, HO, WO}, 4, dy, sizeof dy);
    strcat(header, "}");
    while (strlen(header) % 8) strcat(header, " "); // tensors start 8-byte aligned
    uint64_t header_len = strlen(header);
    buffer body = {0};
    collect((char *)&header_len, 1, 8, &body);
    collect(header, 1, header_len, &body);
    collect(data.data, 1, data.len, &body);

    char url[512];
    snprintf(url, sizeof url, "%s/v1/conv2d/backward", base);
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK || status != 200) {
        fprintf(stderr, "FAIL request: %s, HTTP %ld: %.*s\n", curl_easy_strerror(rc), status,
                (int)answer.len, answer.data ? answer.data : "");
        return 1;
    }
    size_t n_dx = 0, n_dw = 0;
    const float *dx = find_tensor(&answer, "dx", &n_dx), *dw = find_tensor(&answer, "dw", &n_dw);
    int failed = compare("dx", dx, n_dx, &dx_want[0][0][0][0], sizeof dx_want / 8) +
                 compare("dw", dw, n_dw, &dw_want[0][0][0][0], sizeof dw_want / 8);
    free(data.data);
    free(body.data);
    free(answer.data);
    if (!failed) printf("c example: ok\n");
    return failed;
}
