-- Budget alerts of one client for one month: each threshold fires at most once, and is
-- re-armed (hysteresis) only when the spend drops below it by more than the margin.
-- KEYS[1] usage:{c}:<month>   KEYS[2] budget:{c}   KEYS[3] alerts:{c}:<month>
-- KEYS[4] webhook:{c} (fields url, thresholds)
-- ARGV[1] the plan's monthly budget, pico-USD ('' = unlimited)
-- ARGV[2] 1-based byte offset of cost_pusd in the packed usage field (billing/totals.py)
-- ARGV[3] re-arm margin, percentage points   ARGV[4] now, Unix ms   ARGV[5] TTL of KEYS[3], s
-- ARGV[6] pending alerts fired at or before this Unix ms are returned to be sent again
-- ARGV[7..] the plan's thresholds, percent of the budget (the client's own, if set, win)
-- Firing a threshold also marks it pending ('p:<t>' = '<fired ms>:<n>', n counting the
-- month's firings in field 'seq') in KEYS[3]; the caller clears that once the webhook is in
-- the outbox (another slot, so not in this script). A caller that died in between leaves it
-- pending, and a later call returns it to be queued again under the same idempotency key
-- (the mark), so the alert is sent once.
-- The spend is read here (packed + plain cost_pusd, credits included), never passed in, so
-- a process with a stale reading cannot re-arm a threshold that is still crossed. Without a
-- webhook URL nothing is marked (the alerts fire once a URL is set).
-- Returns {spent pico-USD, budget pico-USD (-1: none), {fired now}, {fired earlier or now},
-- url or false, {thresholds used}, {mark of each fired now}, {t1, mark 1, t2, ...} pending
-- ones fired at or before ARGV[6]}.
local spent = tonumber(redis.call('HGET', KEYS[1], 'cost_pusd') or '0')
local packed = redis.call('HGET', KEYS[1], 'packed')
if packed then
  local hi, lo = struct.unpack('>I8I4', packed, tonumber(ARGV[2]))
  spent = spent + hi * 4294967296 + lo
end
local budget = nil
local override = redis.call('HGET', KEYS[2], 'monthly')
if override == 'none' then
  budget = nil
elseif override then
  budget = tonumber(override)
elseif ARGV[1] ~= '' then
  budget = tonumber(ARGV[1])
end
local url = redis.call('HGET', KEYS[4], 'url')
local thresholds = {}
local own = redis.call('HGET', KEYS[4], 'thresholds')
if own then
  for t in string.gmatch(own, '%d+') do
    thresholds[#thresholds + 1] = t
  end
else
  for i = 7, #ARGV do
    thresholds[#thresholds + 1] = ARGV[i]
  end
end
local fired, off, marks = {}, {}, {}
if url and budget and budget > 0 then
  local margin = tonumber(ARGV[3])
  for _, t in ipairs(thresholds) do
    local pct = tonumber(t)
    if spent * 100 >= budget * pct then
      if redis.call('HSETNX', KEYS[3], t, ARGV[4]) == 1 then
        fired[#fired + 1] = t
        marks[#marks + 1] = ARGV[4] .. ':' .. redis.call('HINCRBY', KEYS[3], 'seq', 1)
        redis.call('HSET', KEYS[3], 'p:' .. t, marks[#marks])
      end
      off[#off + 1] = t
    elseif spent * 100 < budget * (pct - margin) then
      redis.call('HDEL', KEYS[3], t)
    elseif redis.call('HEXISTS', KEYS[3], t) == 1 then
      off[#off + 1] = t
    end
  end
  if #fired > 0 then
    redis.call('EXPIRE', KEYS[3], ARGV[5])
  end
end
local pending = {}
if url then
  local cutoff = tonumber(ARGV[6])
  local state = redis.call('HGETALL', KEYS[3])
  for i = 1, #state, 2 do
    local t = string.match(state[i], '^p:(%d+)$')
    local at = string.match(state[i + 1], '^(%d+):')
    if t and at and tonumber(at) <= cutoff then
      pending[#pending + 1] = t
      pending[#pending + 1] = state[i + 1]
    end
  end
end
return {spent, budget or -1, fired, off, url or false, thresholds, marks, pending}
