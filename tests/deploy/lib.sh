# Helpers of tests/deploy/*.sh (sourced): counting checks, free ports, processes and containers
# this run started (and only those are ever stopped), waiting for HTTP.
passed=0
failed=0
started_pids=()
started_containers=()
work=$(mktemp -d "${TMPDIR:-/tmp}/convd-deploy.XXXXXX")

pass() { passed=$((passed + 1)); echo "  ok   $*"; }
fail() { failed=$((failed + 1)); echo "  FAIL $*"; }

# check WHAT COMMAND...: one check, passed when COMMAND succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# counted COMMAND...: runs a checker that closes with "NAME: N passed, N failed" and adds its
# counts; no such line (or a failing exit with no failure counted) is one failure more.
counted() {
    local out rc line p f
    out=$("$@" 2>&1)
    rc=$?
    sed 's/^/  | /' <<<"$out"
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed$' <<<"$out" | tail -n 1)
    if [ -z "$line" ]; then
        fail "$1 printed no 'N passed, N failed' line (exit $rc)"
        return
    fi
    p=$(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed$/\1/' <<<"$line")
    f=$(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed$/\2/' <<<"$line")
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then fail "$1 exited $rc"; fi
}

# quietly COMMAND...: its output is shown only when it fails (podman's complaints about the
# missing systemd, a healthcheck's line).
quietly() {
    local rc
    "$@" >"$work/quiet.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] || sed 's/^/  | /' "$work/quiet.log"
    return $rc
}

# exits STATUS COMMAND...: true when COMMAND (output dropped) exits with exactly STATUS.
exits() {
    local want=$1
    shift
    "$@" >/dev/null 2>&1
    [ $? -eq "$want" ]
}

section() { echo "== $* ($(date +%T))"; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS [curl options...]: true once URL answers 200.
wait_http() {
    local url=$1 seconds=$2 deadline
    shift 2
    deadline=$((SECONDS + seconds))
    while [ $SECONDS -lt $deadline ]; do
        curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# start_convd NAME [serve options...]: a native convd on a free loopback port, its stdout and
# log in $work/NAME.*; sets convd_pid and convd_port (0 when it did not come up).
start_convd() {
    local name=$1 deadline
    shift
    "$convd_bin" serve --host 127.0.0.1 --port 0 "$@" >"$work/$name.out" 2>"$work/$name.log" &
    convd_pid=$!
    started_pids+=("$convd_pid")
    convd_port=0
    deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ] && kill -0 "$convd_pid" 2>/dev/null; do
        if grep -qs 'listening on http' "$work/$name.out"; then
            convd_port=$(sed -nE 's/.*listening on https?:\/\/[^ ]*:([0-9]+).*/\1/p' "$work/$name.out")
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Stops what this run started: its processes by PID, its containers and pods by name.
cleanup() {
    local pid name
    for pid in "${started_pids[@]}"; do kill "$pid" 2>/dev/null; done
    for name in "${started_containers[@]}"; do podman rm -f -t 5 "$name" >/dev/null 2>&1; done
    [ -n "${kube_file:-}" ] && podman kube down "$kube_file" >/dev/null 2>&1
    for pid in "${started_pids[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$work"
}

# A self-signed certificate for 127.0.0.1 and localhost in DIR (cert.pem, key.pem).
make_certificate() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
        -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
}
