// The grader example (examples/grader/run_autograder) end to end, and the command line it
// stands on (convd problem, convd check). The example student (examples/grader/students/
// layers.py) is graded once right and once per mistake it can make; each run's results.json
// must carry Gradescope's fields, the score that mistake earns on the cs231n suite, failures
// in exactly the tensors the mistake touches, and the mistake's id on every failed test. One
// run in PrairieLearn's format, a raising student and an unimportable one complete it.
//
// Needs python3 with numpy ($CONVD_PYTHON, else /usr/bin/python3) and convd ($CONVD_BIN,
// else build/convd).
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/blas_boot.h"
#include "server/cli.h"
#include "tests/testlib.h"

extern char **environ;

// Runs argv with `extra` ("NAME=value", NULL-terminated) added to the environment, standard
// input from in_path and standard output to out_path (each may be NULL; standard error goes
// to /dev/null with standard output). Returns the exit status, or -1 when it could not run
// or did not exit.
static int run(char *const argv[], const char *const extra[], const char *in_path,
               const char *out_path) {
    size_t n_env = 0, n_extra = 0;
    while (environ[n_env]) n_env++;
    while (extra && extra[n_extra]) n_extra++;
    char **envp = calloc(n_env + n_extra + 1, sizeof *envp);
    size_t k = 0;
    for (size_t i = 0; i < n_extra; i++) envp[k++] = (char *)extra[i];
    for (size_t i = 0; i < n_env; i++) {
        bool overridden = false;
        for (size_t j = 0; j < n_extra && !overridden; j++) {
            const size_t name = strcspn(extra[j], "=");
            overridden = strncmp(environ[i], extra[j], name + 1) == 0;
        }
        if (!overridden) envp[k++] = environ[i];
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in_path) posix_spawn_file_actions_addopen(&fa, 0, in_path, O_RDONLY, 0);
    if (out_path) posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out_path && strcmp(out_path, "/dev/null") == 0)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int status = -1;
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp) == 0 && waitpid(pid, &status, 0) == pid)
        status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    else
        status = -1;
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    return status;
}

static char dir[] = "/tmp/convd_grader_XXXXXX";
static char convd[4096], python[4096];

static const char *in_dir(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static bool write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fputs(text, f);
    return fclose(f) == 0;
}

static cJSON *read_json(const char *path) {
    size_t len = 0;
    char *text = t_read_file(path, &len);
    cJSON *doc = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    return doc;
}

static const char *str_at(const cJSON *obj, const char *name) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : "";
}

// Picks the python and the convd the example runs with.
static bool find_tools(void) {
    const char *py = getenv("CONVD_PYTHON");
    snprintf(python, sizeof python, "%s", py && *py ? py : "/usr/bin/python3");
    char *probe[] = {python, "-c", "import numpy", NULL};
    if (!CHECK(run(probe, NULL, NULL, "/dev/null") == 0,
               "%s cannot import numpy: the grader example needs python3-numpy", python))
        return false;
    const char *bin = getenv("CONVD_BIN");
    snprintf(convd, sizeof convd, "%s", bin && *bin ? bin : "build/convd");
    char *help[] = {convd, "problem", "--help", NULL};
    if (!CHECK(run(help, NULL, NULL, "/dev/null") == 0, "%s problem --help fails", convd))
        return false;
    return true;
}

