-- Trim a ledger by time, with its execution-ID index: at most ARGV[2] entries per call.
-- KEYS[1] ledger:{c}   KEYS[2] ledgerid:{c}
-- ARGV[1] cutoff in Unix ms (entries whose stream ID is older go)   ARGV[2] batch size
-- For each entry removed, its index field goes too if it still points at that entry (an
-- execution ID reused after its 24 h claim expired points at the newer entry), and so does
-- the '!void:<id>' marker a void entry left. Returns the number of entries removed; a call
-- that removes fewer than the batch size has finished.
local cutoff = tonumber(ARGV[1])
local batch = tonumber(ARGV[2])
if cutoff < 1 then
  return 0
end
local found = redis.call('XRANGE', KEYS[1], '-', string.format('%.0f', cutoff - 1), 'COUNT', batch)
if #found == 0 then
  return 0
end
for _, item in ipairs(found) do
  local sid, fields = item[1], item[2]
  local id, kind = nil, 'execution'
  for i = 1, #fields, 2 do
    if fields[i] == 'id' then
      id = fields[i + 1]
    elseif fields[i] == 'kind' then
      kind = fields[i + 1]
    end
  end
  if id then
    local field = id
    if kind == 'void' then
      field = '!void:' .. id
    end
    if kind == 'execution' or kind == 'void' then
      if redis.call('HGET', KEYS[2], field) == sid then
        redis.call('HDEL', KEYS[2], field)
      end
    end
  end
end
local last = found[#found][1]
local dash = string.find(last, '-', 1, true)
local next_id = string.sub(last, 1, dash) .. string.format('%.0f', tonumber(string.sub(last, dash + 1)) + 1)
redis.call('XTRIM', KEYS[1], 'MINID', next_id)
return #found
