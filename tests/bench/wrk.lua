-- wrk script for the salesd benchmark (tests/bench/run).
--
-- BENCH_POST=1: POST /orders, cycling through 100 prepared order bodies
-- (different products and quantities); otherwise the plain request of
-- the URL.  At the end prints one line "RESULT {json}" for the harness:
-- requests/s, p50 and p99 latency in ms, non-2xx/3xx responses, errors.

local post = os.getenv("BENCH_POST") == "1"
local reqs = {}
local i = 0

init = function(args)
	if not post then
		return
	end
	for n = 0, 99 do
		local body = string.format(
		    '{"product_id":"sku%02d","quantity":%d,"price":%d.%02d}',
		    n, 1 + n % 5, 1 + n % 50, n)
		reqs[n + 1] = wrk.format("POST", "/orders",
		    { ["Content-Type"] = "application/json" }, body)
	end
end

request = function()
	if not post then
		return wrk.request()
	end
	i = i % 100 + 1
	return reqs[i]
end

done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format('RESULT {"rps":%.1f,"p50_ms":%.3f,' ..
	    '"p99_ms":%.3f,"requests":%d,"non2xx":%d,"errors":%d}\n',
	    summary.requests / (summary.duration / 1e6),
	    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
	    summary.requests, e.status,
	    e.connect + e.read + e.write + e.timeout))
end
