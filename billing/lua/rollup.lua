-- Recompute a monthly record as the sum of its daily records (all in one slot).
-- KEYS[1] usage:{c}:<month>; KEYS[2..] usage:{c}:<day> for every day of that month.
-- A record is its 'packed' field plus any plain decimal fields of the older layout (see
-- billing/totals.py); both are read, summed exactly in 2**32 limbs (Lua numbers are doubles)
-- and the month is rewritten as one packed field (its TTL, if any, is kept). updated_ms
-- becomes the maximum over the days. A plain field may be negative: ledger corrections
-- (lua/correct.lua) lower 'cost_pusd' with HINCRBY. Negative values are summed apart and
-- subtracted; a counter whose sum is still negative is written as a plain field beside a
-- zero in the packed one (readers add the two). Returns 1 if the monthly record's counters
-- changed, 0 otherwise; nothing is written when no day has a record.
local B = 4294967296
local F = '>I8I4I8I4I8I4I8I4I8I4I8I4I8I4I8I4I8I4'
local NAMES = {'executions', 'errors', 'fuel', 'billed_cpu_ns', 'cpu_us', 'wall_us',
               'mem_bytes', 'cost_pusd', 'updated_ms'}

-- An exact non-negative decimal string as (high, low) limbs: long division by 2**32 on
-- 6-digit chunks keeps every intermediate value below 2**53.
local function limbs(dec)
  local hi, r = 0, 0
  local i = 1
  local j = (#dec - 1) % 6 + 1
  while i <= #dec do
    local cur = r * 1000000 + tonumber(string.sub(dec, i, j))
    local q = math.floor(cur / B)
    r = cur - q * B
    hi = hi * 1000000 + q
    i = j + 1
    j = j + 6
  end
  return hi, r
end

-- Add one record into acc and neg (16 limbs each, low limbs not yet normalised: acc the
-- packed and non-negative plain values, neg the magnitudes of negative plain values);
-- returns found, updated.
local function add(key, acc, neg)
  local vals = redis.call('HMGET', key, 'packed', unpack(NAMES))
  local found = false
  local updated = 0
  if vals[1] then
    found = true
    local packed = {struct.unpack(F, vals[1])}
    for i = 1, 16 do
      acc[i] = acc[i] + packed[i]
    end
    updated = packed[17] * B + packed[18]
  end
  for n = 1, 9 do
    local v = vals[n + 1]
    if v then
      found = true
      if n == 9 then
        updated = math.max(updated, tonumber(v))
      else
        local target = acc
        if string.sub(v, 1, 1) == '-' then
          target = neg
          v = string.sub(v, 2)
        end
        local hi, lo = limbs(v)
        target[2 * n - 1] = target[2 * n - 1] + hi
        target[2 * n] = target[2 * n] + lo
      end
    end
  end
  return found, updated
end

local function normalise(acc)
  for i = 1, 15, 2 do
    local q = math.floor(acc[i + 1] / B)
    acc[i] = acc[i] + q
    acc[i + 1] = acc[i + 1] - q * B
  end
end

-- acc - neg per counter, both normalised: returns the packed limbs (negative counters as 0)
-- and a table of counter index -> negative value (exact below 2**53 in magnitude)
local function net(acc, neg)
  normalise(acc)
  normalise(neg)
  local minus = {}
  for i = 1, 15, 2 do
    local hi, lo = acc[i] - neg[i], acc[i + 1] - neg[i + 1]
    if lo < 0 then
      lo = lo + B
      hi = hi - 1
    end
    if hi < 0 then
      minus[(i + 1) / 2] = hi * B + lo
      hi, lo = 0, 0
    end
    acc[i], acc[i + 1] = hi, lo
  end
  return minus
end

local sum = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
local sumneg = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
local updated = 0
local any = false
for k = 2, #KEYS do
  local found, day_updated = add(KEYS[k], sum, sumneg)
  if found then
    any = true
    updated = math.max(updated, day_updated)
  end
end
if not any then
  return 0
end
local minus = net(sum, sumneg)
local old = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
local oldneg = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
add(KEYS[1], old, oldneg)
local oldminus = net(old, oldneg)
local changed = 0
for i = 1, 16 do
  if old[i] ~= sum[i] then
    changed = 1
  end
end
for n = 1, 8 do
  if minus[n] ~= oldminus[n] then
    changed = 1
  end
end
sum[17] = math.floor(updated / B)
sum[18] = updated - sum[17] * B
redis.call('HDEL', KEYS[1], unpack(NAMES)) -- plain fields of the older layout (TTL kept)
redis.call('HSET', KEYS[1], 'packed', struct.pack(F, unpack(sum)))
for n = 1, 8 do
  if minus[n] then
    redis.call('HSET', KEYS[1], NAMES[n], string.format('%.0f', minus[n]))
  end
end
return changed
