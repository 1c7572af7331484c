#!/usr/bin/env bash
# Runs every test binary of each build tree given (build, build/asan, ...), each from the
# repository root, and closes with the total "N passed, N failed" over all of them.
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 broken=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for tree in "$@"; do
    for bin in "$tree"/tests/test_*; do
        [ -x "$bin" ] || continue
        echo "== $bin"
        log=$(mktemp)
        CONVD_BIN="$tree/convd" timeout 900 "$bin" 2>&1 | tee "$log"
        status=${PIPESTATUS[0]}
        line=$(grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
        rm -f "$log"
        if [ -z "$line" ]; then
            broken+=("$bin (exit $status, no summary)")
            failed=$((failed + 1))
            continue
        fi
        p=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/' <<<"$line")
        f=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/' <<<"$line")
        passed=$((passed + p)) failed=$((failed + f))
        if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
            broken+=("$bin (exit $status)")
            failed=$((failed + 1))
        fi
    done
done
for b in "${broken[@]+"${broken[@]}"}"; do echo "BROKEN $b"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
