#include "api/codec/codec_json_parse.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_buf.h"
#include "api/num/num.h"

// Where each placeholder sits in the rewritten text and what it replaced in the original, to
// report cJSON's error positions in the client's coordinates.
typedef struct {
    size_t src_begin, src_end, out_begin, out_end;
} span;

typedef struct {
    const char *end;
    codec_json_doc *doc;
    api_buf out;
    span *spans;
    const char *bad_text;
    size_t cost, cost_limit; // bytes the parse holds beyond the body (codec_json_cost_limit)
} lifter;

// NOT_NUMBERS: the array holds something else (a string, an object): cJSON gets it all.
// BAD_TEXT: bytes JSON does not allow where they are, which cJSON would take all the same: a
// number JSON does not have (01, +1, .5, 1.) or a control character (cJSON skips any byte up to
// 0x20 as white space). The lifter refuses them, and must: a one-number array that it did not
// lift, because of a control character in it, would pass for a placeholder.
// TOO_COMPLEX: parsing would hold more than codec_json_cost_limit bytes.
typedef enum { LIFTED, NOT_NUMBERS, BAD_TEXT, NO_MEMORY, TOO_COMPLEX } lift_result;

static inline bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
static inline bool is_control(char c) { return (unsigned char)c < 0x20 && !is_space(c); }

static const char *skip_space(const char *p, const char *end) {
    while (p < end && is_space(*p)) p++;
    return p;
}

// Notes the first byte JSON does not allow (none in a string is below 0x20).
static inline void note_bad(const char **bad, const char *p) {
    if (!*bad) *bad = p;
}

// Whether p starts the escape \u0000: cJSON would end the string there, so that
// "conv2d.forward\u0000evil" would read as "conv2d.forward". No field takes a NUL.
static bool is_nul_escape(const char *p, const char *end) {
    return end - p >= 6 && memcmp(p, "\\u0000", 6) == 0;
}

// Past the string literal starting at the quote p (or to `end` when it is not closed).
static const char *skip_string(const char *p, const char *end, const char **bad) {
    for (p++; p < end; p++) {
        if ((unsigned char)*p < 0x20 || is_nul_escape(p, end)) note_bad(bad, p);
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return end;
}

// Past the bracketed value starting at p (strings respected), or `end` when it is not closed.
static const char *skip_brackets(const char *p, const char *end, const char **bad) {
    size_t depth = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            p = skip_string(p, end, bad);
            continue;
        }
        if (is_control(c)) note_bad(bad, p);
        if (c == '[' || c == '{')
            depth++;
        else if ((c == ']' || c == '}') && --depth == 0)
            return p + 1;
        p++;
    }
    return end;
}

// Past the run of '[' (and white space) starting at p.
static const char *skip_opening(const char *p, const char *end) {
    while (p < end && (*p == '[' || is_space(*p))) p++;
    return p;
}

// Whether the value at p, first thing after a run of '[', is something number-like.
static bool starts_numeric(const char *p, const char *end) {
    if (p == end) return false;
    char c = *p;
    return c == '-' || (c >= '0' && c <= '9') || c == 'N' || c == 'n' || c == 'I' || c == 'i';
}

// The spellings of non-finite numbers that JSON writers produce (Python: NaN, Infinity,
// -Infinity; JavaScript's JSON.stringify: null), matched case-insensitively to report them.
static const char *non_finite_token(const char *p, const char *end) {
    static const char *const spellings[] = {"-infinity", "infinity", "-inf", "inf",
                                            "-nan",      "nan",      "null"};
    for (size_t i = 0; i < sizeof spellings / sizeof *spellings; i++) {
        size_t n = strlen(spellings[i]);
        if ((size_t)(end - p) >= n && strncasecmp(p, spellings[i], n) == 0 &&
            (p + n == end || !isalnum((unsigned char)p[n])))
            return p + n;
    }
    return NULL;
}

