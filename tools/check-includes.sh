#!/usr/bin/env bash
# The include graph of core/, api/ and server/ has no cycle and no upward edge: a module (a .c
# and its .h, named by the path without the extension) includes only modules of its own layer
# or below it (server/ -> api/ -> core/), and api/grade's engine (problem, verdict, mutant,
# grade) includes only core/ and itself. Prints every offending edge or cycle; exits 1 on any.
# Run by `make test`; by hand: tools/check-includes.sh (from anywhere in the checkout).
set -u
cd "$(dirname "$0")/.."
edges=$(for f in $(git ls-files 'core/*.[ch]' 'core/*.inc' 'api/*.[ch]' 'server/*.[ch]'); do
    sed -n 's/^#include "\(.*\)"/\1/p' "$f" | while read -r inc; do
        echo "${f%.*} ${inc%.*}"
    done
done | sed 's/_internal\b//g') # a module's private header (conv_internal.h) is part of it
status=0
layer() {
    case $1 in core/*) echo 0 ;; api/*) echo 1 ;; server/*) echo 2 ;; *) echo 9 ;; esac
}
while read -r from to; do
    if [ "$(layer "$to")" -gt "$(layer "$from")" ]; then
        echo "upward include: $from -> $to"
        status=1
    fi
    case $from in api/grade/grade_problem | api/grade/grade_verdict | api/grade/grade_mutant | \
        api/grade/grade)
        case $to in core/* | api/grade/grade*) ;; *)
            echo "the grading engine reaches past core/: $from -> $to"
            status=1
            ;;
        esac
        ;;
    esac
done <<<"$edges"
# tsort names a cycle on stderr ("input contains a loop") and exits 1.
if ! loops=$(tsort <<<"$edges" 2>&1 >/dev/null); then
    echo "include cycle:"
    echo "$loops" | sed -n 's/^tsort: //p'
    status=1
fi
[ $status -eq 0 ] && echo "includes: no cycle, no upward edge ($(wc -l <<<"$edges") edges)"
exit $status
