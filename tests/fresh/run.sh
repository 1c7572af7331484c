#!/usr/bin/env bash
# make test-fresh: the README's two commands on a stock Debian 12 that has nothing but a clone of
# this repository. A podman container of Debian 12 (debootstrap minbase, plus git, make and
# ca-certificates: no other package) gets a clone of the committed HEAD in /srv/convd with
# nothing beside it, then
#   1. `make run`: installs what it needs, builds, serves on 127.0.0.1:8080; /healthz answers
#      and a golden case (made by PyTorch) sent to /v1/conv2d/forward gets PyTorch's numbers;
#   2. `make test` there, which must end "N passed, 0 failed";
#   3. `make test-deploy` in a second such container, privileged (podman runs inside it) with
#      its container store on a volume;
#   4. `make` in a third: it must build build/convd, which answers --version;
#   5. `make bench` in a fourth, on one small layer and one thread (BENCH_LAYERS=a ...: the peers
#      are installed and built in full, only the timing is short), which must print its table
#      with every peer's numbers and write build/bench.json.
# So each of the five targets a newcomer may type first (make, make run, make test, make bench,
# make test-deploy) is run first on a machine of its own (make test follows make run, as the
# README has it). Closes with "fresh: N passed, N failed" and the wall time of each step.
# The container shares the host's network (for Debian's mirror and the npm registry), so port
# 8080 must be free. What is cached between runs on one machine: the base images in podman's
# store, the downloaded .deb files and npm's cache in two podman volumes (`podman volume rm
# convd-fresh-apt convd-fresh-npm convd-fresh-store` for a cold run; the last holds the inner
# podman's images). Uncommitted changes are not tested.
set -uo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF=$PWD/docker/containers.conf
work=build/fresh
base=docker.io/library/debian:bookworm
image=localhost/convd-fresh:bookworm
name=convd-fresh-$$
passed=0 failed=0
mkdir -p "$work"

pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "fresh: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
cleanup() { podman rm -f -t 5 "$name" "$name-deploy" "$name-make" "$name-bench" >/dev/null 2>&1 || true; }
trap cleanup EXIT
in_box() { podman exec "$name" bash -c "$1"; }
stamp() { echo "$(( $(date +%s) - $1 )) s"; }