// Arrays start small (stride, shape); one that outgrows SMALL_ARRAY gets room for every number
// the rest of the body could hold (each takes 2 bytes or more, "1,"). Most of that is never
// touched, so it costs address space, not memory: big blocks are mapped lazily, and the unused
// tail is given back when the array ends. So a tensor is never copied as it grows, which at
// 12 MB costs more than parsing it. Without that much address space, doubling takes over.
enum { SMALL_ARRAY = 4096 };

static bool grow_values(codec_json_array *b, int64_t *cap, const char *p, const char *end) {
    int64_t doubled = *cap ? *cap * 2 : 64, want = doubled;
    if (*cap == SMALL_ARRAY) {
        int64_t bound = b->count + (int64_t)((size_t)(end - p) / 2) + 1;
        if (bound > doubled && bound <= ((int64_t)1 << 28)) want = bound;
    }
    double *values = realloc(b->values, (size_t)want * sizeof *values);
    if (!values && want > doubled) {
        want = doubled;
        values = realloc(b->values, (size_t)want * sizeof *values);
    }
    if (!values) return false;
    if (want > SMALL_ARRAY) api_hint_huge_pages(values, (size_t)want * sizeof *values);
    b->values = values;
    *cap = want;
    return true;
}

static inline bool append_value(codec_json_array *b, int64_t *cap, double v, const char *p,
                                const char *end) {
    if (b->count == *cap && !grow_values(b, cap, p, end)) return false;
    b->values[b->count++] = v;
    return true;
}

static void note_non_finite(codec_json_array *b, const char *token, const char *token_end) {
    if (b->problem != CODEC_ARRAY_OK) return;
    b->problem = CODEC_ARRAY_NON_FINITE;
    b->bad_index = b->count;
    size_t n = (size_t)(token_end - token);
    if (n >= sizeof b->bad_token) n = sizeof b->bad_token - 1;
    memcpy(b->bad_token, token, n);
    b->bad_token[n] = '\0';
}

// Records the first nesting fault; `depth` indices of counts[] (each minus one) locate it.
static void note_ragged(codec_json_array *b, codec_json_ragged_kind kind, const int64_t *counts,
                        int depth, int64_t got, int64_t want) {
    if (b->problem != CODEC_ARRAY_OK) return;
    b->problem = CODEC_ARRAY_RAGGED;
    b->ragged = kind;
    b->ragged_depth = depth;
    for (int i = 0; i < depth; i++) b->ragged_at[i] = counts[i] - 1;
    b->ragged_got = got;
    b->ragged_want = want;
}

static inline bool starts_number(char c) {
    return c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9');
}

