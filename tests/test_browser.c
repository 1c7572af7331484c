// The playground page (GET /) in a real browser: a server of its own, then
// tests/browser/playground.mjs drives Debian's chromium (headless) with playwright-core from
// tools/ (installed there with `npm ci` when missing). Each "ok"/"not ok" line the script
// prints is one check here: the page loads without console errors, a selected y cell
// highlights exactly its window, a changed stride recomputes through the API, a wrong answer
// shows its diagnosis and heatmap, the page fits a phone's width and asks nothing of any
// other host. Also: GET / is the page, self-contained (no external script, style or link).
//
// Needs node and /usr/bin/chromium ($CHROMIUM to use another). SCREENSHOTS=DIR saves the
// script's screenshots there (how docs/playground*.png are made).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/blas_boot.h"
#include "tests/harness/http_harness.h"

// GET /: the page, as HTML, with nothing fetched from elsewhere.
static void test_page_served(int port) {
    th_reply r;
    if (!CHECK(th_get(&r, port, "/"), "GET / answered")) return;
    char type[128];
    th_header(&r, "Content-Type", type, sizeof type);
    const char *body = r.body ? r.body : "";
    CHECK(r.status == 200 && strncmp(type, "text/html", 9) == 0 &&
              strstr(body, "<title>convd playground</title>"),
          "GET / is the playground: %ld %s", r.status, type);
    CHECK(!strstr(body, "http://") && !strstr(body, "https://") && !strstr(body, " src=") &&
              !strstr(body, "@import"),
          "the page loads nothing from elsewhere");
    th_reply_free(&r);
}

static void test_in_browser(int port) {
    struct stat st;
    const char *chromium = getenv("CHROMIUM");
    if (!CHECK(stat(chromium && *chromium ? chromium : "/usr/bin/chromium", &st) == 0,
               "chromium is installed (make test installs Debian's chromium)"))
        return;
    t_tools_installed("tools/node_modules/playwright-core/package.json");
    char out[] = "/tmp/convd_browser_XXXXXX";
    const int fd = mkstemp(out);
    if (!CHECK(fd >= 0, "a temporary file")) return;
    close(fd);
    const char *shots = getenv("SCREENSHOTS");
    char command[1024];
    snprintf(command, sizeof command,
             "timeout 300 node tests/browser/playground.mjs http://127.0.0.1:%d %s > %s 2>&1",
             port, shots && *shots ? shots : "", out);
    const int rc = t_shell(command);
    size_t len = 0;
    char *text = t_read_file(out, &len);
    unlink(out);
    int lines = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "ok - ", 5) == 0) {
            CHECK(true, "%s", line + 5);
        } else if (strncmp(line, "not ok - ", 9) == 0) {
            CHECK(false, "in the browser: %s", line + 9);
        } else {
            printf("  %s\n", line); // node's own complaints, for the log
            continue;
        }
        lines++;
    }
    CHECK(rc == 0 && lines >= 12, "node tests/browser/playground.mjs: exit %d, %d checks", rc,
          lines);
    free(text);
}

int main(int argc, char **argv) {
    blas_boot(argv);
    th_server s;
    if (CHECK(th_server_start(&s, NULL), "the server starts")) {
        test_page_served(s.port);
        test_in_browser(s.port);
        th_server_stop(&s, 10);
    }
    return t_finish("test_browser");
}
