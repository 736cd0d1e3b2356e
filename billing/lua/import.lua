-- Set a usage record if the imported one is newer ("set if newer" on updated_ms).
-- KEYS[1] usage:{c}:<period>; ARGV[1] updated_ms; ARGV[2] TTL seconds (0 = none);
-- ARGV[3] the record's packed field (see billing/totals.py). The stored record's updated_ms
-- is the larger of its packed one and a plain 'updated_ms' field (older layout), -1 if it has
-- neither. Returns 1 when written, 0 when the stored record is as new.
local vals = redis.call('HMGET', KEYS[1], 'updated_ms', 'packed')
local prev = -1
if vals[1] then
  prev = tonumber(vals[1])
end
if vals[2] then
  local hi, lo = struct.unpack('>I8I4', vals[2], 97)
  prev = math.max(prev, hi * 4294967296 + lo)
end
if prev >= tonumber(ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'packed', ARGV[3])
if ARGV[2] ~= '0' then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