// Scans the array at p ('[') into *b; *after gets the byte after its closing ']' (or, for
// BAD_TEXT, the offending byte).
static lift_result lift_array(codec_json_array *b, const char *p, const char *end,
                              const char **after) {
    int64_t counts[CODEC_JSON_MAX_DEPTH]; // elements seen so far at each open level
    int64_t cap = 0;
    int level = 1, rank = 0; // rank 0: no number seen yet
    for (int i = 0; i < CODEC_JSON_MAX_DEPTH; i++) b->shape[i] = -1;
    counts[0] = 0;
    p++;
    bool just_opened = true;
    for (;;) {
        // A value (or, right after '[', the ']' of an empty array).
        p = skip_space(p, end);
        if (p == end) return NOT_NUMBERS;
        char c = *p;
        if (is_control(c)) {
            *after = p;
            return BAD_TEXT;
        }
        if (c == '[') {
            counts[level - 1]++;
            if (level == CODEC_JSON_MAX_DEPTH) return NOT_NUMBERS;
            if (rank && level >= rank)
                note_ragged(b, CODEC_RAGGED_ARRAY_FOR_NUMBER, counts, level, 0, 0);
            counts[level++] = 0;
            just_opened = true;
            p++;
            continue;
        }
        if (c != ']' || !just_opened) {
            counts[level - 1]++;
            double v;
            const char *token = p;
            p = num_parse_f64(&v, token, end);
            if (p && p < end && starts_number(*p)) { // 01, 1.5.2, 1e5-3: a number running on
                *after = token;
                return BAD_TEXT;
            }
            if (!p || !isfinite(v)) {
                const char *spelled = p ? NULL : non_finite_token(token, end);
                if (!p && !spelled) {
                    if (!starts_number(c)) return NOT_NUMBERS;
                    *after = token;
                    return BAD_TEXT;
                }
                p = p ? p : spelled;
                note_non_finite(b, token, p);
                v = NAN;
            }
            if (!rank)
                rank = level;
            else if (level != rank)
                note_ragged(b, CODEC_RAGGED_NUMBER_FOR_ARRAY, counts, level, 0, 0);
            if (!append_value(b, &cap, v, p, end)) return NO_MEMORY;
            p = skip_space(p, end);
        }
        just_opened = false;
        // After a value: ',' for the next, or ']' closing one level or more.
        for (;;) {
            if (p == end) return NOT_NUMBERS;
            if (*p == ',') break;
            if (is_control(*p)) {
                *after = p;
                return BAD_TEXT;
            }
            if (*p != ']') return NOT_NUMBERS; // cJSON will say what is wrong
            int64_t n = counts[level - 1];
            if (b->shape[level - 1] < 0)
                b->shape[level - 1] = n;
            else if (b->shape[level - 1] != n)
                note_ragged(b, CODEC_RAGGED_LENGTH, counts, level - 1, n, b->shape[level - 1]);
            p++;
            if (--level == 0) {
                b->rank = rank;
                *after = p;
                double *fitted = realloc(b->values, (size_t)b->count * sizeof *b->values);
                if (fitted) b->values = fitted;
                return LIFTED;
            }
            p = skip_space(p, end);
        }
        p++;
    }
}

// What the parse holds beyond the body, in bytes (an upper bound, allocator overhead included):
// for each lifted array its blob and span (in arrays that grow by doubling) and its numbers;
// for what cJSON parses, a node per value (sizeof(cJSON) in a malloc chunk) and a copy of
// each string and key.
enum { CHUNK_OVERHEAD = 16, NODE_BYTES = sizeof(cJSON) + CHUNK_OVERHEAD };
static size_t blob_cost(const codec_json_array *b) {
    size_t values = (size_t)b->count * sizeof *b->values + CHUNK_OVERHEAD;
    return 2 * (sizeof(codec_json_array) + sizeof(span)) + (values < 32 ? 32 : values);
}

// The cJSON part of the cost for the rewritten text: a node per value (every value but the
// first follows a ',' or opens a container) and a copy per string.
static size_t cjson_cost(const char *text, size_t len) {
    size_t nodes = 1, strings = 0, string_bytes = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == ',' || c == '[' || c == '{') {
            nodes++;
        } else if (c == '"') {
            size_t start = ++i;
            while (i < len && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
            strings++;
            string_bytes += i - start;
        }
    }
    return nodes * NODE_BYTES + strings * (CHUNK_OVERHEAD + 1) + string_bytes;
}

size_t codec_json_cost_limit(size_t len) {
    return CODEC_JSON_COST_PER_BYTE * len + CODEC_JSON_COST_FLOOR;
}

static bool add_blob(lifter *L, const codec_json_array *b, span where) {
    codec_json_doc *doc = L->doc;
    if (doc->count == doc->cap) {
        size_t cap = doc->cap ? doc->cap * 2 : 8;
        codec_json_array *blobs = realloc(doc->blobs, cap * sizeof *blobs);
        span *spans = realloc(L->spans, cap * sizeof *spans);
        if (blobs) doc->blobs = blobs;
        if (spans) L->spans = spans;
        if (!blobs || !spans) return false;
        doc->cap = cap;
    }
    L->spans[doc->count] = where;
    doc->blobs[doc->count++] = *b;
    return true;
}

