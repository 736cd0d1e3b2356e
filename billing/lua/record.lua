-- Record one finished execution, atomically and at most once per execution ID.
-- KEYS[1] exec:{c}:<id>   KEYS[2] usage:{c}:<day>   KEYS[3] usage:{c}:<month>   KEYS[4] ledger:{c}
-- ARGV[1] idempotency TTL (s)   ARGV[2] stored payload (body hash "\n" response)
-- ARGV[3] ledger MAXLEN (~)     ARGV[4] updated_ms   ARGV[5] execution ID   ARGV[6] plan
-- ARGV[7] increments, space-separated (one argument: cheaper to send than eight):
--         executions errors fuel billed_cpu_ns cpu_us wall_us mem_bytes cost_pusd
-- Returns {1} when recorded, {0, stored payload} when the ID was already claimed.
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[1]) then
  return {0, redis.call('GET', KEYS[1])}
end
local names = {'executions', 'errors', 'fuel', 'billed_cpu_ns', 'cpu_us', 'wall_us',
               'mem_bytes', 'cost_pusd'}
local updated = tonumber(ARGV[4])
local entry = {'id', ARGV[5], 'plan', ARGV[6], 'at_ms', ARGV[4]}
local i = 0
for inc in string.gmatch(ARGV[7], '%S+') do
  i = i + 1
  local name = names[i]
  entry[#entry + 1] = name
  entry[#entry + 1] = inc
  if inc ~= '0' then
    redis.call('HINCRBY', KEYS[2], name, inc)
    redis.call('HINCRBY', KEYS[3], name, inc)
  end
end
for k = 2, 3 do
  local prev = tonumber(redis.call('HGET', KEYS[k], 'updated_ms') or '0')
  if updated > prev then
    redis.call('HSET', KEYS[k], 'updated_ms', ARGV[4])
  end
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', unpack(entry))
return {1}
