# Step of tests/deploy/run.sh (sourced): the Deployment manifest under `podman kube play`.
step_kube() {
    section "podman kube play (docker/k8s/deployment.yaml)"
    local port container=convd-pod-0-convd ro user
    port=$(free_port)
    kube_file=$work/kube.yaml # cleanup() takes it down
    python3 tests/deploy/render_kube.py "$port" "$image" "$kube_file" ||
        { fail "render the manifests"; return 1; }
    if ! quietly podman kube play "$kube_file"; then
        fail "podman kube play"
        return 1
    fi
    if ! wait_http "http://127.0.0.1:$port/readyz" 30; then
        podman logs "$container" 2>&1 | tail -n 20 | sed 's/^/  | /'
        fail "pod ready: readinessProbe /readyz"
        return 1
    fi
    pass "pod ready: readinessProbe GET /readyz 200"
    check "livenessProbe GET /healthz 200" wait_http "http://127.0.0.1:$port/healthz" 5
    counted python3 tests/deploy/golden.py "http://127.0.0.1:$port"
    user=$(podman inspect --format '{{.Config.User}}' "$container")
    ro=$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$container")
    check "securityContext applied: uid 10001 ($user), read-only root ($ro)" \
        test "$user:$ro" = "10001:10001:true"
    check "environment from the ConfigMap (CONVD_QUEUE 64 in /v1/info)" \
        grep -q '"queue":64' <<<"$(curl -fsS "http://127.0.0.1:$port/v1/info")"
    check "podman kube down" quietly podman kube down "$kube_file"
    kube_file=
}
