-- pipeline.lua: send requests in HTTP/1.1 pipelines, as TechEmpower's
-- plaintext test does. The argument is the depth (default 16):
--   wrk -t1 -c256 -d15s --latency -s pipeline.lua http://127.0.0.1:8080/plaintext -- 16
local batch

init = function(args)
  local depth = tonumber(args[1]) or 16
  local reqs = {}
  for i = 1, depth do
    reqs[i] = wrk.format()
  end
  -- One buffer of depth requests: wrk writes it in one go and then reads
  -- depth responses, each counted as a request.
  batch = table.concat(reqs)
end

request = function()
  return batch
end
