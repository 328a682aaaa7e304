-- Renews the lease, only for the holder.
-- KEYS[1] lock key; ARGV[1] caller's token; ARGV[2] lease in ms.
-- Returns 1 when renewed, 0 when the key is gone or another token owns it
-- (the lease was lost): a plain PEXPIRE would extend someone else's lock.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
