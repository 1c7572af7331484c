#include "server/http_config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

typedef enum { OPT_STR, OPT_INT, OPT_SIZE, OPT_I64, OPT_SECONDS, OPT_BOOL } opt_kind;

// One setting: flag --NAME, environment CONVD_NAME (upper case, '-' as '_').
typedef struct {
    const char *name;
    opt_kind kind;
    size_t offset;
    size_t str_cap; // OPT_STR only
    double min, max;
    const char *help;
} opt_spec;

#define FIELD(f) offsetof(http_config, f)
#define STR_FIELD(f) FIELD(f), sizeof(((http_config *)0)->f)

static const opt_spec options[] = {
    {"host", OPT_STR, STR_FIELD(host), 0, 0, "address to listen on (0.0.0.0 or :: for all)"},
    {"port", OPT_INT, FIELD(port), 0, 0, 65535, "TCP port; 0 picks a free one (printed on stdout)"},
    {"workers", OPT_INT, FIELD(workers), 0, 1, 1024, "compute worker threads"},
    {"io-threads", OPT_INT, FIELD(io_threads), 0, 1, 256, "connection I/O threads"},
    {"queue", OPT_INT, FIELD(queue), 0, 0, 1000000,
     "requests waiting for a worker beyond those running (503 beyond)"},
    {"max-body", OPT_SIZE, FIELD(max_body), 0, 1, (double)(1ull << 40),
     "largest request body, bytes (suffixes K, M, G: 1024-based; 413 beyond)"},
    {"max-memory", OPT_SIZE, FIELD(max_memory), 0, 1 << 20, (double)(1ull << 50),
     "memory budget of all admitted requests, bytes (503 beyond)"},
    {"max-elements", OPT_I64, FIELD(api.max_elements), 0, 1, 9.0e15,
     "largest tensor of a request, elements (suffixes k, M, G, T: 1000-based)"},
    {"max-flops", OPT_I64, FIELD(api.max_flops), 0, 1, 9.0e18, "largest work of a request, FLOPs"},
    {"workspace-cap", OPT_SIZE, FIELD(api.workspace_cap), 0, 4096, (double)(1ull << 40),
     "scratch memory per request, bytes"},
    {"max-connections", OPT_INT, FIELD(max_connections), 0, 1, 1000000, "open connections at once"},
    {"timeout", OPT_INT, FIELD(timeout_s), 0, 1, 86400,
     "seconds a connection may stay idle (slow clients are cut off)"},
    {"header-timeout", OPT_SECONDS, FIELD(header_timeout_s), 0, 0.1, 86400,
     "seconds a client gets for its request line and headers in all (then it is cut off; "
     "near the connection cap the oldest such client makes room)"},
    {"min-body-rate", OPT_SECONDS, FIELD(min_body_rate), 0, 0, 1e12,
     "bytes per second a request body must average after --header-timeout (0 = no minimum)"},
    {"max-uploads", OPT_INT, FIELD(max_uploads), 0, 0, 1000000,
     "request bodies one client address may send at once (0 = no cap; 503 beyond)"},
    {"metrics-auth", OPT_BOOL, FIELD(metrics_auth), 0, 0, 1,
     "GET /metrics needs an API key too (with --api-keys; on/off)"},
    {"drain-timeout", OPT_SECONDS, FIELD(drain_timeout_s), 0, 0, 86400,
     "seconds in-flight requests get to finish after SIGTERM/SIGINT"},
    {"retry-after", OPT_INT, FIELD(retry_after_s), 0, 0, 3600, "Retry-After seconds of a 503"},
    {"cors-origin", OPT_STR, STR_FIELD(cors_origin), 0, 0,
     "CORS: '' off, '*' any origin, or origins separated by commas"},
    {"access-log", OPT_BOOL, FIELD(access_log), 0, 0, 1,
     "one JSON line per request on stderr (on/off)"},
    {"api-keys", OPT_STR, STR_FIELD(api_keys), 0, 0,
     "file of API keys (a key or sha256:HEX a line): compute routes then need a Bearer key"},
    {"rate-limit", OPT_SECONDS, FIELD(rate_limit), 0, 0, 1e9,
     "compute requests per second per API key (0 = no limit; 429 + Retry-After beyond)"},
    {"rate-burst", OPT_INT, FIELD(rate_burst), 0, 0, 1000000000,
     "requests an API key may send at once (0 = the rate, at least 1)"},
    {"tls-cert", OPT_STR, STR_FIELD(tls_cert), 0, 0,
     "PEM certificate (chain) file: serve HTTPS, with --tls-key"},
    {"tls-key", OPT_STR, STR_FIELD(tls_key), 0, 0, "PEM private key file of --tls-cert"},
};
#define N_OPTIONS (sizeof options / sizeof *options)

