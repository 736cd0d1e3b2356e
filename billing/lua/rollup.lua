-- Recompute a monthly record as the sum of its daily records (all in one slot).
-- KEYS[1] usage:{c}:<month>; KEYS[2] a scratch key in the same slot;
-- KEYS[3..] usage:{c}:<day> for every day of that month.
-- ARGV: the counter fields to sum. Sums use HINCRBY on the scratch key, so they are exact
-- 64-bit integers (Lua numbers are doubles). updated_ms becomes the maximum over the days.
-- Returns 1 if the monthly record changed, 0 otherwise; nothing is written without days.
redis.call('DEL', KEYS[2])
local updated = 0
local found = false
for k = 3, #KEYS do
  local vals = redis.call('HMGET', KEYS[k], 'updated_ms', unpack(ARGV))
  if redis.call('EXISTS', KEYS[k]) == 1 then
    found = true
    updated = math.max(updated, tonumber(vals[1] or '0'))
    for i = 1, #ARGV do
      redis.call('HINCRBY', KEYS[2], ARGV[i], vals[i + 1] or '0')
    end
  end
end
if not found then
  return 0
end
local changed = 0
local pairs_ = {}
for i = 1, #ARGV do
  local value = redis.call('HGET', KEYS[2], ARGV[i])
  if (redis.call('HGET', KEYS[1], ARGV[i]) or '0') ~= value then
    changed = 1
  end
  pairs_[#pairs_ + 1] = ARGV[i]
  pairs_[#pairs_ + 1] = value
end
redis.call('DEL', KEYS[2])
pairs_[#pairs_ + 1] = 'updated_ms'
pairs_[#pairs_ + 1] = string.format('%.0f', updated)
redis.call('HSET', KEYS[1], unpack(pairs_))
return changed
