// A short libFuzzer run of each target in build/fuzz/ (fuzz/fuzz_*.c: the JSON, safetensors and
// v2 decoders with ASan+UBSan), from the seed corpora in fuzz/corpus/, each a check that the
// fuzzer ends without a finding (exit 0, no crash file). The release and sanitized test trees
// run it with different fuzzer seeds, so make test explores twice as much. Each input is held to
// 2 s and to allocations of 64 MiB (libFuzzer's -timeout, -malloc_limit_mb), and by the targets
// themselves to CPU time and heap in proportion to its size (fuzz_judged in fuzz/fuzz_common.h):
// each target is first seen to refuse a seed with that judge's bounds at zero.
// FUZZ_SMOKE_SECONDS sets the time per target (default 12). `make fuzz` is the long run.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/blas_boot.h"
#include "tests/testlib.h"

// The number after "stat::number_of_executed_units:" in a libFuzzer log, or -1.
static long executed_units(const char *log) {
    const char *at = log ? strstr(log, "stat::number_of_executed_units:") : NULL;
    return at ? atol(at + strlen("stat::number_of_executed_units:")) : -1;
}

static int count_files(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d) closedir(d);
    return n;
}

int main(int argc, char **argv) {
    blas_boot(argv);
    const char *bin = getenv("CONVD_BIN");
    int seed = bin && strstr(bin, "asan") ? 2 : 1;
    const char *seconds_env = getenv("FUZZ_SMOKE_SECONDS");
    int seconds = seconds_env && atoi(seconds_env) > 0 ? atoi(seconds_env) : 12;
    static const char *const targets[] = {"json", "safetensors", "v2"};
    char work[64];
    snprintf(work, sizeof work, "/tmp/convd-fuzz-%d", (int)getpid());
    mkdir(work, 0700);
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        char fuzzer[128], corpus[128], seeds[128], log[160], command[1024];
        snprintf(fuzzer, sizeof fuzzer, "build/fuzz/fuzz_%s", targets[i]);
        snprintf(corpus, sizeof corpus, "%s/corpus-%s", work, targets[i]);
        snprintf(seeds, sizeof seeds, "fuzz/corpus/%s", targets[i]);
        snprintf(log, sizeof log, "%s/%s.log", work, targets[i]);
        mkdir(corpus, 0700);
        if (!CHECK(access(fuzzer, X_OK) == 0, "%s is built (make fuzz-build)", fuzzer)) continue;
        // The judge is live: with its bounds scaled to 0, the first seed is a finding.
        snprintf(command, sizeof command,
                 "first=$(ls %s | head -n 1); FUZZ_JUDGE_SCALE=0 %s -artifact_prefix=%s/judged- "
                 "%s/$first > %s 2>&1",
                 seeds, fuzzer, work, seeds, log);
        fflush(NULL);
        int judged = system(command);
        char *judged_log = t_read_file(log, NULL);
        CHECK(judged != 0 && judged_log && strstr(judged_log, "fuzz_judge: an input of"),
              "fuzz_%s judges each input's CPU time and heap (a seed refused at bounds 0): "
              "%.2000s",
              targets[i], judged_log ? judged_log : "");
        free(judged_log);
        // New units go to the scratch corpus (the first directory); the seeds stay as they are.
        // Each input is also held to time and memory: an input of at most 16 KiB that takes
        // 2 s, or asks for one allocation over 64 MiB, is a finding (a parse that is not
        // linear, or amplifies its body), not only a crash.
        snprintf(command, sizeof command,
                 "%s -max_total_time=%d -seed=%d -timeout=2 -rss_limit_mb=1024 "
                 "-malloc_limit_mb=64 -max_len=16384 "
                 "-print_final_stats=1 -artifact_prefix=%s/%s- %s %s > %s 2>&1",
                 fuzzer, seconds, seed, work, targets[i], corpus, seeds, log);
        fflush(NULL);
        int rc = system(command);
        int status = rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
        char *text = t_read_file(log, NULL);
        long units = executed_units(text);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s-", targets[i]);
        int findings = count_files(work, prefix);
        CHECK(status == 0 && findings == 0,
              "fuzz_%s: exit %d, %d crash files; the end of its log:\n%s", targets[i], status,
              findings, text ? text + (strlen(text) > 3000 ? strlen(text) - 3000 : 0) : "");
        CHECK(units > 1000, "fuzz_%s ran (%ld inputs in %d s)", targets[i], units, seconds);
        printf("fuzz_%s: %ld inputs in %d s (seed %d), %d findings\n", targets[i], units, seconds,
               seed, findings);
        free(text);
        if (findings) printf("kept for inspection: %s\n", work);
    }
    // The scratch corpora and logs go, unless something was found.
    char cleanup[128];
    snprintf(cleanup, sizeof cleanup, "rm -rf %s", work);
    if (count_files(work, "json-") + count_files(work, "safetensors-") + count_files(work, "v2-") ==
            0 &&
        system(cleanup) != 0)
        printf("could not remove %s\n", work);
    return t_finish("test_fuzz");
}
