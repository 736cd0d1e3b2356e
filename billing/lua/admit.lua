-- Admission in one round trip: lease rate-limit tokens and (hard caps) a slice of the budget.
-- KEYS[1] rate:{c}   KEYS[2] usage:{c}:<month>   KEYS[3] budget:{c}
-- KEYS[4] budget:{c}:<month> (leases: field "leased" = sum, one field per lease ID, pico-USD)
-- KEYS[5] leases:{c}:<month> (zset: lease ID -> deadline, server ms)
-- ARGV[1] tokens per second   ARGV[2] burst   ARGV[3] tokens wanted (0: leave the bucket alone)
-- ARGV[4] mode: "read" (return the spend, as a soft check) or "lease"
-- mode "lease": ARGV[5] lease ID   ARGV[6] the plan's budget (pico-USD) or "none"
--   ARGV[7] keep: what the lease must go on holding (runs in flight, pico-USD)
--   ARGV[8] need: the least free amount worth taking (this request's maximum cost)
--   ARGV[9] want: the free amount wanted   ARGV[10] lease lifetime from now, ms
--   ARGV[11] the share of what is available that one lease may take (0..1)
--
-- Token bucket on the server clock: grants min(wanted, whole tokens available) if at least
-- one is available, else nothing and the milliseconds until one is.
--
-- Budget leases keep "recorded spend + sum of leases <= budget" at all times. A process
-- replaces its own lease in each call: the old amount goes back, then it takes keep (its
-- runs in flight, whose costs are not recorded yet) plus a free slice, granted only if the
-- budget minus the spend and every OTHER lease covers keep + need. Spend recorded out of a
-- lease (record.lua) stays counted in that lease until the next call replaces it: counted
-- twice for a while, never zero times. Leases past their deadline are swept first, so the
-- lease of a process that died is released at most its lifetime after its last call.
-- Amounts are Lua doubles: exact below 2**53 pico-USD (9,007 USD of budget per month).
--
-- Returns {granted, wait_ms, tokens left in the bucket (floor), a, b, c}:
--   mode "read":  a, b = plain cost_pusd and packed field of the usage hash, c = override
--   mode "lease": a = -1 (no budget: nothing leased) or the free amount granted (0: refused),
--                 b = available before the grant (budget - spend - other leases - keep), c = 0
redis.replicate_commands()
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local granted = 0
local wait = 0
local left = -1
if want > 0 then
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
  if tokens >= 1 then
    granted = math.min(want, math.floor(tokens))
    tokens = tokens - granted
  else
    wait = math.max(1, math.ceil((1 - tokens) * 1000 / rate))
  end
  left = math.floor(tokens)
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
end
local spent = redis.call('HMGET', KEYS[2], 'cost_pusd', 'packed')
local override = redis.call('HGET', KEYS[3], 'monthly')
if ARGV[4] == 'read' then
  return {granted, wait, left, spent[1], spent[2], override}
end

local id = ARGV[5]
local leased = tonumber(redis.call('HGET', KEYS[4], 'leased') or '0')
local dead = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
for i = 1, #dead do
  leased = leased - tonumber(redis.call('HGET', KEYS[4], dead[i]) or '0')
  redis.call('HDEL', KEYS[4], dead[i])
end
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
end
leased = leased - tonumber(redis.call('HGET', KEYS[4], id) or '0')
local budget = override or ARGV[6]
local free = -1
local avail = 0
local hold = 0
if budget ~= 'none' then
  local cost = tonumber(spent[1] or '0')
  if spent[2] then -- cost_pusd is the 8th uint64/uint32 limb pair (billing/totals.py)
    local high, low = struct.unpack('>I8I4', spent[2], 85)
    cost = cost + high * 4294967296 + low
  end
  local keep = tonumber(ARGV[7])
  local need = tonumber(ARGV[8])
  avail = tonumber(budget) - cost - leased - keep
  free = 0
  if avail > 0 and avail >= need then
    free = math.max(need, math.min(tonumber(ARGV[9]), math.floor(avail * tonumber(ARGV[11]))))
    free = math.min(free, avail)
  end
  hold = keep + free
end
if hold > 0 then
  redis.call('HSET', KEYS[4], id, string.format('%.0f', hold))
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[10]), id)
else
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
end
leased = leased + hold
if leased > 0 then
  redis.call('HSET', KEYS[4], 'leased', string.format('%.0f', leased))
  -- a month and a grace period: by then every lease in it is long past its deadline
  redis.call('PEXPIRE', KEYS[4], 3456000000)
  redis.call('PEXPIRE', KEYS[5], 3456000000)
else
  redis.call('DEL', KEYS[4], KEYS[5])
end
return {granted, wait, left, free, string.format('%.0f', avail), 0}
