-- Set a usage record if the imported one is newer ("set if newer" on updated_ms).
-- KEYS[1] usage:{c}:<period>; ARGV[1] updated_ms; ARGV[2] TTL seconds (0 = none);
-- ARGV[3..] field/value pairs. Returns 1 when written, 0 when the stored record is as new.
local prev = tonumber(redis.call('HGET', KEYS[1], 'updated_ms') or '-1')
if prev >= tonumber(ARGV[1]) then
  return 0
end
local pairs_ = {}
for i = 3, #ARGV do
  pairs_[#pairs_ + 1] = ARGV[i]
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(pairs_))
if ARGV[2] ~= '0' then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
