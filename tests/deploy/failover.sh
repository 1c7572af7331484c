# Step of tests/deploy/run.sh (sourced): three convd behind nginx (docker/nginx.conf) on
# loopback under wrk load; one instance is killed outright (SIGKILL) and another drained
# (SIGTERM) while the load runs. Every client request must succeed with the right answer.
FAILOVER_SECONDS=15
KILL_AT=5
DRAIN_AT=10

step_failover() {
    section "failover: 3 convd behind nginx, wrk load, one killed, one drained"
    local dir=$work/nginx ports=() pids=() i port nginx_port nginx_pid wrk_pid result status
    mkdir -p "$dir"
    for i in 0 1 2; do
        start_convd "replica$i" --workers 1 --io-threads 1 --access-log off --drain-timeout 10 ||
            { fail "replica $i did not start"; return 1; }
        ports+=("$convd_port")
        pids+=("$convd_pid")
    done
    nginx_port=$(free_port)
    python3 tests/deploy/render_nginx.py "$dir" "$nginx_port" "${ports[@]}" ||
        { fail "render docker/nginx.conf"; return 1; }
    check "nginx -t accepts docker/nginx.conf (rendered)" \
        nginx -t -q -p "$dir" -c "$dir/nginx.conf" -g "pid $dir/nginx.pid;"
    nginx -p "$dir" -c "$dir/nginx.conf" -g "daemon off; pid $dir/nginx.pid;" 2>>"$dir/error.log" &
    nginx_pid=$!
    started_pids+=("$nginx_pid")
    wait_http "http://127.0.0.1:$nginx_port/nginx-healthz" 10 || { fail "nginx did not start"; return 1; }

    # The request and its reference answer (the golden y checked first), identical from every
    # replica, so that wrk's script can compare each answer byte for byte.
    python3 - "$CONVD_GOLDEN_DIR/cs231n_forward.json" "$dir" "$nginx_port" "${ports[@]}" <<'PY' ||
import json, re, sys, urllib.request
sys.path.insert(0, "tests/deploy")
from golden import close
case, out, nginx_port, replicas = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4:]
body = json.dumps({k: v for k, v in case["request"].items() if k not in ("dy", "op")}).encode()
open(f"{out}/body.json", "wb").write(body)
def ask(port):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/conv2d/forward", data=body,
                                 headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=30).read().decode()
answer = ask(nginx_port)
why = close(json.loads(answer)["y"], case["expected"]["y"], 1e-10)
if why:
    sys.exit(f"the answer through nginx is not PyTorch's: {why}")
strip = lambda text: re.sub(r',"meta":\{[^{}]*\}', "", text)
if any(strip(ask(p)) != strip(answer) for p in replicas):
    sys.exit("replicas answer with different bytes: the byte-for-byte check cannot be used")
open(f"{out}/reference.json", "w").write(strip(answer))
PY
        { fail "reference answer"; return 1; }
    pass "reference answer through nginx is PyTorch's y, the same bytes from every replica"

    FAILOVER_BODY=$dir/body.json FAILOVER_REFERENCE=$dir/reference.json \
        wrk -t2 -c16 -d"${FAILOVER_SECONDS}s" --timeout 10s -s tests/deploy/failover.lua \
        "http://127.0.0.1:$nginx_port/v1/conv2d/forward" >"$dir/wrk.txt" 2>&1 &
    wrk_pid=$!
    started_pids+=("$wrk_pid")
    sleep "$KILL_AT"
    kill -KILL "${pids[0]}"
    { wait "${pids[0]}"; } 2>/dev/null # bash would report the kill on the terminal
    sleep $((DRAIN_AT - KILL_AT))
    kill -TERM "${pids[1]}"
    wait "$wrk_pid"
    sed 's/^/  | /' "$dir/wrk.txt"
    wait "${pids[1]}"
    status=$?
    check "replica 1 drained on SIGTERM and exited 0 (got $status)" test "$status" = 0
    check "replica 0 is gone (SIGKILL)" bash -c '! kill -0 "$0" 2>/dev/null' "${pids[0]}"
    check "replica 2 still answers /healthz" wait_http "http://127.0.0.1:${ports[2]}/healthz" 5

    result=$(grep '^failover-result' "$dir/wrk.txt")
    field() { sed -nE "s/.* $1=([0-9.]+).*/\1/p" <<<"$result"; }
    local requests errors
    requests=$(field requests)
    errors=$(($(field non200) + $(field mismatched) + $(field connect_errors) + $(field read_errors) +
        $(field write_errors) + $(field timeouts)))
    check "wrk ran (${requests:-no} requests)" test "${requests:-0}" -gt 1000
    check "zero failed client requests: non-200, wrong answers, socket errors, timeouts ($errors)" \
        test "${requests:-0}" -gt 0 -a "$errors" -eq 0
    check "every request answered and checked ($(field answered) of $requests)" \
        test "$(field answered)" = "$requests"

    # nginx's log: which replica served each request, and how many needed another attempt.
    local retried by0 by1 by2
    retried=$(grep -c 'upstream=[^ ]*, ' "$dir/access.log")
    by0=$(grep -cE "upstream=([^ ]*, )*127.0.0.1:${ports[0]} upstream_status=([^ ]*, )*200" "$dir/access.log")
    by1=$(grep -cE "upstream=([^ ]*, )*127.0.0.1:${ports[1]} upstream_status=([^ ]*, )*200" "$dir/access.log")
    by2=$(grep -cE "upstream=([^ ]*, )*127.0.0.1:${ports[2]} upstream_status=([^ ]*, )*200" "$dir/access.log")
    check "every replica served before it went away (${by0}, ${by1}, ${by2})" \
        test "$by0" -gt 0 -a "$by1" -gt 0 -a "$by2" -gt 0
    check "failed attempts were retried on another replica ($retried)" test "$retried" -gt 0
    {
        echo "failover: $requests requests in ${FAILOVER_SECONDS} s through nginx to 3 convd" \
            "(wrk -t2 -c16); replica 0 SIGKILLed at ${KILL_AT} s, replica 1 drained (SIGTERM) at" \
            "${DRAIN_AT} s; $errors failed or wrong; $retried retried by nginx on another replica;" \
            "served by replica 0/1/2: $by0/$by1/$by2;" \
            "latency p50 $(field p50_ms) ms, p99 $(field p99_ms) ms, max $(field max_ms) ms"
    } >>"$report"
    kill -QUIT "$nginx_pid"
    wait "$nginx_pid"
}
