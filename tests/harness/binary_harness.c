#include "tests/harness/binary_harness.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testlib.h"

void bh_put(bh_bytes *b, const void *data, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) abort(); // a test without memory cannot say anything useful
        b->data = grown;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void bh_puts(bh_bytes *b, const char *s) { bh_put(b, s, strlen(s)); }

void bh_printf(bh_bytes *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < (int)sizeof small) {
        bh_put(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bh_put(b, big, (size_t)n);
    free(big);
}

void bh_free(bh_bytes *b) {
    free(b->data);
    *b = (bh_bytes){0};
}

void bh_tensor_free(bh_tensor *t) {
    free(t->data);
    t->data = NULL;
}

// A v1 JSON tensor (either form) as a bh_tensor; false when malformed.
static bool bh_from_json_rec(bh_tensor *t, const cJSON *v, int depth) {
    if (cJSON_IsNumber(v)) {
        t->data = realloc(t->data, (t->n + 1) * sizeof *t->data);
        t->data[t->n++] = v->valuedouble;
        return true;
    }
    if (!cJSON_IsArray(v) || depth >= 8) return false;
    if (depth >= t->rank) t->rank = depth + 1, t->shape[depth] = cJSON_GetArraySize(v);
    const cJSON *item;
    cJSON_ArrayForEach(item, v) if (!bh_from_json_rec(t, item, depth + 1)) return false;
    return true;
}

bool bh_from_json(bh_tensor *t, const char *name, const cJSON *v) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    if (!cJSON_IsObject(v)) return bh_from_json_rec(t, v, 0);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(v, "shape"), *d;
    bh_tensor flat = {0};
    if (!bh_from_json_rec(&flat, cJSON_GetObjectItemCaseSensitive(v, "data"), 0)) return false;
    t->data = flat.data;
    t->n = flat.n;
    cJSON_ArrayForEach(d, shape) t->shape[t->rank++] = (long long)d->valuedouble;
    return true;
}


static void bh_shape_json(bh_bytes *b, const bh_tensor *t) {
    bh_puts(b, "[");
    for (int i = 0; i < t->rank; i++) bh_printf(b, "%s%lld", i ? "," : "", t->shape[i]);
    bh_puts(b, "]");
}

// Appends t's elements as little-endian float32 or float64.
static void bh_put_elements(bh_bytes *b, const bh_tensor *t, bool f64) {
    for (size_t i = 0; i < t->n; i++) {
        if (f64) {
            bh_put(b, &t->data[i], 8);
        } else {
            float f = (float)t->data[i];
            bh_put(b, &f, 4);
        }
    }
}

void bh_safetensors(bh_bytes *out, const bh_tensor *tensors, int count, bool f64,
                    const char *metadata, int pad_to) {
    bh_bytes header = {0};
    bh_puts(&header, "{");
    if (metadata) bh_printf(&header, "\"__metadata__\":%s", metadata);
    size_t offset = 0, elt = f64 ? 8 : 4;
    for (int i = 0; i < count; i++) {
        size_t bytes = tensors[i].n * elt;
        bh_printf(&header, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":", (metadata || i) ? "," : "",
                  tensors[i].name, f64 ? "F64" : "F32");
        bh_shape_json(&header, &tensors[i]);
        bh_printf(&header, ",\"data_offsets\":[%zu,%zu]}", offset, offset + bytes);
        offset += bytes;
    }
    bh_puts(&header, "}");
    while (pad_to > 1 && header.len % (size_t)pad_to) bh_puts(&header, " ");
    uint64_t n = header.len;
    out->len = 0;
    bh_put(out, &n, 8);
    bh_put(out, header.data, header.len);
    for (int i = 0; i < count; i++) bh_put_elements(out, &tensors[i], f64);
    bh_free(&header);
}

