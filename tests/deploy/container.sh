# Steps of tests/deploy/run.sh (sourced): convd healthcheck, the image, the container.

# convd healthcheck against native servers: what the image's HEALTHCHECK runs.
step_healthcheck() {
    section "convd healthcheck"
    if ! "$convd_bin" healthcheck --help >/dev/null 2>&1; then
        fail "'convd healthcheck' is not a command of $convd_bin (server/main.c must dispatch it to cli_healthcheck)"
        return 1
    fi
    local dir=$work/hc port plain_port
    mkdir -p "$dir"
    make_certificate "$dir" || { fail "openssl made no certificate"; return 1; }
    start_convd hc-plain --access-log off || { fail "native convd did not start"; return 1; }
    plain_port=$convd_port
    check "healthcheck --port: 0 for a live server" quietly "$convd_bin" healthcheck --port "$plain_port"
    check "healthcheck --ready: 0 for a ready server" quietly "$convd_bin" healthcheck --ready --port "$plain_port"
    check "healthcheck from CONVD_PORT and CONVD_HOST=0.0.0.0 (reached on 127.0.0.1)" \
        quietly env CONVD_PORT="$plain_port" CONVD_HOST=0.0.0.0 "$convd_bin" healthcheck
    port=$(free_port)
    check "healthcheck: 1 when nothing listens" \
        exits 1 "$convd_bin" healthcheck --port "$port" --timeout 2
    start_convd hc-tls --access-log off --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem" ||
        { fail "native HTTPS convd did not start"; return 1; }
    check "healthcheck over HTTPS (--tls-cert set): 0" quietly env CONVD_TLS_CERT="$dir/cert.pem" \
        CONVD_TLS_KEY="$dir/key.pem" "$convd_bin" healthcheck --port "$convd_port"
    check "healthcheck in plain HTTP against the HTTPS server: 1" \
        exits 1 "$convd_bin" healthcheck --port "$convd_port" --timeout 2
}

# docker/base-image.sh, then the image from docker/Dockerfile.
step_image() {
    section "image"
    local t0 build_s size_mb user env health
    t0=$SECONDS
    if ! docker/base-image.sh build/deploy; then
        fail "base image (debootstrap): container steps cannot run"
        return 1
    fi
    echo "base image ready in $((SECONDS - t0)) s" >>"$report"
    t0=$SECONDS
    if ! podman build --pull=never --network=host --format docker -f docker/Dockerfile \
        --ignorefile docker/Dockerfile.dockerignore -t "$image" . >"$work/build.log" 2>&1; then
        tail -n 30 "$work/build.log" | sed 's/^/  | /'
        fail "podman build: container steps cannot run"
        return 1
    fi
    build_s=$((SECONDS - t0))
    size_mb=$(($(podman image inspect --format '{{.Size}}' "$image") / 1000000))
    echo "image $image: $size_mb MB, built in $build_s s (layers cached from earlier builds are reused)" >>"$report"
    pass "podman build --pull=never: $size_mb MB in $build_s s"
    check "image under 200 MB ($size_mb MB)" test "$size_mb" -lt 200
    user=$(podman image inspect --format '{{.Config.User}}' "$image")
    check "runs as uid 10001, not root ('$user')" test "$user" = "10001:10001"
    env=$(podman image inspect --format '{{json .Config.Env}}' "$image")
    check "listens on all interfaces by configuration (CONVD_HOST=0.0.0.0)" grep -q 'CONVD_HOST=0.0.0.0' <<<"$env"
    check "EXPOSE 8080" grep -q '8080/tcp' <<<"$(podman image inspect --format '{{json .Config.ExposedPorts}}' "$image")"
    health=$(podman image inspect --format '{{json .Config.Healthcheck.Test}}' "$image")
    check "HEALTHCHECK is convd healthcheck ($health)" grep -q '"/usr/local/bin/convd","healthcheck"' <<<"$health"
    check "no curl in the image" bash -c '! podman run --rm --network=none --entrypoint /bin/sh "$0" -c "command -v curl wget" >/dev/null 2>&1' "$image"
}

