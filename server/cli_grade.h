// cli_grade: the grading subcommands, offline front doors for graders without network
// (PrairieLearn's external graders have none by default). Like cli.h's subcommands, each takes
// the arguments after `convd` (argv[0] is the subcommand) and returns the exit status:
// 0 for any verdict (a wrong submission is a normal answer), 2 for a request that cannot be
// graded (the error JSON on standard output), 1 for an internal failure.
#ifndef CLI_GRADE_H
#define CLI_GRADE_H

// convd check [FILE]: one check request (docs/GRADING.md) from FILE or standard input.
int cli_check(int argc, char **argv);

// convd problem [FILE | --suite NAME [--seed N] [--index I]]: problems with explicit tensors.
int cli_problem(int argc, char **argv);

#endif
