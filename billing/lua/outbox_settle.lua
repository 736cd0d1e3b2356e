-- Finish one attempt of a delivery read from the outbox by the consumer group.
-- KEYS[1] outbox   KEYS[2] {outbox}:retry (zset)   KEYS[3] {outbox}:deadletter (stream)
-- ARGV[1] group   ARGV[2] stream entry ID   ARGV[3] 'done' | 'retry' | 'dead'
-- ARGV[4] due Unix ms (retry)   ARGV[5] the delivery as it continues (JSON text; retry, dead)
-- ARGV[6] oldest dead letter to keep, Unix ms   ARGV[7] about how many to keep at most
-- (both applied when one is added: exact by age, approximate by count)
-- Returns 1, or 0 when the entry was already settled (by a consumer that claimed it after
-- this one stalled): then nothing changes, so a delivery is never scheduled twice.
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[3] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
elseif ARGV[3] == 'dead' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'd', ARGV[5])
  redis.call('XTRIM', KEYS[3], 'MINID', ARGV[6])
end
return 1
