-- Admission in one round trip: lease rate-limit tokens and read the month's spend.
-- KEYS[1] rate:{c}   KEYS[2] usage:{c}:<month>   KEYS[3] budget:{c}
-- ARGV[1] tokens per second   ARGV[2] burst   ARGV[3] tokens wanted (lease size, >= 1)
-- Token bucket on the server clock: grants min(wanted, whole tokens available) if at least
-- one is available, else nothing and the milliseconds until one is.
-- Returns {granted, wait_ms, plain cost_pusd, packed field, budget override}, the last three
-- false when absent; the spend is billing.totals.spent_pusd of the two usage fields.
redis.replicate_commands()
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
end
local granted = 0
local wait = 0
if tokens >= 1 then
  granted = math.min(want, math.floor(tokens))
  tokens = tokens - granted
else
  wait = math.max(1, math.ceil((1 - tokens) * 1000 / rate))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local spent = redis.call('HMGET', KEYS[2], 'cost_pusd', 'packed')
local override = redis.call('HGET', KEYS[3], 'monthly')
return {granted, wait, spent[1], spent[2], override}
