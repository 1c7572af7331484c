// The reference (core/conv_ref.h) against PyTorch itself: every golden case in
// tests/golden (or $CONVD_GOLDEN_DIR) gives inputs and PyTorch's y, dx, dw, db. The
// reference judges everything else (the fast path, students' answers), so it is checked
// against the outside world here, and the fast path against it on the same inputs.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv.h"
#include "core/conv_ref.h"
#include "server/blas_boot.h"
#include "tests/harness/conv_harness.h"
#include "tests/testlib.h"

// A {"shape": [...], "data": [...]} tensor: its dims (at most 4) and its values as doubles,
// rounded to float32 for a float32 case. Returns NULL (and *rank = 0) on any other form.
static double *read_tensor(const cJSON *t, int64_t dims[4], int *rank, conv_dtype dt) {
    *rank = 0;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
    if (!cJSON_IsArray(shape) || !cJSON_IsArray(data) || cJSON_GetArraySize(shape) > 4)
        return NULL;
    int64_t count = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        if (!cJSON_IsNumber(d) || d->valuedouble < 1) return NULL;
        dims[(*rank)++] = (int64_t)d->valuedouble;
        count *= (int64_t)d->valuedouble;
    }
    if (cJSON_GetArraySize(data) != count) return NULL;
    double *values = conv_xmalloc((size_t)count * sizeof *values);
    int64_t i = 0;
    cJSON_ArrayForEach(d, data) {
        values[i] = d->valuedouble;
        if (dt == CONV_FLOAT32) values[i] = (float)values[i];
        i++;
    }
    return values;
}

// stride / dilation: int or [h, w]. Returns false on any other form.
static bool read_pair(const cJSON *v, int64_t *h, int64_t *w) {
    if (!v) return true; // absent: keep the default
    if (cJSON_IsNumber(v)) {
        *h = *w = (int64_t)v->valuedouble;
        return true;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2) {
        *h = (int64_t)cJSON_GetArrayItem(v, 0)->valuedouble;
        *w = (int64_t)cJSON_GetArrayItem(v, 1)->valuedouble;
        return true;
    }
    return false;
}

// padding: int, [ph, pw], [top, bottom, left, right], "same" or "valid".
static bool read_padding(const cJSON *v, conv_geom *g) {
    int64_t p[4] = {0, 0, 0, 0};
    if (!v || (cJSON_IsString(v) && !strcmp(v->valuestring, "valid"))) {
        // zeros
    } else if (cJSON_IsString(v) && !strcmp(v->valuestring, "same")) {
        conv_pad_same(g->kh, g->dilation_h, &p[0], &p[1]);
        conv_pad_same(g->kw, g->dilation_w, &p[2], &p[3]);
    } else if (cJSON_IsNumber(v)) {
        p[0] = p[1] = p[2] = p[3] = (int64_t)v->valuedouble;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2) {
        p[0] = p[1] = (int64_t)cJSON_GetArrayItem(v, 0)->valuedouble;
        p[2] = p[3] = (int64_t)cJSON_GetArrayItem(v, 1)->valuedouble;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 4) {
        for (int i = 0; i < 4; i++) p[i] = (int64_t)cJSON_GetArrayItem(v, i)->valuedouble;
    } else {
        return false;
    }
    g->pad_top = p[0];
    g->pad_bottom = p[1];
    g->pad_left = p[2];
    g->pad_right = p[3];
    return true;
}

// The geometry from x's and w's shapes (4-D NCHW, 3-D CHW, or 2-D HW with a 2-D kernel) and
// the request's parameters.
static bool read_geometry(conv_geom *g, const cJSON *req, const int64_t xd[4], int xr,
                          const int64_t wd[4], int wr) {
    *g = (conv_geom){.n = 1, .c = 1, .f = 1, .groups = 1, .stride_h = 1, .stride_w = 1,
                     .dilation_h = 1, .dilation_w = 1};
    if (xr == 4 && wr == 4) {
        g->n = xd[0], g->c = xd[1], g->h = xd[2], g->w = xd[3];
        g->f = wd[0], g->kh = wd[2], g->kw = wd[3];
    } else if (xr == 3 && wr == 4) {
        g->c = xd[0], g->h = xd[1], g->w = xd[2];
        g->f = wd[0], g->kh = wd[2], g->kw = wd[3];
    } else if (xr == 2 && wr == 2) {
        g->h = xd[0], g->w = xd[1];
        g->kh = wd[0], g->kw = wd[1];
    } else {
        return false;
    }
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(req, "groups");
    if (groups) g->groups = (int64_t)groups->valuedouble;
    return read_pair(cJSON_GetObjectItemCaseSensitive(req, "stride"), &g->stride_h,
                     &g->stride_w) &&
           read_pair(cJSON_GetObjectItemCaseSensitive(req, "dilation"), &g->dilation_h,
                     &g->dilation_w) &&
           read_padding(cJSON_GetObjectItemCaseSensitive(req, "padding"), g);
}

