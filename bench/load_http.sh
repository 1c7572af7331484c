#!/usr/bin/env bash
# The HTTP load benchmark (issue 4's targets): wrk on loopback, in one run, against convd, a bare
# libmicrohttpd "hello" server (the limit of the library) and the Python peer (ThreadingHTTPServer
# + PyTorch, bench/peer_http.py), all on the same request bodies:
#   - the seed's case (1x1x32x32 input, 3x3 kernel, "same") as a JSON forward, 64 connections;
#   - layer (c) (8x256x14x14, F=256, 3x3, pad 1) as a JSON backward, 2 connections.
# Writes build/bench-http.json. Environment: CONVD_BIN (default build/convd),
# BENCH_HTTP_SECONDS and BENCH_HTTP_ROUNDS (seed measurements: 3 interleaved rounds of 5 s per
# server), BENCH_HTTP_LAYER_SECONDS (layer (c), default 30: the peer takes seconds per request),
# BENCH_HTTP_CONNECTIONS (default 64).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CONVD_BIN:-build/convd}
secs=${BENCH_HTTP_SECONDS:-5}
rounds=${BENCH_HTTP_ROUNDS:-3}
layer_secs=${BENCH_HTTP_LAYER_SECONDS:-30}
conns=${BENCH_HTTP_CONNECTIONS:-64}
work=build/bench-http
mkdir -p "$work"
[ -x "$bin" ] || make --no-print-directory build/convd
command -v wrk >/dev/null || { echo "load_http.sh: wrk is missing (make bench-deps)" >&2; exit 1; }
cc -O2 -o "$work/hello_mhd" bench/hello_mhd.c $(pkg-config --cflags --libs libmicrohttpd)
/usr/bin/python3 bench/peer_http.py --make-bodies "$work"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# start NAME COMMAND...: runs a server that prints "... listening on http://HOST:PORT" first;
# sets $url to that address.
start() {
    local name=$1
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    url=
    for _ in $(seq 600); do
        url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/$name.out")
        [ -n "$url" ] && return 0
        sleep 0.05
    done
    echo "load_http.sh: $name did not start; see $work/$name.err" >&2
    exit 1
}
start convd "$bin" serve --port 0
convd=$url
start hello "$work/hello_mhd" 0
hello=$url
# PyTorch as its own docs advise for a threaded server: BLAS single-threaded, torch's own pool.
start python env OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/peer_http.py --port 0
python=$url

# Both must give the same answer before their speed means anything.
for name in seed_forward layer_c_backward; do
    route=/v1/conv2d/${name##*_}
    curl -sf -H 'Content-Type: application/json' --data-binary @"$work/$name.json" \
        "$convd$route" >"$work/$name.convd.json"
    curl -sf -H 'Content-Type: application/json' --data-binary @"$work/$name.json" \
        "$python$route" >"$work/$name.python.json"
done
/usr/bin/python3 - "$work" <<'PY'
import json, sys
import numpy as np
work = sys.argv[1]
for name, keys in (("seed_forward", ["y"]), ("layer_c_backward", ["dx", "dw", "db"])):
    a = json.load(open(f"{work}/{name}.convd.json"))
    b = json.load(open(f"{work}/{name}.python.json"))
    for k in keys:
        x, y = np.array(a[k]["data"]), np.array(b[k]["data"])
        err = np.abs(x - y).max() / max(np.abs(y).max(), 1e-30)
        assert a[k]["shape"] == b[k]["shape"] and err < 1e-4, (name, k, err)
print("convd and the Python peer agree on both requests")
PY

# measure URL BODY CONNECTIONS SECONDS: one wrk run; prints its WRKJSON object.
measure() {
    local threads=2
    [ "$3" -lt 2 ] && threads=1
    BODY=$2 wrk -t"$threads" -c"$3" -d"$4s" --timeout 60s -s bench/load_http.lua "$1" |
        sed -n 's/^WRKJSON //p'
}
# The machine is shared and noisy: the seed measurements are interleaved over several rounds
# and each server keeps its best round (as the peers' table in measured-anchors.md does).
echo "measuring: seed ${rounds} rounds of ${secs} s per server, layer (c) ${layer_secs} s ..." >&2
: >"$work/seed.runs"
for round in $(seq "$rounds"); do
    for server in hello_get hello convd python; do
        case $server in
        hello_get) line=$(measure "$hello/" "" "$conns" "$secs") ;;
        hello) line=$(measure "$hello/" "$work/seed_forward.json" "$conns" "$secs") ;;
        convd) line=$(measure "$convd/v1/conv2d/forward" "$work/seed_forward.json" "$conns" "$secs") ;;
        python) line=$(measure "$python/v1/conv2d/forward" "$work/seed_forward.json" "$conns" "$secs") ;;
        esac
        echo "{\"server\":\"$server\",\"round\":$round,\"run\":$line}" >>"$work/seed.runs"
    done
