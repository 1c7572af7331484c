// cli: the subcommands of the convd program. Each takes the arguments after its own name
// (argv[0] is the subcommand) and returns the process exit status.
#ifndef CLI_H
#define CLI_H

#define CONVD_VERSION "0.1.0"

// convd run [FILE]: one v1 request from FILE or standard input to standard output.
// Exit 0 on success, 2 for a bad request (error JSON on stdout), 1 for an internal failure.
int cli_run(int argc, char **argv);

// convd serve [--host H] [--port P] ...: the HTTP service, until SIGTERM/SIGINT.
int cli_serve(int argc, char **argv);

#endif
