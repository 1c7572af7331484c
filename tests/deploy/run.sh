#!/usr/bin/env bash
# make test-deploy: convd as it is deployed, on this machine. Closes with "deploy: N passed,
# N failed" and exits 1 on any failure; a missing tool is a failure, never a skip.
#   1. convd healthcheck (plain, HTTPS, from the environment) against native servers
#   2. the compose file, nginx.conf and Kubernetes manifests, checked against each other,
#      the Dockerfile and `convd serve --help`
#   3. the image from docker/Dockerfile, built by podman on a debootstrap base (--pull=never)
#   4. that image run read-only as its non-root user: golden cases, health, HEALTHCHECK, the
#      OpenBLAS core, a drain on stop; again with API keys and HTTPS from the environment
#   5. the Deployment manifest under `podman kube play`: probes and golden cases
#   6. three convd behind nginx under wrk load, one killed and one drained: no failed request
# Only loopback is used: containers share the host's network and listen on 127.0.0.1.
set -uo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF=$PWD/docker/containers.conf
convd_bin=${CONVD_BIN:-build/convd}
image=localhost/convd:latest
golden_dir=${CONVD_GOLDEN_DIR:-tests/golden}
report=build/deploy/report.txt
source tests/deploy/lib.sh
source tests/deploy/container.sh
source tests/deploy/kube.sh
source tests/deploy/failover.sh
trap cleanup EXIT
started=$SECONDS

section "tools"
missing=()
for tool in podman runc debootstrap nginx wrk openssl curl python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
python3 -c 'import yaml' 2>/dev/null || missing+=("python3-yaml")
[ -x "$convd_bin" ] || missing+=("$convd_bin (make build/convd)")
[ -d "$golden_dir" ] || missing+=("golden cases in $golden_dir")
if [ ${#missing[@]} -gt 0 ]; then
    echo "test-deploy: missing: ${missing[*]}" >&2
    echo "deploy: 0 passed, 1 failed"
    exit 1
fi
export CONVD_GOLDEN_DIR=$golden_dir
mkdir -p build/deploy
: >"$report"
pass "podman $(podman --version | awk '{print $3}'), runc, debootstrap, nginx, wrk, openssl"

step_healthcheck
section "manifests"
counted python3 tests/deploy/manifests.py "$convd_bin"
step_image && {
    step_container
    step_container_secure
    step_kube
}
step_failover

section "report"
echo "test-deploy took $((SECONDS - started)) s" >>"$report"
sed 's/^/  /' "$report"
echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
