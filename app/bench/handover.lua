-- wrk script for handover.sh: the home page and the catalog in turn, and
-- at the end the exact counts (requests, each kind of error, the slowest
-- and the 99th percentile latency) in lines handover.sh reads.

local n = 0
local pages = { "/", "/book/catalog" }

function request()
    n = n + 1
    return wrk.format("GET", pages[n % 2 + 1])
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("handover: requests %d connect %d read %d write %d timeout %d status %d max_ms %.1f p99_ms %.2f\n",
        summary.requests, e.connect, e.read, e.write, e.timeout, e.status,
        latency.max / 1000, latency:percentile(99) / 1000))
end