// convd problem and convd check: answers on standard output, exit 0 for any verdict, 2 for a
// request that cannot be graded, 1 when the input cannot be read.
static void test_command_line(void) {
    char out[4200], req[4200];
    in_dir(out, sizeof out, "out.json");
    char *problem[] = {convd, "problem", "--suite", "cs231n", "--seed", "1", "--index", "0", NULL};
    int status = run(problem, NULL, NULL, out);
    cJSON *doc = read_json(out);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "problems"), 0);
    CHECK(status == 0 && strcmp(str_at(first, "name"), "square_pad1") == 0,
          "convd problem --suite cs231n --index 0: exit %d, name %s", status, str_at(first, "name"));
    cJSON_Delete(doc);

    char *bad_suite[] = {convd, "problem", "--suite", "cs231", NULL};
    status = run(bad_suite, NULL, NULL, out);
    doc = read_json(out);
    CHECK(status == 2 && strcmp(str_at(cJSON_GetObjectItemCaseSensitive(doc, "error"), "code"),
                                "invalid_value") == 0,
          "unknown suite: exit %d", status);
    cJSON_Delete(doc);

    in_dir(req, sizeof req, "req.json");
    write_file(req, "{\"problem\": {\"suite\": \"cs231n\"");
    char *check_stdin[] = {convd, "check", NULL};
    status = run(check_stdin, NULL, req, out);
    doc = read_json(out);
    CHECK(status == 2 && strcmp(str_at(cJSON_GetObjectItemCaseSensitive(doc, "error"), "code"),
                                "invalid_json") == 0,
          "truncated request on stdin: exit %d", status);
    cJSON_Delete(doc);

    // a wrong answer is an answer: exit 0
    write_file(req, "{\"problem\": {\"x\": [[1, 2], [3, 4]], \"w\": [[2]], \"dy\": [[1, 1], [1, 1]]},"
                    " \"submission\": {\"dx\": [[-2, -2], [-2, -2]]}}");
    char *check_file[] = {convd, "check", req, NULL};
    status = run(check_file, NULL, NULL, out);
    doc = read_json(out);
    const cJSON *dx = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "tensors"), "dx");
    const cJSON *diag = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dx, "diagnosis"), 0);
    CHECK(status == 0 && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(doc, "passed")) &&
              strcmp(str_at(diag, "id"), "sign_flipped") == 0,
          "negated dx from FILE: exit %d, diagnosis %s", status, str_at(diag, "id"));
    cJSON_Delete(doc);

    // the same request as a page: --format html overrides the request's format
    char *check_html[] = {convd, "check", "--format", "html", req, NULL};
    status = run(check_html, NULL, NULL, out);
    size_t len = 0;
    char *page = t_read_file(out, &len);
    CHECK(status == 0 && page && strncmp(page, "<!DOCTYPE html>", 15) == 0 &&
              strstr(page, "class=\"heatmap\"") && strstr(page, "sign_flipped"),
          "convd check --format html: exit %d, %.80s", status, page ? page : "");
    free(page);

    char *missing[] = {convd, "check", "/nonexistent/request.json", NULL};
    status = run(missing, NULL, NULL, out);
    CHECK(status == 1, "unreadable FILE: exit %d", status);
}

// One run of the example on the student with MISTAKE set (or none), and what it must give.
typedef struct {
    const char *mistake;  // "" for the right solution
    double score;         // of 40: y, dx, dw, db on 10 problems
    const char *failing;  // the tensors with failed tests, in y, dx, dw, db order
} student_case;

static const student_case students[] = {
    {"", 40, ""},
    {"bias_missing", 30, "y"},
    {"kernel_flipped_in_forward", 31, "y"},          // the 1x1 problem cannot tell
    {"kernel_not_flipped_in_dx", 31, "dx"},
    {"dw_flipped", 31, "dw"},
    {"sign_flipped", 30, "dw"},
    {"stride_ignored", 30, "dx dw"},                 // 4 strided problems, 2 tensors each
    {"dx_padding_not_cropped", 32, "dx"},            // 8 padded problems
    {"dx_cropped_to_empty", 38, "dx"},               // 2 unpadded problems
    {"db_summed_over_wrong_axes", 30, "db"},
    {"not_summed_over_batch", 30, "dw"},
    {"divided_by_batch_size", 20, "dw db"},
    {"weight_channels_swapped", 30, "dw"},
    {"height_width_swapped", 32, "dx"},              // 8 problems with H != W
    {"contributions_overwritten", 10, "dx dw db"},
    {"dx_crop_fixed_at_1", 36, "dx"},                // 2 unpadded and 2 pad-2 problems
    {"unfinished", 30, "dw"},
};

// The tensor a test is about: its name ends in ": <tensor>".
static const char *test_tensor(const cJSON *test) {
    const char *name = str_at(test, "name"), *colon = strrchr(name, ':');
    return colon ? colon + 2 : "";
}

static bool has_tag(const cJSON *test, const char *tag) {
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(test, "tags"))
        if (cJSON_IsString(e) && strcmp(e->valuestring, tag) == 0) return true;
    return false;
}

