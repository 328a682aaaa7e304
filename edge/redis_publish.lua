-- Stores and publishes one event, atomically.
-- KEYS[1] meta hash (epoch, seq), KEYS[2] log sorted set (score = seq),
-- KEYS[3] idempotency key, only when the publisher gave one.
-- ARGV[1] epoch to use if the topic has none, ARGV[2] max events,
-- ARGV[3] max age ms, ARGV[4] meta TTL ms, ARGV[5] idempotency TTL ms,
-- ARGV[6] PUBLISH or SPUBLISH, ARGV[7] channel, ARGV[8] type, ARGV[9] data.
-- Returns {epoch, seq, ts, duplicate (0 or 1)}.
local meta, log, idem = KEYS[1], KEYS[2], KEYS[3]

if idem then
  local first = redis.call('GET', idem)
  if first then
    local epoch, seq, ts = string.match(first, '^(%w+):(%d+):(%d+)$')
    if epoch then
      return {epoch, tonumber(seq), tonumber(ts), 1}
    end
  end
end

if redis.call('HSETNX', meta, 'epoch', ARGV[1]) == 1 then
  -- A new epoch: any log left over belongs to an epoch that is gone, and
  -- its sequences would collide with the new ones.
  redis.call('DEL', log)
end
local epoch = redis.call('HGET', meta, 'epoch')
local seq = redis.call('HINCRBY', meta, 'seq', 1)
local ts = now_ms()
local member = string.format('%d\n%d\n', seq, ts) .. ARGV[8] .. '\n' .. ARGV[9]

redis.call('ZADD', log, seq, member)
redis.call('ZREMRANGEBYRANK', log, 0, -tonumber(ARGV[2]) - 1)
trim_age(log, ts - tonumber(ARGV[3]))
-- The log dies with its newest event; the meta outlives it (the caller
-- makes its TTL at least the max age) so the sequence is never reused.
redis.call('PEXPIRE', log, ARGV[3])
redis.call('PEXPIRE', meta, ARGV[4])
if idem then
  redis.call('SET', idem, epoch .. ':' .. string.format('%d:%d', seq, ts), 'PX', ARGV[5])
end
redis.call(ARGV[6], ARGV[7], epoch .. '\n' .. member)
return {epoch, seq, ts, 0}