// Copies the text to L->out with every numeric array replaced by its placeholder. Returns
// LIFTED, BAD_TEXT (L->bad_text says where), NO_MEMORY or TOO_COMPLEX. Linear in the text: a
// run of '[' is looked at once (every '[' in it starts the same first value), and an array
// that is not lifted is skipped whole.
static lift_result rewrite(lifter *L, const char *begin) {
    const char *p = begin, *end = L->end, *copied = begin;
    while (p < end && !L->bad_text) {
        if (*p == '"') {
            p = skip_string(p, end, &L->bad_text);
            continue;
        }
        if (*p != '[') {
            if (is_control(*p)) L->bad_text = p;
            p++;
            continue;
        }
        const char *first = skip_opening(p, end);
        if (!starts_numeric(first, end)) {
            p = first; // arrays of other things: arrays further in may still be numeric
            continue;
        }
        codec_json_array b = {0};
        const char *after;
        lift_result r = lift_array(&b, p, end, &after);
        if (r == LIFTED && (L->cost += blob_cost(&b)) > L->cost_limit) r = TOO_COMPLEX;
        if (r != LIFTED) {
            free(b.values);
            if (r == NO_MEMORY || r == TOO_COMPLEX) return r;
            if (r == BAD_TEXT) L->bad_text = after;
            p = skip_brackets(p, end, &L->bad_text); // cJSON gets all of it, and its verdict
            continue;
        }
        api_buf_put(&L->out, copied, (size_t)(p - copied));
        span where = {(size_t)(p - begin), (size_t)(after - begin), L->out.len, 0};
        api_buf_printf(&L->out, "[%zu]", L->doc->count);
        where.out_end = L->out.len;
        if (L->out.failed || !add_blob(L, &b, where)) {
            free(b.values);
            return NO_MEMORY;
        }
        p = copied = after;
    }
    if (L->bad_text) return BAD_TEXT;
    api_buf_put(&L->out, copied, (size_t)(p - copied));
    if (L->out.failed) return NO_MEMORY;
    L->cost += L->out.len + cjson_cost(L->out.data, L->out.len);
    return L->cost > L->cost_limit ? TOO_COMPLEX : LIFTED;
}

// The original offset of rewritten offset `at`.
static size_t original_offset(const lifter *L, size_t at) {
    size_t src = at;
    for (size_t i = 0; i < L->doc->count && L->spans[i].out_begin <= at; i++) {
        const span *s = &L->spans[i];
        src = at < s->out_end ? s->src_begin : s->src_end + (at - s->out_end);
    }
    return src;
}

// Whether the text ends inside a string or with brackets or braces still open: cut short.
static bool ends_open(const char *body, size_t len) {
    int64_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else {
            depth += (c == '[' || c == '{') - (c == ']' || c == '}');
        }
    }
    return in_string || depth > 0;
}

static bool syntax_error(api_error *err, const char *body, size_t len, size_t at,
                         const char *what) {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < at && i < len; i++) {
        if (body[i] == '\n')
            line++, column = 1;
        else
            column++;
    }
    if (at >= len || ends_open(body, len))
        return api_fail(err, API_E_INVALID_JSON, "",
                        "the body is not valid JSON: it ends (after %zu bytes) before the value "
                        "is complete; is it cut off?",
                        len);
    char near[24];
    size_t n = len - at < 16 ? len - at : 16;
    memcpy(near, body + at, n);
    near[n] = '\0';
    char quoted[24];
    return api_fail(err, API_E_INVALID_JSON, "",
                    "the body is not valid JSON: %s at line %zu, column %zu, near '%s'", what, line,
                    column, api_quote(quoted, sizeof quoted, near));
}

// cJSON answers NULL both for a syntax error and for a failed allocation; its allocator notes
// the latter for this thread, so that a valid body is never called invalid for want of memory.
static _Thread_local bool cjson_out_of_memory;

static void *cjson_malloc(size_t n) {
    void *p = malloc(n);
    if (!p) cjson_out_of_memory = true;
    return p;
}

static void install_cjson_allocator(void) {
    cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = cjson_malloc, .free_fn = free});
}

