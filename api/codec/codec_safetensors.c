#include "api/codec/codec_safetensors.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/codec/codec_json.h"

// The reference reader's dtypes and their sizes; only F32 and F64 are convd's.
static const struct {
    const char *name;
    unsigned size;
} dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};
#define DTYPE_COUNT ((int)(sizeof dtypes / sizeof *dtypes))

static const char *dtype_tag(conv_dtype dt) { return dt == CONV_FLOAT32 ? "F32" : "F64"; }

// A file the reference reader would refuse: 400, the body cannot be read.
static bool malformed(api_error *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool malformed(api_error *err, const char *path, const char *fmt, ...) {
    char why[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return api_fail(err, API_E_INVALID_JSON, path, "the body is not a valid safetensors file: %s",
                    why);
}

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF), as Rust's
// str::from_utf8; *bad gets the offset of the first invalid byte.
static bool valid_utf8(const unsigned char *s, size_t n, size_t *bad) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t extra = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2
                     : c >= 0xF0 && c <= 0xF4 ? 3 : 4;
        if (extra == 4 || extra > n - 1 - i) {
            *bad = i;
            return false;
        }
        unsigned lo = 0x80, hi = 0xBF; // the second byte's range
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
        else if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
        for (size_t k = 1; k <= extra; k++) {
            unsigned b = s[i + k];
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) {
                *bad = i;
                return false;
            }
        }
        i += extra + 1;
    }
    return true;
}

// A whole number in [0, 2^64) from a JSON number (what serde reads into a usize).
static bool json_u64(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (!(v >= 0 && v < 0x1p64) || v != floor(v)) return false;
    *out = (uint64_t)v;
    return true;
}

// One tensor entry of the header.
typedef struct {
    const char *name;
    int dtype;  // index in dtypes[]
    int rank;   // as written (may exceed API_MAX_RANK; then only the count is kept)
    int64_t shape[API_MAX_RANK];
    uint64_t numel;
    bool shape_fits; // every size below 2^63, so the shape fits an api_tensor
    uint64_t begin, end;
} entry;