static void test_students(void) {
    char sub[4200], results[4200], src[8192], mistake[128], env_sub[4300], env_res[4300],
        env_convd[4300], env_python[4300];
    in_dir(sub, sizeof sub, "submission");
    in_dir(results, sizeof results, "results.json");
    mkdir(sub, 0755);
    char *copy[] = {"cp", "examples/grader/students/layers.py", sub, NULL};
    if (!CHECK(run(copy, NULL, NULL, NULL) == 0, "cannot copy the example student")) return;
    snprintf(env_sub, sizeof env_sub, "SUBMISSION=%s", sub);
    snprintf(env_res, sizeof env_res, "RESULTS=%s", results);
    snprintf(env_convd, sizeof env_convd, "CONVD=%s", convd);
    snprintf(env_python, sizeof env_python, "PYTHON=%s", python);
    static const char *const keys[] = {"name", "score", "max_score", "status", "output",
                                       "output_format", "tags", "visibility", "extra_data"};
    for (size_t s = 0; s < sizeof students / sizeof *students; s++) {
        const student_case *sc = &students[s];
        snprintf(mistake, sizeof mistake, "MISTAKE=%s", sc->mistake);
        const char *env[] = {mistake, env_sub, env_res, env_convd, env_python, NULL};
        char *argv[] = {"examples/grader/run_autograder", NULL};
        unlink(results);
        const int status = run(argv, env, NULL, "/dev/null");
        cJSON *doc = read_json(results);
        const cJSON *tests = cJSON_GetObjectItemCaseSensitive(doc, "tests");
        const double score = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "score"));
        int malformed = 0, wrong_tensor = 0, untagged = 0, foreign = 0, failed = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tests) {
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
                malformed += !cJSON_GetObjectItemCaseSensitive(t, keys[k]);
            if (strcmp(str_at(t, "status"), "failed") != 0) continue;
            failed++;
            wrong_tensor += !strstr(sc->failing, test_tensor(t)) || !*sc->failing;
            untagged += !has_tag(t, sc->mistake);
            foreign += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t, "tags")) != 2;
        }
        const char *label = *sc->mistake ? sc->mistake : "the right solution";
        CHECK(status == 0 && doc && cJSON_GetArraySize(tests) == 40 && malformed == 0 &&
                  cJSON_GetObjectItemCaseSensitive(doc, "execution_time"),
              "%s: exit %d, %d tests, %d fields missing", label, status,
              cJSON_GetArraySize(tests), malformed);
        CHECK(score == sc->score, "%s: score %g, want %g", label, score, sc->score);
        CHECK(wrong_tensor == 0 && untagged == 0 && foreign == 0 &&
                  (!*sc->mistake || strstr(str_at(doc, "output"), sc->mistake)),
              "%s: of %d failed tests, %d in tensors it does not touch, %d without its id, %d "
              "with other ids", label, failed, wrong_tensor, untagged, foreign);
        cJSON_Delete(doc);
    }

    // the same grader for PrairieLearn: a score in [0, 1], the mistake in the message
    snprintf(mistake, sizeof mistake, "MISTAKE=dw_flipped");
    const char *pl_env[] = {mistake, env_sub, env_res, env_convd, env_python,
                            "FORMAT=prairielearn", NULL};
    char *pl_argv[] = {"examples/grader/run_autograder", NULL};
    int pl_status = run(pl_argv, pl_env, NULL, "/dev/null");
    cJSON *pl = read_json(results);
    CHECK(pl_status == 0 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pl, "gradable")) &&
              cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(pl, "score")) == 31.0 / 40 &&
              strstr(str_at(pl, "message"), "dw_flipped") &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(pl, "tests")) == 40,
          "prairielearn run: exit %d, message %s", pl_status, str_at(pl, "message"));
    cJSON_Delete(pl);

    // code that raises: the traceback in place of the answers
    snprintf(mistake, sizeof mistake, "MISTAKE=loop_past_the_end");
    const char *env[] = {mistake, env_sub, env_res, env_convd, env_python, NULL};
    char *argv[] = {"examples/grader/run_autograder", NULL};
    int status = run(argv, env, NULL, "/dev/null");
    cJSON *doc = read_json(results);
    const cJSON *dx_test = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "tests"), 1);
    CHECK(status == 0 && cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "score")) == 10 &&
              strstr(str_at(dx_test, "output"), "IndexError") &&
              strstr(str_at(dx_test, "output"), "no answer, 0 points"),
          "raising student: exit %d, dx output %.200s", status, str_at(dx_test, "output"));
    cJSON_Delete(doc);

    // a file that does not import: a score of 0 and why
    in_dir(src, sizeof src, "submission/layers.py");
    write_file(src, "def conv_backward_naive(dout, cache:\n    pass\n");
    status = run(argv, env, NULL, "/dev/null");
    doc = read_json(results);
    CHECK(status == 0 && doc &&
              cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "score")) == 0 &&
              strstr(str_at(doc, "output"), "SyntaxError"),
          "unimportable student: exit %d, output %.200s", status, str_at(doc, "output"));
    cJSON_Delete(doc);
    unlink(src);
    rmdir(sub);
}