# run_container NAME [podman run options...]: a container of the image on the host's network
# (loopback only), named and remembered for cleanup. Without systemd, podman cannot schedule
# the HEALTHCHECK (it says so); the tests run it with `podman healthcheck run`.
run_container() {
    local name=$1
    shift
    started_containers+=("$name")
    quietly podman run -d --name "$name" --network=host --read-only --cap-drop=ALL \
        --security-opt=no-new-privileges "$@" "$image"
}

step_container() {
    section "container"
    local name=convd-deploy-$$ port info status
    port=$(free_port)
    run_container "$name" -e CONVD_HOST=127.0.0.1 -e CONVD_PORT="$port" ||
        { fail "podman run"; return 1; }
    if ! wait_http "http://127.0.0.1:$port/readyz" 30; then
        podman logs "$name" 2>&1 | tail -n 20 | sed 's/^/  | /'
        fail "container ready on port $port"
        return 1
    fi
    pass "container ready: /readyz 200"
    check "/healthz 200" wait_http "http://127.0.0.1:$port/healthz" 5
    counted python3 tests/deploy/golden.py "http://127.0.0.1:$port"
    info=$(curl -fsS "http://127.0.0.1:$port/v1/info")
    counted python3 tests/deploy/agree.py "http://127.0.0.1:$port" "$convd_bin" "$info"
    check "HEALTHCHECK (podman healthcheck run): healthy" quietly podman healthcheck run "$name"
    check "process runs as uid 10001" test "$(podman exec "$name" id -u)" = 10001
    check "root filesystem is read-only" bash -c '! podman exec "$0" sh -c ": > /usr/local/bin/x" 2>/dev/null' "$name"
    quietly podman stop -t 20 "$name"
    status=$(podman inspect --format '{{.State.ExitCode}}' "$name")
    check "podman stop: SIGTERM drains, exit 0 (got $status)" test "$status" = 0
    check "the log says it drained" grep -q '"event":"stopped","message":"drained"' <<<"$(podman logs "$name" 2>&1)"
}

# The same image with API keys and HTTPS, configured by environment and a mounted folder.
step_container_secure() {
    section "container with API keys and HTTPS"
    local name=convd-deploy-secure-$$ dir=$work/secrets port key status
    mkdir -p "$dir"
    key=$(openssl rand -hex 24)
    printf '# test keys\nsha256:%s\n' "$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)" >"$dir/keys"
    make_certificate "$dir" || { fail "openssl made no certificate"; return 1; }
    chmod 0755 "$dir" && chmod 0644 "$dir"/* # readable by the container's uid 10001
    port=$(free_port)
    run_container "$name" -v "$dir:/etc/convd:ro" -e CONVD_HOST=127.0.0.1 -e CONVD_PORT="$port" \
        -e CONVD_API_KEYS=/etc/convd/keys -e CONVD_TLS_CERT=/etc/convd/cert.pem \
        -e CONVD_TLS_KEY=/etc/convd/key.pem || { fail "podman run"; return 1; }
    if ! wait_http "https://127.0.0.1:$port/readyz" 30 --cacert "$dir/cert.pem"; then
        podman logs "$name" 2>&1 | tail -n 20 | sed 's/^/  | /'
        fail "HTTPS container ready on port $port"
        return 1
    fi
    pass "HTTPS container ready: /readyz 200 without a key, certificate verified"
    counted python3 tests/deploy/golden.py "https://127.0.0.1:$port" --key "$key" --cacert "$dir/cert.pem"
    status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/cert.pem" \
        -H 'Content-Type: application/json' -d '{"x":[[1]],"w":[[1]]}' \
        "https://127.0.0.1:$port/v1/conv2d/forward")
    check "no key: 401 (got $status)" test "$status" = 401
    check "HEALTHCHECK speaks HTTPS from the container's CONVD_TLS_CERT: healthy" \
        quietly podman healthcheck run "$name"
    quietly podman stop -t 20 "$name"
    check "podman stop: exit 0" test "$(podman inspect --format '{{.State.ExitCode}}' "$name")" = 0
}
