// cli: the subcommands of the convd program. Each takes the arguments after its own name
// (argv[0] is the subcommand) and returns the process exit status.
#ifndef CLI_H
#define CLI_H

// convd run [FILE]: one v1 request from FILE or standard input to standard output.
// Exit 0 on success, 2 for a bad request (error JSON on stdout), 1 for an internal failure.
int cli_run(int argc, char **argv);

// convd serve [--host H] [--port P] ...: the HTTP service, until SIGTERM/SIGINT.
int cli_serve(int argc, char **argv);

// convd check [FILE]: one check request (docs/GRADING.md) from FILE or standard input.
// Exit 0 for any verdict (a wrong submission is a normal answer), 2 for a request that cannot
// be graded (the error JSON on standard output), 1 for an internal failure.
int cli_check(int argc, char **argv);

// convd problem [FILE | --suite NAME [--seed N] [--index I]]: problems with explicit tensors.
int cli_problem(int argc, char **argv);

// convd healthcheck [--ready] [--timeout S] [serve options]: GET /healthz (or /readyz) of the
// server the same options and CONVD_* variables configure; exit 0 on 200, else 1 (2: bad options).
int cli_healthcheck(int argc, char **argv);

#endif
