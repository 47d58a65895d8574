-- bench/wrk/post.lua: the request codexbench's wrk cross-check sends.
--
--   wrk -t1 -c16 -d4s -s bench/wrk/post.lua URL -- BODY_FILE MARKER 'Name: value' ...
--
-- POSTs the JSON in BODY_FILE with the given headers (the API key among
-- them). wrk reads every body to its end by itself; response() also checks
-- that the status is 200 and that the body holds MARKER (the stream's last
-- event: "response.completed", "data: [DONE]", or "finish_reason" for a
-- non-stream answer). done() prints "non-200: N" and "bad-body: N", which
-- codexbench reads beside wrk's own summary.

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	local f = assert(io.open(args[1], "rb"))
	wrk.body = f:read("*a")
	f:close()
	wrk.method = "POST"
	marker = args[2] or ""
	for i = 3, #args do
		local name, value = args[i]:match("^([^:]+):%s*(.*)$")
		if name then
			wrk.headers[name] = value
		end
	end
	non200, badBody = 0, 0
end

function response(status, headers, body)
	if status ~= 200 then
		non200 = non200 + 1
	elseif marker ~= "" and not body:find(marker, math.max(1, #body - 4096), true) then
		badBody = badBody + 1
	end
end

function done(summary, latency, requests)
	local n, b = 0, 0
	for _, t in ipairs(threads) do
		n = n + t:get("non200")
		b = b + t:get("badBody")
	end
	io.write(string.format("non-200: %d\nbad-body: %d\n", n, b))
end
