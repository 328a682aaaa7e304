-- Counts upload ARGV[1] of ARGV[2] bytes for a user, atomically.
-- KEYS[1]: the user's hash, upload id -> size. KEYS[2]: every claim, upload
-- id -> "unix ms|node|owner". ARGV[3], ARGV[4]: the user's limits (uploads,
-- bytes). ARGV[5]: the claim. ARGV[6]: "reserve" (a new upload: both
-- limits), "resize" (a size becoming known: bytes only; counted now if it
-- was not) or "add" (found in storage: no limits; a claim there already is
-- renewed, with this node and time).
-- Returns 0 when counted, 1 over the uploads limit, 2 over the bytes limit.
local id, size, mode = ARGV[1], tonumber(ARGV[2]), ARGV[6]
local old = redis.call('HGET', KEYS[1], id)
if old and mode == 'reserve' then
  return 0
end
if mode == 'add' then
  redis.call('HSET', KEYS[1], id, size)
  redis.call('HSET', KEYS[2], id, ARGV[5])
  return 0
end
local n, total = 0, 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
  n = n + 1
  total = total + tonumber(v)
end
if old then
  total = total - tonumber(old)
elseif mode == 'reserve' and n >= tonumber(ARGV[3]) then
  return 1
end
if total + size > tonumber(ARGV[4]) then
  return 2
end
redis.call('HSET', KEYS[1], id, size)
if not old then
  redis.call('HSET', KEYS[2], id, ARGV[5])
end
return 0