// Submissions that fail the way real ones do (tests/data/students/): each must still give a
// results.json, with 0 points for what the failure affects only, and say what happened.
typedef struct {
    const char *file;
    double score;
    int tests;          // 40 with a forward pass, 30 without, 0 when nothing could be graded
    int failed[4];      // failed tests of y, dx, dw and db: what the failure affects
    const char *says;   // in the summary: for code that raises, the cause's id,
    const char *says_too;  // the student's line,
    const char *fix;       // and words of its usual fix (CAUSES in grade.py); "" for none
    int noted;          // tests noting that the backward pass ran on the reference cache
    const char *suite;  // SUITE=... ("SUITE=cs231n" when NULL)
} broken_case;

static const broken_case broken[] = {
    {"unfinished.py", 0, 40, {10, 10, 10, 10}, "out is None",
     "no answer for 40 of the graded tensors", "does not compute it yet", 0, NULL},
    {"backward_returns_none.py", 10, 40, {0, 10, 10, 10}, "conv_backward_naive returned None",
     "0 points", "it must return (dx, dw, db)", 0, NULL},
    {"numpy_alias.py", 10, 40, {0, 10, 10, 10}, "numpy_alias_removed", "line 23: dx = np.zeros",
     "write float, int, bool", 0, NULL},
    // CS231n's own convention: the default suite's strides divide evenly, so it passes there
    {"stride_assert.py", 40, 40, {0, 0, 0, 0}, "Every tensor is correct", "Score 40.0", "", 0,
     NULL},
    {"stride_assert.py", 24, 40, {4, 4, 4, 4}, "stride_assert", "AssertionError",
     "Drop the assert", 16, "SUITE=cs231n_uneven"},
    {"python2.py", 0, 0, {0, 0, 0, 0}, "python2_code", "line 6: print", "print is a function", 0,
     NULL},
    {"odd_returns.py", 10, 40, {10, 0, 10, 10}, "shape_has_extra_axes", "Score 10.0 / 40.0", "",
     0, NULL},
    // zeros are unfinished code, not `=` for `+=`
    {"slow_on_stride3.py", 0, 30, {0, 10, 10, 10}, "time_limit",
     "`unfinished` (dx, dw, db; 27 times)", "a loop that never ends", 0, NULL},
    {"imports_course_code.py", 0, 0, {0, 0, 0, 0}, "import_failed", "No module named 'cs231n'",
     "one self-contained file", 0, NULL},
    // round() in the output size: a window cut short raises (named by its exception), or an
    // empty one gives an output too large (named by its shape); on even strides it is right
    {"round_output_size.py", 36, 40, {4, 0, 0, 0}, "window_shape_mismatch",
     "`output_size_rounded`", "with // not round() or /", 8, "SUITE=cs231n_uneven"},
    {"round_output_size.py", 40, 40, {0, 0, 0, 0}, "Every tensor is correct", "Score 40.0", "", 0,
     NULL},
    // the student's own cache: a padded x cached by the forward pass is right
    {"caches_padded_x.py", 40, 40, {0, 0, 0, 0}, "Every tensor is correct", "Score 40.0 / 40.0",
     "", 0, NULL},
    {"forward_raises.py", 30, 40, {10, 0, 0, 0}, "NameError: name 'bias' is not defined",
     "Score 30.0", "Read the message and the line shown", 40, NULL},
    // one for each other kind of exception grade.py names
    {"missing_colon.py", 0, 0, {0, 0, 0, 0}, "syntax_error", "line 14: for f in range(F)",
     "python3 -m py_compile", 0, NULL},
    {"exits_while_debugging.py", 10, 40, {0, 10, 10, 10}, "(exited)", "line 35: sys.exit()",
     "a graded function must return its answer", 0, NULL},
    {"true_division.py", 0, 40, {10, 10, 10, 10}, "float_size",
     "line 14: out = np.zeros((N, F, Hn, Wn))", "Use // for H_out and W_out", 40, NULL},
    {"padding_key.py", 10, 40, {0, 10, 10, 10}, "conv_param_key",
     "line 25: pd = conv_param['padding']", "conv_param holds 'stride' and 'pad' only", 0, NULL},
    // the loops over H and W are right where the output is as large as the input (2 problems)
    {"loops_over_input_size.py", 16, 40, {0, 8, 8, 8}, "index_out_of_range",
     "line 41: db[f] += dout[n, f, i, j]", "not H and W", 0, NULL},
    {"caches_five_items.py", 10, 40, {0, 10, 10, 10}, "unpacking_mismatch",
     "line 25: x, w, b, conv_param = cache", "the cache is what your conv_forward_naive returned",
     0, NULL},
    {"db_still_none.py", 10, 40, {0, 10, 10, 10}, "still_none",
     "line 41: db[f] += dout[n, f, hp, wp]", "db = np.zeros_like(b)", 0, NULL},
    // wide_kernel, channels_equal and large have kernels 2x3, 3x2 and 5x3
    {"asserts_square_kernel.py", 28, 40, {3, 3, 3, 3}, "assertion_failed",
     "line 8: assert K == K2", "HH != WW", 12, NULL},
};