cJSON *bh_read_safetensors(bh_tensor *t, const char *body, size_t len,
                           const char *name, const cJSON **metadata) {
    memset(t, 0, sizeof *t);
    if (len < 8) return NULL;
    uint64_t n;
    memcpy(&n, body, 8);
    if (n > len - 8) return NULL;
    cJSON *root = cJSON_ParseWithLength(body + 8, (size_t)n);
    if (metadata) *metadata = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(root, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(info, "dtype");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(info, "data_offsets"), *d;
    if (!cJSON_IsString(dtype) || cJSON_GetArraySize(offsets) != 2) return root;
    snprintf(t->name, sizeof t->name, "%s", name);
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(info, "shape")) {
        t->shape[t->rank++] = (long long)d->valuedouble;
    }
    size_t begin = (size_t)cJSON_GetArrayItem(offsets, 0)->valuedouble;
    size_t end = (size_t)cJSON_GetArrayItem(offsets, 1)->valuedouble;
    bool f64 = strcmp(dtype->valuestring, "F64") == 0;
    size_t elt = f64 ? 8 : 4;
    if (8 + n + end > len || end < begin) return root;
    t->n = (end - begin) / elt;
    t->data = malloc((t->n ? t->n : 1) * sizeof *t->data);
    const char *at = body + 8 + n + begin;
    for (size_t i = 0; i < t->n; i++) {
        if (f64) {
            memcpy(&t->data[i], at + 8 * i, 8);
        } else {
            float f;
            memcpy(&f, at + 4 * i, 4);
            t->data[i] = f;
        }
    }
    return root;
}

bool bh_close(const bh_tensor *got, const bh_tensor *want, double tol, char *why, size_t cap) {
    if (!got->data || got->rank != want->rank || got->n != want->n ||
        memcmp(got->shape, want->shape, sizeof got->shape) != 0) {
        snprintf(why, cap, "shape differs (rank %d vs %d, %zu vs %zu elements)", got->rank,
                 want->rank, got->n, want->n);
        return false;
    }
    double scale = 0, worst = 0;
    for (size_t i = 0; i < want->n; i++) scale = fmax(scale, fabs(want->data[i]));
    for (size_t i = 0; i < want->n; i++) worst = fmax(worst, fabs(got->data[i] - want->data[i]));
    snprintf(why, cap, "max error %.3g, largest value %.3g", worst, scale);
    return worst <= tol * fmax(scale, 1e-300);
}

void bh_golden_free(bh_golden *g) {
    cJSON_Delete(g->request);
    for (int i = 0; i < 4; i++) bh_tensor_free(&g->in[i]), bh_tensor_free(&g->out[i]);
}

int bh_golden_load(bh_golden *cases, int cap) {
    return bh_golden_load_from(t_golden_dir(), cases, cap);
}

int bh_golden_load_from(const char *dir_path, bh_golden *cases, int cap) {
    DIR *dir = opendir(dir_path);
    int n = 0;
    for (struct dirent *e; dir && n < cap && (e = readdir(dir));) {
        if (!strstr(e->d_name, ".json")) continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir_path, e->d_name);
        char *text = t_read_file(path, NULL);
        cJSON *doc = cJSON_Parse(text);
        free(text);
        bh_golden *g = &cases[n];
        memset(g, 0, sizeof *g);
        snprintf(g->name, sizeof g->name, "%s", e->d_name);
        const cJSON *family = cJSON_GetObjectItemCaseSensitive(doc, "family");
        snprintf(g->family, sizeof g->family, "%s",
                 cJSON_IsString(family) ? family->valuestring : "conv2d");
        g->request = cJSON_DetachItemFromObjectCaseSensitive(doc, "request");
        const cJSON *expected = cJSON_GetObjectItemCaseSensitive(doc, "expected");
        const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(g->request, "dtype");
        g->f64 = !(cJSON_IsString(dtype) && strcmp(dtype->valuestring, "float32") == 0);
        for (int i = 0; i < 4; i++) {
            const cJSON *in = cJSON_GetObjectItemCaseSensitive(g->request, bh_inputs[i]);
            const cJSON *out = cJSON_GetObjectItemCaseSensitive(expected, bh_outputs[i]);
            if (in) bh_from_json(&g->in[i], bh_inputs[i], in);
            if (out) bh_from_json(&g->out[i], bh_outputs[i], out);
        }
        cJSON_Delete(doc);
        n++;
    }
    if (dir) closedir(dir);
    return n;
}