// The smaller of a cgroup v2 file's number and `fallback` ("max" or no file: fallback).
static double cgroup_limit(const char *path, double fallback, double *second) {
    FILE *f = fopen(path, "r");
    if (!f) return fallback;
    char text[64] = "";
    double value = fallback;
    if (fgets(text, sizeof text, f) && isdigit((unsigned char)text[0])) {
        char *end;
        value = strtod(text, &end);
        if (second) *second = strtod(end, NULL);
    }
    fclose(f);
    return value < fallback ? value : fallback;
}

int http_config_cores(void) {
    cpu_set_t set;
    int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    if (cores < 1) cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    double period = 0, quota = cgroup_limit("/sys/fs/cgroup/cpu.max", INFINITY, &period);
    if (isfinite(quota) && period > 0) {
        int allowed = (int)ceil(quota / period);
        if (allowed >= 1 && allowed < cores) cores = allowed;
    }
    return cores;
}

// Half of the memory this process may use (RAM, or a cgroup v2 limit when lower): the rest is
// for the server itself, the page cache and whatever shares the machine.
static size_t default_memory_budget(void) {
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (!(ram > 0)) ram = 2.0 * (1u << 30);
    double limit = cgroup_limit("/sys/fs/cgroup/memory.max", ram, NULL);
    return (size_t)(limit / 2);
}

// 1000, or fewer when the descriptor limit is lower: each connection holds a descriptor and
// the server needs a few of its own (listening socket, epoll, wake-ups, log).
static int default_connection_cap(void) {
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == RLIM_INFINITY) return 1000;
    long room = (long)files.rlim_cur - 64;
    return room < 16 ? 16 : room > 1000 ? 1000 : (int)room;
}

static void set_defaults(http_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->host, "127.0.0.1");
    cfg->port = 8080;
    cfg->cores = http_config_cores();
    cfg->workers = cfg->cores;
    // Connection I/O is light next to compute: one I/O thread per 4 cores. On 2 cores two I/O
    // threads took CPU from the workers: 25% fewer requests/s on the seed's case than one.
    cfg->io_threads = cfg->cores / 4 > 1 ? cfg->cores / 4 : 1;
    cfg->queue = 256;
    cfg->max_body = (size_t)64 << 20;
    cfg->max_memory = default_memory_budget();
    cfg->max_connections = default_connection_cap();
    cfg->timeout_s = 30;
    cfg->header_timeout_s = 10;
    cfg->min_body_rate = 1024;
    cfg->max_uploads = 32;
    cfg->drain_timeout_s = 30;
    cfg->retry_after_s = 1;
    cfg->access_log = true;
    api_options_default(&cfg->api);
}

// "64M", "1.5G", "1e12", "4096": a number with an optional multiplier suffix, 1024-based for
// byte sizes and 1000-based for counts. Returns false on anything else.
static bool parse_scaled(const char *text, bool binary, double *out) {
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (end == text || errno == ERANGE || !isfinite(v)) return false;
    static const char suffixes[] = "kmgt";
    const char *at = *end ? strchr(suffixes, tolower((unsigned char)*end)) : NULL;
    if (at) {
        v *= pow(binary ? 1024.0 : 1000.0, (double)(at - suffixes + 1));
        end++;
        if (binary && *end == 'i') end++;
        if (binary && (*end == 'B' || *end == 'b')) end++;
    } else if (binary && (*end == 'B' || *end == 'b')) {
        end++;
    }
    *out = v;
    return *end == '\0';
}

