-- wrk script of bench/clicks.py: many members flattring many URLs.
-- Reads tokens from the file named by the TOKENS environment variable.
local tokens = {}
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    table.insert(tokens, line)
  end
  math.randomseed(os.time() * 1000 + seed)
  created = 0
  existed = 0
  other = 0
  urls = tonumber(os.getenv("URLS") or "100000")
  warmup = os.getenv("WARMUP") == "1"
  threads_total = tonumber(os.getenv("THREADS") or "2")
  -- A warm-up in several runs goes on where the previous one stopped.
  sent = math.floor(tonumber(os.getenv("WARMUP_FROM") or "0") / threads_total)
end

function request()
  local token
  if warmup then
    -- The warm-up goes through every token in turn, so the timed run finds them cached.
    sent = sent + 1
    token = tokens[(sent * threads_total + seed) % #tokens + 1]
  else
    token = tokens[math.random(#tokens)]
  end
  local body = '{"url": "https://site' .. math.random(200) .. '.example/post/' ..
               math.random(urls) .. '"}'
  return wrk.format("POST", "/api/v1/flattrs", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end

function response(status, headers, body)
  if status == 201 then created = created + 1
  elseif status == 200 then existed = existed + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local c, e, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    c = c + thread:get("created")
    e = e + thread:get("existed")
    o = o + thread:get("other")
  end
  io.write(string.format("STATUS created=%d existed=%d other=%d\n", c, e, o))
  io.write(string.format("LATENCY p50_us=%d p99_us=%d\n",
    latency:percentile(50), latency:percentile(99)))
end
