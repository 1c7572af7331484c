-- wrk script of failover.sh: POSTs one conv request over and over and checks every answer
-- against the reference (the answer without its "meta", which holds timings).
-- Environment: FAILOVER_BODY (request file), FAILOVER_REFERENCE (expected answer, no meta).
local function slurp(path)
    local f = assert(io.open(path, "rb"))
    local text = f:read("*a")
    f:close()
    return text
end

wrk.method = "POST"
wrk.body = slurp(os.getenv("FAILOVER_BODY"))
wrk.headers["Content-Type"] = "application/json"
local reference = slurp(os.getenv("FAILOVER_REFERENCE"))

local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
    answered, non200, mismatched, first_bad = 0, 0, 0, ""
end

function response(status, headers, body)
    answered = answered + 1
    if status ~= 200 then
        non200 = non200 + 1
    elseif body:gsub(',"meta":%b{}', "") ~= reference then
        mismatched = mismatched + 1
    else
        return
    end
    if first_bad == "" then first_bad = status .. " " .. body:sub(1, 300) end
end

function done(summary, latency, requests)
    local answered_all, non200_all, mismatched_all, bad = 0, 0, 0, ""
    for _, t in ipairs(threads) do
        answered_all = answered_all + t:get("answered")
        non200_all = non200_all + t:get("non200")
        mismatched_all = mismatched_all + t:get("mismatched")
        if bad == "" then bad = t:get("first_bad") end
    end
    local e = summary.errors
    io.write(string.format("failover-result requests=%d answered=%d non200=%d mismatched=%d " ..
        "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d p50_ms=%.2f p99_ms=%.2f " ..
        "max_ms=%.2f seconds=%.1f\n", summary.requests, answered_all, non200_all, mismatched_all,
        e.connect, e.read, e.write, e.timeout, latency:percentile(50) / 1000,
        latency:percentile(99) / 1000, latency.max / 1000, summary.duration / 1e6))
    if bad ~= "" then io.write("failover-first-bad " .. bad .. "\n") end
end