static void check_golden(const char *path) {
    size_t len = 0;
    char *text = t_read_file(path, &len);
    cJSON *root = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(root, "request");
    const cJSON *expected = cJSON_GetObjectItemCaseSensitive(root, "expected");
    if (!CHECK(req && expected, "%s: not a golden case", path)) {
        cJSON_Delete(root);
        return;
    }
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(req, "dtype");
    const conv_dtype dt = cJSON_IsString(dtype) && !strcmp(dtype->valuestring, "float64")
                              ? CONV_FLOAT64
                              : CONV_FLOAT32;
    int64_t xd[4], wd[4], other[4];
    int xr, wr, other_rank;
    double *x = read_tensor(cJSON_GetObjectItemCaseSensitive(req, "x"), xd, &xr, dt);
    double *w = read_tensor(cJSON_GetObjectItemCaseSensitive(req, "w"), wd, &wr, dt);
    const cJSON *b_json = cJSON_GetObjectItemCaseSensitive(req, "b");
    double *b = b_json ? read_tensor(b_json, other, &other_rank, dt) : NULL;
    double *dy = read_tensor(cJSON_GetObjectItemCaseSensitive(req, "dy"), other, &other_rank, dt);
    conv_geom g;
    const bool geometry = x && w && dy && (b || !b_json) && read_geometry(&g, req, xd, xr, wd, wr);
    if (!CHECK(geometry && conv_geom_check(&g, dt, NULL) == CONV_OK,
               "%s: cannot read a valid layer from the request", path)) {
        free(x), free(w), free(b), free(dy);
        cJSON_Delete(root);
        return;
    }
    conv_case cc;
    conv_case_adopt(&cc, &g, x, w, b, dy, dt);
    static const char *const names[PASS_COUNT] = {"y", "dx", "dw", "db"};
    for (conv_pass p = PASS_FORWARD; p < PASS_COUNT; p++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(expected, names[p]);
        if (!t) {
            CHECK(p == PASS_BIAS && !b_json, "%s: expected %s is missing", path, names[p]);
            continue;
        }
        int64_t dims[4];
        int rank;
        double *want = read_tensor(t, dims, &rank, CONV_FLOAT64);
        int64_t count = 1;
        for (int i = 0; i < rank; i++) count *= dims[i];
        if (!CHECK(want && count == cc.count[p], "%s: expected %s has %lld elements, want %lld",
                   path, names[p], (long long)count, (long long)cc.count[p])) {
            free(want);
            continue;
        }
        int off = 0;
        int64_t first = -1;
        for (int64_t i = 0; i < count; i++)
            if (!(fabs(cc.ref[p][i] - want[i]) <= conv_tolerance(dt) * cc.scale[p][i])) {
                off++;
                if (first < 0) first = i;
            }
        CHECK(off == 0, "%s: reference %s differs from PyTorch in %d of %lld elements (first "
              "[%lld]: %.17g vs %.17g)", path, names[p], off, (long long)count,
              (long long)first, first < 0 ? 0 : cc.ref[p][first], first < 0 ? 0 : want[first]);
        free(want);
    }
    conv_scratch s;
    conv_scratch_init(&s, conv_workspace_size(&g, dt, 2, CONV_WORKSPACE_CAP_DEFAULT), 0, 2);
    for (conv_pass p = PASS_FORWARD; p < PASS_COUNT; p++) {
        char why[512] = "";
        CHECK(conv_case_check(&cc, p, &s.ex, why, sizeof why, NULL), "%s: fast path: %s", path,
              why);
    }
    conv_scratch_free(&s);
    conv_case_free(&cc);
    cJSON_Delete(root);
}

int main(int argc, char **argv) {
    (void)argc;
    blas_boot(argv);
    const char *dir = t_golden_dir();
    DIR *d = opendir(dir);
    if (!CHECK(d != NULL, "cannot open the golden directory %s", dir)) return t_finish("test_conv_golden");
    int cases = 0;
    const struct dirent *e;
    while ((e = readdir(d))) {
        const size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 5, ".json")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        check_golden(path);
        cases++;
    }
    closedir(d);
    CHECK(cases >= 15, "only %d golden cases in %s", cases, dir);
    printf("golden: %d cases\n", cases);
    return t_finish("test_conv_golden");
}
