-- Takes one token from a bucket, atomically.
-- KEYS[1] bucket hash: tokens (a decimal string), ts (last refill, ms).
-- ARGV[1] rate in tokens per second, ARGV[2] burst, ARGV[3] extra ms the
-- key outlives the time the bucket takes to refill fully.
-- Returns {allowed (0 or 1), retry-after ms}: integers, since Redis
-- truncates Lua numbers in replies.
local key = KEYS[1]
local rate, burst, grace = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- A cap on waits (~30 years) so that a tiny rate cannot make PEXPIRE fail.
local max_ms = 1e12

-- Redis's clock, not the caller's, so that nodes with skewed clocks agree.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local tokens, last = burst, now
local state = redis.call('HMGET', key, 'tokens', 'ts')
local saved, ts = tonumber(state[1]), tonumber(state[2])
-- A missing or unreadable bucket is a full one: idle keys expire when full.
if saved and ts then
  tokens = saved
  -- TIME can step back (a failover to a replica with another clock):
  -- that adds nothing, and ts moves back with it so no time counts twice.
  if now > ts then
    tokens = tokens + (now - ts) * rate / 1000
  end
  tokens = math.min(tokens, burst)
end

local allowed, retry = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.min(math.ceil((1 - tokens) * 1000 / rate), max_ms)
end

-- %.17g keeps every bit of the double: a fraction of a token is saved.
redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'ts', string.format('%d', now))
local full_in = math.min(math.ceil((burst - tokens) * 1000 / rate), max_ms)
redis.call('PEXPIRE', key, string.format('%d', full_in + grace))
return {allowed, retry}