static void test_broken_students(void) {
    char sub[4200], results[4200], src[4300], env_sub[4300], env_res[4300], env_convd[4300],
        env_python[4300];
    in_dir(sub, sizeof sub, "broken");
    in_dir(results, sizeof results, "results.json");
    mkdir(sub, 0755);
    snprintf(src, sizeof src, "%s/layers.py", sub);
    snprintf(env_sub, sizeof env_sub, "SUBMISSION=%s", sub);
    snprintf(env_res, sizeof env_res, "RESULTS=%s", results);
    snprintf(env_convd, sizeof env_convd, "CONVD=%s", convd);
    snprintf(env_python, sizeof env_python, "PYTHON=%s", python);
    for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
        const broken_case *bc = &broken[i];
        char from[4200];
        snprintf(from, sizeof from, "tests/data/students/%s", bc->file);
        char *copy[] = {"cp", from, src, NULL};
        if (!CHECK(run(copy, NULL, NULL, NULL) == 0, "cannot copy %s", from)) continue;
        const char *env[] = {env_sub,      env_res, env_convd, env_python, "TIME_LIMIT=1",
                             bc->suite ? bc->suite : "SUITE=cs231n", NULL};
        char *argv[] = {"examples/grader/run_autograder", NULL};
        unlink(results);
        const int status = run(argv, env, NULL, "/dev/null");
        cJSON *doc = read_json(results);
        const char *output = str_at(doc, "output");
        const double score = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "score"));
        const int tests = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "tests"));
        // a backward pass run on the reference cache says so in every one of its tests
        static const char *const tensors[] = {"y", "dx", "dw", "db"};
        int noted = 0, failed[4] = {0};
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(doc, "tests")) {
            noted += strstr(str_at(t, "output"), "ran on the reference cache") != NULL;
            for (int k = 0; k < 4; k++)
                failed[k] += strcmp(str_at(t, "status"), "failed") == 0 &&
                             strcmp(test_tensor(t), tensors[k]) == 0;
        }
        CHECK(noted == bc->noted, "%s: %d tests note the reference cache, want %d", bc->file,
              noted, bc->noted);
        CHECK(memcmp(failed, bc->failed, sizeof failed) == 0,
              "%s: failed tests of y, dx, dw, db %d %d %d %d, want %d %d %d %d", bc->file,
              failed[0], failed[1], failed[2], failed[3], bc->failed[0], bc->failed[1],
              bc->failed[2], bc->failed[3]);
        CHECK(status == 0 && doc && score == bc->score && tests == bc->tests &&
                  strstr(output, bc->says) && strstr(output, bc->says_too) &&
                  strstr(output, bc->fix),
              "%s: exit %d, score %g (want %g), %d tests (want %d), output %.900s", bc->file,
              status, score, bc->score, tests, bc->tests, output);
        cJSON_Delete(doc);
    }
    unlink(src);
    rmdir(sub);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    if (mkdtemp(dir) && find_tools()) {
        test_command_line();
        test_students();
        test_broken_students();
    }
    char path[4200];
    unlink(in_dir(path, sizeof path, "out.json"));
    unlink(in_dir(path, sizeof path, "req.json"));
    unlink(in_dir(path, sizeof path, "results.json"));
    rmdir(dir);
    return t_finish("test_grade_example");
}