# The fresh machine's image: Debian's minbase (docker/base-image.sh, shared with make
# test-deploy) with only git, make and ca-certificates added, and apt as Debian ships it
# (recommends on, downloaded packages kept so that the cache volume fills).
t0=$(date +%s)
docker/base-image.sh build/deploy || { fail "base image"; finish; }
if ! podman image exists "$image"; then
    podman rm -f "$name-image" >/dev/null 2>&1
    podman run --name "$name-image" --network=host "$base" bash -c '
        rm -f /etc/apt/apt.conf.d/docker-clean &&
        apt-get update -qq && apt-get install -y -qq git make ca-certificates >/dev/null &&
        rm -rf /var/lib/apt/lists/*' &&
        podman commit --quiet "$name-image" "$image" >/dev/null
    status=$?
    podman rm -f "$name-image" >/dev/null 2>&1
    [ "$status" -eq 0 ] || { fail "the fresh Debian 12 image ($image)"; finish; }
fi
pass "a Debian 12 minbase image with git, make, ca-certificates ($(stamp "$t0"))"

if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
    fail "port 8080 is taken on this machine: make run in the container could not serve there"
    finish
fi

# The machine's own certificate authorities (a TLS-inspecting proxy's, say) are trusted in the
# container as its administrator would install them, or the npm registry could not be reached.
local_cas=()
[ -d /usr/local/share/ca-certificates ] &&
    local_cas=(-v /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro)
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] && local_cas+=(-e "NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS")

# new_box NAME [podman run options]: a container of the fresh image with a clone of HEAD in
# /srv/convd and nothing beside it.
new_box() {
    local box=$1
    shift
    podman run -d --init --name "$box" --network=host "${local_cas[@]}" "$@" \
        -v "$PWD/$work/convd.bundle:/mnt/convd.bundle:ro" \
        -v convd-fresh-apt:/var/cache/apt/archives -v convd-fresh-npm:/root/.npm \
        "$image" sleep infinity >/dev/null || { fail "podman run $image"; return 1; }
    podman exec "$box" bash -c 'update-ca-certificates >/dev/null 2>&1' ||
        { fail "update-ca-certificates in $box"; return 1; }
    if podman exec "$box" bash -c 'git -c advice.detachedHead=false clone -q /mnt/convd.bundle \
            /srv/convd && ls -A /srv' | grep -qx convd; then
        pass "$box: cloned into /srv/convd, nothing beside it ($bundled)"
    else
        fail "git clone in $box"
        return 1
    fi
}

git bundle create "$work/convd.bundle" HEAD >/dev/null 2>&1 || { fail "git bundle of HEAD"; finish; }
bundled=$(git rev-parse --short HEAD)
new_box "$name" --cap-add=SYS_PTRACE || finish

# 1. make run, in its own session so that exactly its processes are stopped afterwards.
t1=$(date +%s)
# The background job is setsid itself (which becomes make), so $! is the session's leader; the
# container's init (--init) reaps it once it exits.
in_box 'cd /srv/convd || exit; setsid make run >/srv/run.log 2>&1 & echo $! >/srv/run.pid'
# The container shares this machine's network: the checks are made from here (make run installs
# only what convd needs, no HTTP client).
ready=0
while [ $(( $(date +%s) - t1 )) -lt 900 ]; do
    if curl -sf -o /dev/null --max-time 2 http://127.0.0.1:8080/healthz; then ready=1; break; fi
    in_box 'kill -0 $(cat /srv/run.pid)' 2>/dev/null || break
    sleep 2
done
if [ "$ready" = 1 ]; then
    pass "make run: installed, built and serving, /healthz 200 ($(stamp "$t1"))"
else
    fail "make run did not serve /healthz; its log ends:"
    in_box 'tail -n 30 /srv/run.log' | sed 's/^/  | /'
    finish
fi
seed_check='
import json, urllib.request
case = json.load(open("tests/golden/seed_same_k3.json"))
request = dict(case["request"], op="conv2d.forward")
request.pop("dy")
answer = urllib.request.urlopen(urllib.request.Request(
    "http://127.0.0.1:8080/v1/conv2d/forward", json.dumps(request).encode(),
    {"Content-Type": "application/json"}), timeout=30)
got, want = json.load(answer)["y"], case["expected"]["y"]
worst = max(abs(g - w) for g, w in zip(got["data"], want["data"]))
assert answer.status == 200 and got["shape"] == want["shape"] and worst <= 1e-12, (got, worst)
print(answer.status, got["shape"], "worst difference from PyTorch", worst)'
if out=$(python3 -c "$seed_check" 2>&1); then
    pass "the seed case (padding same, 3x3) over HTTP: $out"
else
    fail "the seed case over HTTP: $out"
fi
if in_box 'group=-$(cat /srv/run.pid); kill -TERM -- $group || exit 1
           for _ in $(seq 40); do kill -0 -- $group 2>/dev/null || exit 0; sleep 0.25; done; exit 1'; then
    pass "make run and its server stopped (SIGTERM to its process group)"
else
    fail "make run's process group did not stop on SIGTERM"
fi

# 2. make test, as the README says, on the same machine.
t2=$(date +%s)
in_box 'cd /srv/convd && timeout 3000 make test' >"$work/make-test.log" 2>&1
status=$?
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$work/make-test.log" | tail -n 1)
if [ "$status" -eq 0 ] && [[ "$summary" =~ ^[0-9]+\ passed,\ 0\ failed$ ]]; then
    pass "make test: $summary ($(stamp "$t2"))"
else
    fail "make test (exit $status, \"${summary:-no summary}\"); its log ($work/make-test.log) ends:"
    grep -E '^(FAIL|BROKEN)' "$work/make-test.log" | head -n 20 | sed 's/^/  | /'
    tail -n 15 "$work/make-test.log" | sed 's/^/  | /'
fi
# 3. make test-deploy on a fresh machine of its own (it builds images, runs containers and nginx).
t3=$(date +%s)
if new_box "$name-deploy" --privileged -v convd-fresh-store:/var/lib/containers; then
    podman exec "$name-deploy" bash -c 'cd /srv/convd && timeout 2400 make test-deploy' \
        >"$work/make-test-deploy.log" 2>&1
    status=$?
    summary=$(grep -E '^deploy: [0-9]+ passed, [0-9]+ failed$' "$work/make-test-deploy.log" | tail -n 1)
    if [ "$status" -eq 0 ] && [[ "$summary" =~ passed,\ 0\ failed$ ]]; then
        pass "make test-deploy: $summary ($(stamp "$t3"))"
    else
        fail "make test-deploy (exit $status, \"${summary:-no summary}\"); its log ends:"
        grep -E '^ *FAIL' "$work/make-test-deploy.log" | head -n 20 | sed 's/^/  | /'
        tail -n 15 "$work/make-test-deploy.log" | sed 's/^/  | /'
    fi
fi
# 4. make, the default goal, as the first command on a machine of its own.
t4=$(date +%s)
if new_box "$name-make"; then
    podman exec "$name-make" bash -c 'cd /srv/convd && timeout 1200 make && build/convd --version' \
        >"$work/make.log" 2>&1
    status=$?
    version=$(grep -E '^convd [0-9]' "$work/make.log" | tail -n 1)
    if [ "$status" -eq 0 ] && [ -n "$version" ]; then
        pass "make: built build/convd, which answers \"$version\" ($(stamp "$t4"))"
    else
        fail "make, then build/convd --version (exit $status); its log ($work/make.log) ends:"
        tail -n 15 "$work/make.log" | sed 's/^/  | /'
    fi
fi
# 5. make bench as the first command: the peers (PyTorch, oneDNN) and every bench binary are
# installed and built as for a full run; timing only layer (a) on one thread keeps it short.
t5=$(date +%s)
if new_box "$name-bench"; then
    podman exec "$name-bench" bash -c 'cd /srv/convd && BENCH_LAYERS=a BENCH_THREADS=1 \
        BENCH_ROUNDS=1 BENCH_REPEATS=3 BENCH_WARMUP=1 timeout 2400 make bench &&
        test -s build/bench.json' >"$work/make-bench.log" 2>&1
    status=$?
    # The table's rows of layer (a): convd's, PyTorch's and oneDNN's milliseconds all measured.
    rows=$(awk '$1 == "a" && $3 == 1 && $4 ~ /^[0-9.]+$/ && $7 ~ /^[0-9.]+$/ && $9 ~ /^[0-9.]+$/' \
        "$work/make-bench.log" | wc -l)
    if [ "$status" -eq 0 ] && [ "$rows" -eq 2 ]; then
        pass "make bench: layer (a) forward and backward timed against PyTorch and oneDNN," \
            "build/bench.json written ($(stamp "$t5"))"
    else
        fail "make bench (exit $status, $rows of 2 table rows); its log ($work/make-bench.log) ends:"
        tail -n 15 "$work/make-bench.log" | sed 's/^/  | /'
    fi
fi
echo "test-fresh took $(stamp "$t0")"
finish