int bh_golden_inputs(bh_tensor in[4], const bh_golden *g) {
    int count = 0;
    for (int i = 0; i < 4; i++)
        if (g->in[i].rank) in[count++] = g->in[i];
    return count;
}

void bh_golden_metadata(bh_bytes *out, const bh_golden *g, const char *op) {
    static const char *const params[] = {"stride",         "padding",     "dilation",
                                         "groups",         "output_padding", "padding_mode"};
    out->len = 0;
    bh_puts(out, "{");
    if (op) bh_printf(out, "\"op\":\"%s\"", op);
    for (int i = 0; i < 6; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(g->request, params[i]);
        if (!v) continue;
        char *text = cJSON_PrintUnformatted(v);
        cJSON *quoted = cJSON_CreateString(text);
        char *as_string = cJSON_PrintUnformatted(quoted);
        bh_printf(out, "%s\"%s\":%s", out->len > 1 ? "," : "", params[i], as_string);
        free(text);
        free(as_string);
        cJSON_Delete(quoted);
    }
    bh_puts(out, "}");
}

double bh_tolerance(const bh_golden *g) { return g->f64 ? 1e-10 : 1e-5; }

// The golden request's parameters as v2 scalars: a number as the field's own name ("stride":
// 2, for every axis), a list as one scalar per axis named by its letters (d, h, w from the last;
// a list of one as the plain name), conv2d's four sides of padding as pad_top ... pad_right.
static void bh_v2_parameters(bh_bytes *b, const cJSON *request, int binary_out) {
    static const char *const fields[] = {"stride", "dilation", "padding", "output_padding"};
    static const char *const sides[4] = {"pad_top", "pad_bottom", "pad_left", "pad_right"};
    bh_puts(b, "\"parameters\":{\"priority\":0");
    for (int f = 0; f < 4; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(request, fields[f]);
        int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
        if (cJSON_IsString(v)) bh_printf(b, ",\"%s\":\"%s\"", fields[f], v->valuestring);
        else if (cJSON_IsNumber(v) || n == 1)
            bh_printf(b, ",\"%s\":%g", fields[f], n ? v->child->valuedouble : v->valuedouble);
        else if (n == 4)
            for (int side = 0; side < 4; side++)
                bh_printf(b, ",\"%s\":%g", sides[side], cJSON_GetArrayItem(v, side)->valuedouble);
        else
            for (int a = 0; a < n; a++)
                bh_printf(b, ",\"%s_%c\":%g", fields[f], "dhw"[3 - n + a],
                          cJSON_GetArrayItem(v, a)->valuedouble);
    }
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(request, "groups");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(request, "padding_mode");
    if (groups) bh_printf(b, ",\"groups\":%g", groups->valuedouble);
    if (cJSON_IsString(mode)) bh_printf(b, ",\"padding_mode\":\"%s\"", mode->valuestring);
    if (binary_out == 1) bh_puts(b, ",\"binary_data_output\":true");
    bh_puts(b, "}");
}

static void bh_put_nested(bh_bytes *b, const double *data, const long long *shape, int rank) {
    if (rank == 0) {
        bh_printf(b, "%.17g", *data);
        return;
    }
    size_t stride = 1;
    for (int i = 1; i < rank; i++) stride *= (size_t)shape[i];
    bh_puts(b, "[");
    for (long long i = 0; i < shape[0]; i++) {
        if (i) bh_puts(b, ",");
        bh_put_nested(b, data + (size_t)i * stride, shape + 1, rank - 1);
    }
    bh_puts(b, "]");
}