done
c_convd=$(measure "$convd/v1/conv2d/backward" "$work/layer_c_backward.json" 2 "$layer_secs")
c_python=$(measure "$python/v1/conv2d/backward" "$work/layer_c_backward.json" 2 "$layer_secs")
info=$(curl -sf "$convd/v1/info")

/usr/bin/python3 - "$work" <<PY
import json, os, sys
work = sys.argv[1]
runs = [json.loads(line) for line in open(f"{work}/seed.runs")]
best = {name: max((r["run"] for r in runs if r["server"] == name), key=lambda r: r["rps"])
        for name in ("hello_get", "hello", "convd", "python")}
hello_get, hello, convd, python = best["hello_get"], best["hello"], best["convd"], best["python"]
c_convd, c_python = $c_convd, $c_python
info = $info
size = lambda n: os.path.getsize(f"{work}/{n}.json")
result = {
    "machine": {"cores": info["threads"]["cores"], "blas_core": info["blas"]["core"],
                "convd_workers": info["threads"]["workers"],
                "convd_io_threads": info["threads"]["io_threads"],
                "seconds_per_run": $secs, "rounds": $rounds,
                "layer_seconds_per_run": $layer_secs},
    "seed_forward": {"connections": $conns, "body_bytes": size("seed_forward"),
                     "hello": hello, "hello_get_no_body": hello_get,
                     "convd": convd, "python": python,
                     "convd_vs_hello": convd["rps"] / hello["rps"],
                     "convd_vs_hello_get": convd["rps"] / hello_get["rps"],
                     "convd_vs_python": convd["rps"] / python["rps"],
                     "all_rounds": runs},
    "layer_c_backward": {"connections": 2, "body_bytes": size("layer_c_backward"),
                         "convd": c_convd, "python": c_python,
                         "convd_vs_python": c_convd["rps"] / c_python["rps"]},
}
s, c = result["seed_forward"], result["layer_c_backward"]
result["targets"] = {
    "seed_rps_at_least_30pct_of_hello": s["convd_vs_hello"] >= 0.30,
    "seed_rps_at_least_20x_python": s["convd_vs_python"] >= 20,
    "seed_p99_under_20ms_at_64_connections": convd["p99_ms"] < 20,
    "layer_c_backward_at_least_3x_python": c["convd_vs_python"] >= 3,
    "no_errors": all(r["socket_errors"] == 0 and r["non_2xx"] == 0
                     for r in [x["run"] for x in runs] + [c_convd, c_python]),
}
json.dump(result, open("build/bench-http.json", "w"), indent=2)
print(f"seed forward, {$conns} connections: convd {convd['rps']:.0f} req/s "
      f"(p50 {convd['p50_ms']:.1f} ms, p99 {convd['p99_ms']:.1f} ms), hello {hello['rps']:.0f} "
      f"(same body; {hello_get['rps']:.0f} for a bodiless GET), python {python['rps']:.0f}: "
      f"{s['convd_vs_hello']:.0%} of hello ({s['convd_vs_hello_get']:.0%} of the GET), "
      f"{s['convd_vs_python']:.1f}x python")
print(f"layer (c) backward, 2 connections: convd {c_convd['rps']:.2f} req/s, "
      f"python {c_python['rps']:.2f}: {c['convd_vs_python']:.1f}x")
print("targets:", json.dumps(result["targets"]))
print("written: build/bench-http.json")
PY