static bool read_entry(entry *e, const cJSON *info, api_error *err) {
    char quoted[48], dtype_text[48];
    const char *name = api_quote(quoted, sizeof quoted, e->name);
    if (!cJSON_IsObject(info))
        return malformed(err, name, "the header entry \"%s\" must be an object {\"dtype\", "
                         "\"shape\", \"data_offsets\"}", name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(info, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(info, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(info, "data_offsets");
    if (!dtype || !shape || !offsets)
        return malformed(err, name, "the header entry \"%s\" has no \"%s\"", name,
                         !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    static const char *const keys[] = {"dtype", "shape", "data_offsets"};
    for (int k = 0; k < 3; k++) {
        int seen = 0;
        for (const cJSON *a = info->child; a; a = a->next) seen += strcmp(a->string, keys[k]) == 0;
        if (seen > 1)
            return malformed(err, name, "the header entry \"%s\" has \"%s\" twice", name,
                             keys[k]);
    }
    e->dtype = -1;
    for (int d = 0; d < DTYPE_COUNT && cJSON_IsString(dtype); d++)
        if (strcmp(dtype->valuestring, dtypes[d].name) == 0) e->dtype = d;
    if (e->dtype < 0)
        return malformed(err, name, "\"%s\" has dtype %s, which is not a safetensors dtype "
                         "(F32, F64, F16, BF16, I64, ...)", name,
                         cJSON_IsString(dtype) ? api_quote(dtype_text, sizeof dtype_text,
                                                           dtype->valuestring)
                                               : "of the wrong JSON type");
    if (!cJSON_IsArray(shape))
        return malformed(err, name, "the shape of \"%s\" must be a list of sizes", name);
    e->numel = 1;
    e->shape_fits = true;
    bool overflow = false;
    for (const cJSON *d = shape->child; d; d = d->next) {
        uint64_t size;
        if (!json_u64(d, &size))
            return malformed(err, name, "the shape of \"%s\" holds something that is not a "
                             "size (a whole number >= 0)", name);
        overflow |= __builtin_mul_overflow(e->numel, size, &e->numel);
        if (e->rank < API_MAX_RANK) e->shape[e->rank] = (int64_t)size;
        e->shape_fits &= size <= INT64_MAX;
        e->rank++;
    }
    uint64_t bytes;
    if (overflow || __builtin_mul_overflow(e->numel, (uint64_t)dtypes[e->dtype].size, &bytes))
        return malformed(err, name, "the shape of \"%s\" describes more bytes than a 64-bit "
                         "count holds", name);
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_u64(offsets->child, &e->begin) || !json_u64(offsets->child->next, &e->end))
        return malformed(err, name, "the data_offsets of \"%s\" must be a pair [begin, end] of "
                         "byte offsets", name);
    if (e->end < e->begin)
        return malformed(err, name, "\"%s\" has data_offsets [%" PRIu64 ", %" PRIu64 "], which "
                         "end before they begin", name, e->begin, e->end);
    if (e->end - e->begin != bytes)
        return malformed(err, name, "\"%s\" has data_offsets [%" PRIu64 ", %" PRIu64 "] (%" PRIu64
                         " bytes) but %s with %" PRIu64 " elements takes %" PRIu64 " bytes",
                         name, e->begin, e->end, e->end - e->begin, dtypes[e->dtype].name,
                         e->numel, bytes);
    return true;
}

static int by_offsets(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// A name that `object` has twice, or NULL. Sorted, not compared pairwise: a header
// may hold millions of names. `names` has room for every member.
static const char *first_duplicate(const char **names, const cJSON *object) {
    int n = 0;
    for (const cJSON *item = object->child; item; item = item->next) names[n++] = item->string;
    qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

// The parsed header: its tensor entries sorted by offset, and __metadata__ (or NULL).
typedef struct {
    cJSON *root;
    entry *entries;
    int count;
    const cJSON *metadata;
} header;

static void header_free(header *h) {
    cJSON_Delete(h->root);
    free(h->entries);
}

// Everything the reference reader checks, in its order. *data gets where the tensor bytes start.
static bool read_header(header *h, const char **data, const char *body, size_t len,
                        api_error *err) {
    *h = (header){0};
    if (len < 8)
        return malformed(err, "", "it has %zu bytes, fewer than the 8 of the header length", len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | (unsigned char)body[i];
    if (n > CODEC_SAFETENSORS_MAX_HEADER)
        return malformed(err, "", "the header length (the first 8 bytes, little-endian) is %" PRIu64
                         ", over the limit of %d bytes", n, CODEC_SAFETENSORS_MAX_HEADER);
    if (n > len - 8)
        return malformed(err, "", "the header length (the first 8 bytes, little-endian) is %" PRIu64
                         " but only %zu bytes follow them", n, len - 8);
    const char *text = body + 8;
    size_t bad;
    if (!valid_utf8((const unsigned char *)text, n, &bad))
        return malformed(err, "", "the header is not UTF-8 (byte %zu of it)", bad);
    if (n == 0 || text[0] != '{')
        return malformed(err, "", "the header must start with '{' (a JSON object)");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)text[i] < 0x20 && !strchr("\t\n\r", text[i]))
            return malformed(err, "", "the header holds the control character %d at byte %zu, "
                             "which JSON does not allow", text[i], i);
    const char *parsed_end = NULL;
    h->root = cJSON_ParseWithLengthOpts(text, n, &parsed_end, 0);
    if (!h->root) return malformed(err, "", "its header is not valid JSON");
    for (const char *p = parsed_end; p < text + n; p++)
        if (!strchr(" \t\n\r", *p))
            return malformed(err, "", "the header has bytes after its JSON object (at byte %td)",
                             p - text);
    size_t members = (size_t)cJSON_GetArraySize(h->root) + 1;
    h->entries = calloc(members, sizeof *h->entries);
    const char **names = malloc(members * sizeof *names);
    const char *duplicate = names ? first_duplicate(names, h->root) : NULL;
    bool no_memory = !h->entries || !names;
    free(names);
    if (no_memory)
        return api_fail(err, API_E_OUT_OF_MEMORY, "", "out of memory for the header");
    char quoted[48];
    if (duplicate)
        return malformed(err, "", "the name \"%s\" appears more than once in the header",
                         api_quote(quoted, sizeof quoted, duplicate));
    for (const cJSON *item = h->root->child; item; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (cJSON_IsNull(item)) continue;
            if (!cJSON_IsObject(item))
                return malformed(err, "__metadata__", "__metadata__ must be an object of strings");
            for (const cJSON *m = item->child; m; m = m->next)
                if (!cJSON_IsString(m))
                    return malformed(err, "__metadata__", "__metadata__ values are strings only; "
                                     "\"%s\" is not one (write its JSON value as a string, "
                                     "e.g. \"stride\": \"2\")",
                                     api_quote(quoted, sizeof quoted, m->string));
            h->metadata = item;
            continue;
        }
        entry *e = &h->entries[h->count++];
        e->name = item->string;
        if (!read_entry(e, item, err)) return false;
    }
    qsort(h->entries, (size_t)h->count, sizeof *h->entries, by_offsets);
    uint64_t covered = 0;
    for (int i = 0; i < h->count; i++) {
        const entry *e = &h->entries[i];
        if (e->begin != covered)
            return malformed(err, api_quote(quoted, sizeof quoted, e->name),
                             "\"%s\" begins at byte %" PRIu64 " of the data but the tensors "
                             "before it end at %" PRIu64 "; tensors must cover the data exactly, "
                             "without %s", quoted, e->begin, covered,
                             e->begin > covered ? "gaps" : "overlaps");
        covered = e->end;
    }
    if (covered != len - 8 - n)
        return malformed(err, "", "the body has %zu bytes but 8 + header %" PRIu64 " + data %"
                         PRIu64 " make %" PRIu64 "; the tensors must end where the body does",
                         len, n, covered, 8 + n + covered);
    *data = text + n;
    return true;
}

// The request's fields from __metadata__: each value is the field's JSON text, or a bare string.
// Decoded by the v1 JSON decoder, so every field means and fails the same as in JSON.
static bool decode_metadata(api_request *req, const cJSON *metadata, api_error *err) {
    if (!metadata) return true;
    cJSON *fields = cJSON_CreateObject();
    bool ok = fields != NULL;
    for (const cJSON *m = metadata->child; m && ok; m = m->next) {
        int input = 0;
        while (input < API_IN_COUNT && strcmp(api_input_names[input], m->string) != 0) input++;
        if (input < API_IN_COUNT) {
            char path[64];
            snprintf(path, sizeof path, "__metadata__.%s", api_input_names[input]);
            cJSON_Delete(fields);
            return api_fail(err, API_E_FIELD_NOT_ALLOWED, path,
                            "%s is a tensor: send it as a safetensors tensor named \"%s\", not "
                            "in __metadata__", api_input_names[input], api_input_names[input]);
        }
        if (strcmp(m->string, "format") == 0) continue; // "pt", "np": written by safetensors' helpers
        const char *end = NULL;
        cJSON *value = cJSON_ParseWithOpts(m->valuestring, &end, 1);
        if (value && cJSON_IsNumber(value) && !isfinite(value->valuedouble)) {
            cJSON_Delete(value); // "1e999": kept as text, so that it fails as what it is
            value = NULL;
        }
        if (!value) value = cJSON_CreateString(m->valuestring);
        ok = value && cJSON_AddItemToObject(fields, m->string, value);
    }
    char *text = ok ? cJSON_PrintUnformatted(fields) : NULL;
    cJSON_Delete(fields);
    if (!text) return api_fail(err, API_E_OUT_OF_MEMORY, "", "out of memory for __metadata__");
    ok = codec_json_decode(req, text, strlen(text), err);
    free(text);
    if (!ok && err && err->path[0]) {
        static const char prefix[] = "__metadata__.";
        size_t keep = strnlen(err->path, sizeof err->path - sizeof prefix);
        memmove(err->path + sizeof prefix - 1, err->path, keep);
        memcpy(err->path, prefix, sizeof prefix - 1);
        err->path[sizeof prefix - 1 + keep] = '\0';
    }
    return ok;
}

static bool take_tensor(api_request *req, const entry *e, const char *data, bool dtype_given,
                        api_error *err) {
    char quoted[48], path[64];
    const char *name = api_quote(quoted, sizeof quoted, e->name);
    int input = 0;
    while (input < API_IN_COUNT && strcmp(api_input_names[input], e->name) != 0) input++;
    if (input == API_IN_COUNT)
        return api_fail(err, API_E_UNKNOWN_FIELD, name,
                        "the tensor \"%s\" is not an input; the tensors are x, w, b and dy, and "
                        "the other fields go in __metadata__", name);
    bool f32 = strcmp(dtypes[e->dtype].name, "F32") == 0;
    bool f64 = strcmp(dtypes[e->dtype].name, "F64") == 0;
    conv_dtype dt = f64 ? CONV_FLOAT64 : CONV_FLOAT32;
    snprintf(path, sizeof path, "%s.dtype", name);
    if (!f32 && !f64)
        return api_fail(err, API_E_UNSUPPORTED_DTYPE, path,
                        "%s has dtype %s; convd computes in F32 (float32) or F64 (float64)", name,
                        dtypes[e->dtype].name);
    if (dtype_given && dt != req->dtype)
        return api_fail(err, API_E_UNSUPPORTED_DTYPE, path,
                        "%s has dtype %s but the request is %s (from %s); send every tensor in "
                        "one dtype", name, dtypes[e->dtype].name,
                        req->dtype == CONV_FLOAT32 ? "float32" : "float64",
                        req->in[API_IN_X].rank || req->in[API_IN_W].rank || req->in[API_IN_B].rank ||
                                req->in[API_IN_DY].rank ? "the tensors before it"
                                                        : "__metadata__.dtype");
    req->dtype = dt;
    snprintf(path, sizeof path, "%s.shape", name);
    if (e->rank == 0 || e->rank > API_MAX_RANK || !e->shape_fits)
        return api_fail(err, API_E_INVALID_SHAPE, path,
                        "%s has %d dimensions; x is [N, C, H, W], [C, H, W] or [H, W], w [F, "
                        "C/groups, kh, kw] or [kh, kw], b [F], dy like y", name, e->rank);
    api_tensor *t = &req->in[input];
    return api_tensor_set_shape(t, e->shape, e->rank, path, err) &&
           api_tensor_from_bytes(t, data + e->begin, dt, name, err);
}

bool codec_safetensors_decode(api_request *req, const char *body, size_t len, api_error *err) {
    header h;
    const char *data = NULL;
    bool ok = read_header(&h, &data, body, len, err) && decode_metadata(req, h.metadata, err);
    bool dtype_given = ok && h.metadata &&
                       cJSON_GetObjectItemCaseSensitive(h.metadata, "dtype") != NULL;
    for (int i = 0; i < h.count && ok; i++) {
        ok = take_tensor(req, &h.entries[i], data, dtype_given, err);
        dtype_given = true;
    }
    header_free(&h);
    return ok;
}

void codec_safetensors_put_result(api_buf *out, const api_request *req, const api_plan *plan,
                                  const api_result *res) {
    size_t elt = conv_dtype_size(req->dtype), data_bytes = 0;
    for (int o = 0; o < API_OUT_COUNT; o++) data_bytes += (size_t)res->out[o].numel * elt;
    api_buf_reserve(out, 1024 + data_bytes); // once: growing by doubling would copy it all again
    size_t start = out->len;
    api_buf_put(out, "\0\0\0\0\0\0\0\0", 8); // the header length, filled in below
    api_buf_printf(out,
                   "{\"__metadata__\":{\"op\":\"%s\",\"dtype\":\"%s\",\"elapsed_ms\":\"%.3f\","
                   "\"threads\":\"%d\",\"flops\":\"%" PRId64 "\"",
                   plan->op->name, req->dtype == CONV_FLOAT32 ? "float32" : "float64",
                   res->elapsed_ms, res->threads, plan->flops);
    codec_json_put_layer(out, req, plan, true);
    api_buf_printf(out, ",\"algorithm\":\"%s\"}", conv_algorithm_name(plan->algorithm));
    char dims[160];
    uint64_t offset = 0;
    for (int o = 0; o < API_OUT_COUNT; o++) {
        const api_tensor *t = &res->out[o];
        if (!t->rank) continue;
        uint64_t bytes = (uint64_t)t->numel * elt;
        api_buf_printf(out, ",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%" PRIu64
                       ",%" PRIu64 "]}",
                       api_output_names[o], dtype_tag(req->dtype),
                       api_shape_str(dims, sizeof dims, t->shape, t->rank), offset,
                       offset + bytes);
        offset += bytes;
    }
    api_buf_put(out, "}", 1);
    while ((out->len - start) % 8) api_buf_put(out, " ", 1);
    if (out->failed) return;
    uint64_t n = out->len - start - 8;
    for (int i = 0; i < 8; i++) out->data[start + (size_t)i] = (char)(n >> (8 * i));
    for (int o = 0; o < API_OUT_COUNT; o++)
        if (res->out[o].rank)
            api_buf_put(out, res->out[o].data, (size_t)res->out[o].numel * elt);
}
