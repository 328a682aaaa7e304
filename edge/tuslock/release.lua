-- Releases the lock, only for the holder, and tells waiters at once.
-- KEYS[1] lock key; ARGV[1] caller's token; ARGV[2] release channel;
-- ARGV[3] the "released" message.
-- Returns 1 when released, 0 when the caller no longer held it: deleting
-- then would free a lock that another node has taken over since.
-- Publishing here rather than from the client saves a round trip and
-- never announces a release that did not happen.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