void bh_v2_body(bh_bytes *b, size_t *header_len, const bh_golden *g, bool backward,
                bh_v2_form form, const char *id) {
    b->len = 0;
    bh_puts(b, "{");
    if (id) bh_printf(b, "\"id\":\"%s\",", id);
    bh_v2_parameters(b, g->request, form.binary_out);
    bh_puts(b, ",\"inputs\":[");
    int count = 0;
    for (int i = 0; i < 4; i++) {
        const bh_tensor *t = &g->in[i];
        if (!t->rank || (i == 3 && !backward)) continue;
        bh_printf(b, "%s{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":", count++ ? "," : "",
                  bh_inputs[i], g->f64 ? "FP64" : "FP32");
        bh_shape_json(b, t);
        if (form.binary_in) {
            bh_printf(b, ",\"parameters\":{\"binary_data_size\":%zu}}", t->n * (g->f64 ? 8 : 4));
        } else if (form.nested) {
            bh_puts(b, ",\"data\":");
            bh_put_nested(b, t->data, t->shape, t->rank);
            bh_puts(b, "}");
        } else {
            bh_puts(b, ",\"data\":[");
            for (size_t k = 0; k < t->n; k++) bh_printf(b, "%s%.17g", k ? "," : "", t->data[k]);
            bh_puts(b, "]}");
        }
    }
    bh_puts(b, "]");
    if (form.pick && backward)
        bh_printf(b, ",\"outputs\":[{\"name\":\"dw\"%s},{\"name\":\"dx\"}]",
                  form.binary_out == 2 ? ",\"parameters\":{\"binary_data\":true}" : "");
    else if (form.binary_out == 2)
        bh_printf(b, ",\"outputs\":[{\"name\":\"%s\",\"parameters\":{\"binary_data\":true}}]",
                  backward ? "dw" : "y");
    bh_puts(b, "}");
    *header_len = b->len;
    for (int i = 0; form.binary_in && i < 4; i++)
        if (g->in[i].rank && (i != 3 || backward)) bh_put_elements(b, &g->in[i], g->f64);
}

cJSON *bh_v2_read(const char *body, size_t len, bh_tensor outs[4],
                  char names[4][8], size_t *json_len) {
    const char *end = NULL;
    *json_len = 0;
    cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!doc) return NULL;
    *json_len = (size_t)(end - body);
    size_t at = *json_len;
    memset(outs, 0, 4 * sizeof *outs);
    int k = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(doc, "outputs")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(o, "name")->valuestring;
        int which = 0;
        while (which < 4 && strcmp(bh_outputs[which], name) != 0) which++;
        snprintf(names[k++], 8, "%s", name);
        if (which == 4 || k > 4) break;
        bh_tensor *t = &outs[which];
        memset(t, 0, sizeof *t);
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(o, "shape"), *d;
        cJSON_ArrayForEach(d, shape) t->shape[t->rank++] = (long long)d->valuedouble;
        const char *datatype = cJSON_GetObjectItemCaseSensitive(o, "datatype")->valuestring;
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(o, "parameters"), "binary_data_size");
        if (size) {
            bool f64 = strcmp(datatype, "FP64") == 0;
            t->n = (size_t)size->valuedouble / (f64 ? 8 : 4);
            t->data = calloc(t->n + 1, sizeof *t->data);
            for (size_t i = 0; i < t->n && at + (i + 1) * (f64 ? 8 : 4) <= len; i++) {
                if (f64) {
                    memcpy(&t->data[i], body + at + 8 * i, 8);
                } else {
                    float f;
                    memcpy(&f, body + at + 4 * i, 4);
                    t->data[i] = f;
                }
            }
            at += (size_t)size->valuedouble;
        } else {
            bh_tensor flat = {0};
            bh_from_json(&flat, name, cJSON_GetObjectItemCaseSensitive(o, "data"));
            t->data = flat.data;
            t->n = flat.n;
        }
    }
    for (; k < 4; k++) names[k][0] = '\0';
    CHECK(at == len, "the binary outputs fill the answer (%zu of %zu bytes)", at, len);
    return doc;
}