static bool parse_bool(const char *text, bool *out) {
    static const char *const yes[] = {"1", "on", "true", "yes"}, *const no[] = {"0", "off", "false",
                                                                                "no"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *out = strcasecmp(text, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

// Stores `text` into the field of `o`; on failure prints why on `err`, naming `source`.
static bool apply(http_config *cfg, const opt_spec *o, const char *text, const char *source,
                  FILE *err) {
    char *field = (char *)cfg + o->offset;
    if (o->kind == OPT_STR) {
        if (strlen(text) >= o->str_cap) {
            fprintf(err, "convd serve: %s: value longer than %zu characters\n", source,
                    o->str_cap - 1);
            return false;
        }
        strcpy(field, text);
        return true;
    }
    if (o->kind == OPT_BOOL) {
        if (parse_bool(text, (bool *)field)) return true;
        fprintf(err, "convd serve: %s: '%s' is not on/off (also 1/0, true/false, yes/no)\n", source,
                text);
        return false;
    }
    double v;
    bool whole = o->kind != OPT_SECONDS;
    if (!parse_scaled(text, o->kind == OPT_SIZE, &v) || v < o->min || v > o->max ||
        (whole && v != floor(v))) {
        fprintf(err, "convd serve: %s: '%s' is not %s from %.17g to %.17g\n", source, text,
                whole ? "a whole number" : "a number", o->min, o->max);
        return false;
    }
    switch (o->kind) {
    case OPT_INT: *(int *)field = (int)v; break;
    case OPT_SIZE: *(size_t *)field = (size_t)v; break;
    case OPT_I64: *(int64_t *)field = (int64_t)v; break;
    default: *(double *)field = v; break;
    }
    return true;
}

static void env_name(char *out, size_t cap, const char *name) {
    int n = snprintf(out, cap, "CONVD_%s", name);
    for (char *p = out + 6; p < out + n && *p; p++) *p = *p == '-' ? '_' : (char)toupper(*p);
}

static void format_value(char *out, size_t cap, const http_config *cfg, const opt_spec *o) {
    const char *field = (const char *)cfg + o->offset;
    switch (o->kind) {
    case OPT_STR: snprintf(out, cap, "'%s'", field); break;
    case OPT_BOOL: snprintf(out, cap, "%s", *(const bool *)field ? "on" : "off"); break;
    case OPT_INT: snprintf(out, cap, "%d", *(const int *)field); break;
    case OPT_SIZE: snprintf(out, cap, "%zu", *(const size_t *)field); break;
    case OPT_I64: snprintf(out, cap, "%lld", (long long)*(const int64_t *)field); break;
    case OPT_SECONDS: snprintf(out, cap, "%g", *(const double *)field); break;
    }
}

static void print_usage(FILE *out, const http_config *defaults) {
    fputs("usage: convd serve [options]\n"
          "Serves the conv2d API over HTTP until SIGTERM/SIGINT, then drains and exits 0.\n"
          "Every option can also be set by the environment variable shown; flags win.\n\n",
          out);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char env[64], value[64];
        env_name(env, sizeof env, options[i].name);
        format_value(value, sizeof value, defaults, &options[i]);
        fprintf(out, "  --%-16s %s\n  %-18s   [%s; default %s]\n", options[i].name, options[i].help,
                "", env, value);
    }
    fprintf(out,
            "\n  --help             this text\n"
            "(defaults computed on this machine: %d usable cores)\n",
            defaults->cores);
}

http_config_result http_config_load(http_config *cfg, int argc, char **argv, FILE *out, FILE *err) {
    set_defaults(cfg);
    http_config defaults = *cfg;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char env[64];
        env_name(env, sizeof env, options[i].name);
        const char *value = getenv(env);
        if (value && !apply(cfg, &options[i], value, env, err)) return HTTP_CONFIG_ERROR;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_usage(out, &defaults);
            return HTTP_CONFIG_HELP;
        }
        const opt_spec *o = NULL;
        const char *value = NULL;
        size_t name_len = strcspn(arg + 2, "=");
        for (size_t i = 0; arg[0] == '-' && arg[1] == '-' && i < N_OPTIONS && !o; i++)
            if (strlen(options[i].name) == name_len &&
                strncmp(arg + 2, options[i].name, name_len) == 0)
                o = &options[i];
        if (!o) {
            fprintf(err, "convd serve: unknown option '%s' (see convd serve --help)\n", arg);
            return HTTP_CONFIG_ERROR;
        }
        if (arg[2 + name_len] == '=') {
            value = arg + 3 + name_len;
        } else if (a + 1 < argc) {
            value = argv[++a];
        } else {
            fprintf(err, "convd serve: %s needs a value\n", arg);
            return HTTP_CONFIG_ERROR;
        }
        char source[80];
        snprintf(source, sizeof source, "--%s", o->name);
        if (!apply(cfg, o, value, source, err)) return HTTP_CONFIG_ERROR;
    }
    return HTTP_CONFIG_OK;
}
