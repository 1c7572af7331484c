-- wrk script of bench/load_http.sh: POSTs the file named by $BODY as JSON (a GET when BODY is
-- unset) and prints one line "WRKJSON {...}" with throughput, latency percentiles and errors.
local path = os.getenv("BODY")
if path and path ~= "" then
    local f = assert(io.open(path, "rb"))
    wrk.body = f:read("*a")
    f:close()
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
    local seconds = summary.duration / 1e6
    local e = summary.errors
    io.write(string.format(
        'WRKJSON {"requests":%d,"seconds":%.3f,"rps":%.1f,"socket_errors":%d,"non_2xx":%d,' ..
        '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"bytes_read":%d}\n',
        summary.requests, seconds, summary.requests / seconds,
        e.connect + e.read + e.write + e.timeout, e.status,
        latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
        latency:percentile(99) / 1e3, latency.max / 1e3, summary.bytes))
end
