-- Move deliveries whose next attempt is due from the retry set back into the outbox stream.
-- KEYS[1] {outbox}:retry (zset, score = due Unix ms)   KEYS[2] outbox (stream)
-- ARGV[1] now (Unix ms)   ARGV[2] most to move
-- Returns how many moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'd', member)
  redis.call('ZREM', KEYS[1], member)
end
return #due