static bool refuse_complex(api_error *err, size_t len, size_t cost) {
    return api_fail(err, API_E_JSON_TOO_COMPLEX, "",
                    "the body's JSON has too much structure for its %zu bytes: parsing it would "
                    "hold over %zu MiB (the limit is %d bytes per body byte + %d MiB); send each "
                    "tensor as one array of numbers (or a binary format), not as many small "
                    "values",
                    len, cost >> 20, CODEC_JSON_COST_PER_BYTE, CODEC_JSON_COST_FLOOR >> 20);
}

static bool refuse_no_memory(api_error *err) {
    return api_fail(err, API_E_OUT_OF_MEMORY, "",
                    "the server ran out of memory while reading the body; retry later");
}

bool codec_json_parse(codec_json_doc *doc, const char *body, size_t len, api_error *err) {
    static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
    pthread_once(&hooks_once, install_cjson_allocator);
    *doc = (codec_json_doc){0};
    // RFC 8259 lets a parser skip a byte order mark, which some Windows tools write.
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
        body += 3;
        len -= 3;
    }
    const char *first = skip_space(body, body + len);
    if (first == body + len)
        return api_fail(err, API_E_INVALID_JSON, "",
                        "the body is empty; send one JSON object, such as "
                        "{\"op\": \"conv2d.forward\", \"x\": [[...]], \"w\": [[...]]}");
    lifter L = {.end = body + len, .doc = doc, .cost_limit = codec_json_cost_limit(len)};
    lift_result r = rewrite(&L, body);
    if (r != LIFTED) {
        api_buf_free(&L.out);
        free(L.spans);
        codec_json_doc_free(doc);
        if (r == BAD_TEXT && (unsigned char)*L.bad_text < 0x20)
            return syntax_error(err, body, len, (size_t)(L.bad_text - body),
                                "a control character (tab, newline and return are the only ones "
                                "JSON allows, and none inside a string)");
        if (r == BAD_TEXT && *L.bad_text == '\\')
            return syntax_error(err, body, len, (size_t)(L.bad_text - body),
                                "\\u0000 in a string (no field of the API takes a NUL character)");
        if (r == BAD_TEXT)
            return syntax_error(err, body, len, (size_t)(L.bad_text - body),
                                "a number JSON does not allow (JSON has no 01, +1, .5 or 1.)");
        if (r == TOO_COMPLEX) return refuse_complex(err, len, L.cost);
        return refuse_no_memory(err);
    }
    const char *parse_end = NULL;
    cjson_out_of_memory = false;
    doc->root = cJSON_ParseWithLengthOpts(L.out.data, L.out.len, &parse_end, false);
    bool ok = true;
    if (!doc->root && cjson_out_of_memory) {
        ok = refuse_no_memory(err);
    } else if (!doc->root) {
        size_t at = parse_end ? (size_t)(parse_end - L.out.data) : L.out.len;
        ok = syntax_error(err, body, len, original_offset(&L, at), "unexpected character");
    } else {
        size_t at = (size_t)(parse_end - L.out.data);
        while (at < L.out.len && is_space(L.out.data[at])) at++;
        if (at < L.out.len)
            ok = syntax_error(err, body, len, original_offset(&L, at),
                              "more text after the end of the JSON value");
    }
    api_buf_free(&L.out);
    free(L.spans);
    if (!ok) codec_json_doc_free(doc);
    return ok;
}

codec_json_array *codec_json_array_of(const codec_json_doc *doc, const cJSON *item) {
    if (!cJSON_IsArray(item)) return NULL;
    const cJSON *only = item->child;
    if (!only || only->next || !cJSON_IsNumber(only)) return NULL;
    double k = only->valuedouble;
    if (!(k >= 0 && k < (double)doc->count) || k != (double)(size_t)k) return NULL;
    return &doc->blobs[(size_t)k];
}

void codec_json_doc_free(codec_json_doc *doc) {
    for (size_t i = 0; i < doc->count; i++) free(doc->blobs[i].values);
    free(doc->blobs);
    cJSON_Delete(doc->root);
    *doc = (codec_json_doc){0};
}
