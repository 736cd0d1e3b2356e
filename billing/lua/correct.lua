-- A ledger correction: a new entry ('void' of one execution, or a 'credit' of an amount)
-- and the same adjustment of the day's and the month's counters, atomically.
-- KEYS[1] ledger:{c}  KEYS[2] ledgerid:{c}  KEYS[3] usage:{c}:<day>  KEYS[4] usage:{c}:<month>
-- ARGV[1] 'void' or 'credit'   ARGV[2] the voided execution ID, or the credit's own ID
-- ARGV[3] at_ms   ARGV[4] credit amount in pico-USD (0 < n < 2**53; ignored for a void)
-- ARGV[5] reason   ARGV[6] plan (may be empty)
-- A correction lowers the plain (signed) field 'cost_pusd' of both usage hashes with
-- HINCRBY: every reader adds the plain fields to the packed ones (billing/totals.py), so
-- budgets, reports and exports see the net at once. It is refused (nothing written) when the
-- month's net cost would go below zero, when the execution has no ledger entry (unknown or
-- trimmed), or when it was already voided. Returns the new entry's ID.
local B = 4294967296
local F = '>I8I4I8I4I8I4I8I4I8I4I8I4I8I4I8I4I8I4'
local kind, id, at = ARGV[1], ARGV[2], ARGV[3]
local amount
local ref = ''
if kind == 'void' then
  ref = redis.call('HGET', KEYS[2], id)
  if not ref then
    return redis.error_reply('NOTFOUND no ledger entry for execution ' .. id)
  end
  if redis.call('HEXISTS', KEYS[2], '!void:' .. id) == 1 then
    return redis.error_reply('VOIDED execution ' .. id .. ' is already voided')
  end
  local found = redis.call('XRANGE', KEYS[1], ref, ref)
  if #found == 0 then
    return redis.error_reply('NOTFOUND the ledger entry of execution ' .. id .. ' was trimmed')
  end
  local fields = found[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'kind' then
      return redis.error_reply('NOTFOUND ' .. id .. ' is not an execution')
    elseif fields[i] == 'cost_pusd' then
      amount = tonumber(fields[i + 1])
    end
  end
  amount = amount or 0
elseif kind == 'credit' then
  amount = tonumber(ARGV[4])
  if not amount or amount <= 0 then
    return redis.error_reply('ERR credit amount must be positive')
  end
else
  return redis.error_reply('ERR unknown correction kind ' .. kind)
end

local m = redis.call('HMGET', KEYS[4], 'packed', 'cost_pusd')
local net = tonumber(m[2] or '0')
if m[1] then
  local v = {struct.unpack(F, m[1])}
  net = net + v[15] * B + v[16]
end
if net < amount then
  return redis.error_reply('EXCEEDS the correction (' .. string.format('%.0f', amount) ..
    ' pUSD) is more than the month\'s net cost (' .. string.format('%.0f', net) .. ' pUSD)')
end

local sid = redis.call('XADD', KEYS[1], '*', 'kind', kind, 'id', id, 'plan', ARGV[6],
  'at_ms', at, 'cost_pusd', string.format('%.0f', -amount), 'reason', ARGV[5], 'ref', ref)
if kind == 'void' then
  redis.call('HSET', KEYS[2], '!void:' .. id, sid)
end
for k = 3, 4 do
  redis.call('HINCRBY', KEYS[k], 'cost_pusd', string.format('%.0f', -amount))
  local updated = tonumber(redis.call('HGET', KEYS[k], 'updated_ms') or '0')
  if tonumber(at) > updated then
    redis.call('HSET', KEYS[k], 'updated_ms', at)
  end
end
return sid
