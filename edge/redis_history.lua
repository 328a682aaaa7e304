-- Reads a topic's head and the events after a sequence, creating the
-- topic's state (and so its epoch) when there is none.
-- KEYS[1] meta hash, KEYS[2] log sorted set.
-- ARGV[1] epoch to use if the topic has none, ARGV[2] after (a sequence),
-- ARGV[3] limit, ARGV[4] max age ms, ARGV[5] meta TTL ms.
-- Returns {epoch, head seq, {members...}}.
local meta, log = KEYS[1], KEYS[2]

if redis.call('HSETNX', meta, 'epoch', ARGV[1]) == 1 then
  redis.call('HSETNX', meta, 'seq', 0)
  redis.call('DEL', log)
end
redis.call('PEXPIRE', meta, ARGV[5])
-- Trim here too: a topic nobody publishes to must not serve stale events.
trim_age(log, now_ms() - tonumber(ARGV[4]))

local head = redis.call('HMGET', meta, 'epoch', 'seq')
local events = {}
local limit = tonumber(ARGV[3])
if limit > 0 then
  events = redis.call('ZRANGE', log, '(' .. ARGV[2], '+inf', 'BYSCORE', 'LIMIT', 0, limit)
end
return {head[1], tonumber(head[2]) or 0, events}
