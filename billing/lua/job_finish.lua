-- Record a job's final response once, and count it in its batch.
-- KEYS[1] job:{<client>}:<executionId> (hash)   KEYS[2] jobs:{<client>} (zset)
-- KEYS[3] batch:{<client>}:<batchId> (hash; the job hash again without a batch)
-- ARGV[1] status   ARGV[2] response   ARGV[3] finished ms   ARGV[4] execution ID
-- ARGV[5] '1' if the job is in a batch
-- Returns -1 if the job was already finished, else the batch's items left (0 without one).
if redis.call('HEXISTS', KEYS[1], 'finished') == 1 then return -1 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'response', ARGV[2], 'finished', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
if ARGV[5] == '1' then return redis.call('HINCRBY', KEYS[3], 'left', -1) end
return 0
