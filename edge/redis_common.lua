-- Shared by the Edge scripts (prepended to each, so one script stays one
-- atomic unit). Log members are "<seq>\n<ts>\n<type>\n<data>": the
-- sequence first makes each member unique, and the timestamp second lets
-- trimming read it without decoding the event.

-- now_ms is Redis's clock in Unix milliseconds. Redis's clock, not the
-- caller's, so that nodes with skewed clocks agree on event ages.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- trim_age removes the events older than cutoff (ms) from the front of
-- log. Events are added in time order, so the old ones are a prefix; it is
-- read in small batches because usually none or one is due.
local function trim_age(log, cutoff)
  while true do
    local batch = redis.call('ZRANGE', log, 0, 15)
    local n = 0
    for _, m in ipairs(batch) do
      local ts = tonumber(string.match(m, '^%d+\n(%d+)\n'))
      -- A member we cannot read stops trimming rather than being lost.
      if ts == nil or ts >= cutoff then break end
      n = n + 1
    end
    if n > 0 then
      redis.call('ZREMRANGEBYRANK', log, 0, n - 1)
    end
    if n < 16 then return end
  end
end
