-- Takes the lock, or confirms the caller already has it.
-- KEYS[1] lock key; ARGV[1] caller's token; ARGV[2] lease in ms.
-- Returns 1 when the caller holds the lock afterwards, 0 otherwise.
-- Holding it already counts as success: a retry after a reply lost to a
-- timeout must not shut its own caller out for a whole lease.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
