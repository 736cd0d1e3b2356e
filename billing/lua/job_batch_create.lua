-- Create an async batch's hash unless it exists.
-- KEYS[1] batch:{<client>}:<batchId> (hash)
-- ARGV[1] TTL s   ARGV[2..] fields (name, value)
-- Returns 1 created, 0 the batch exists (nothing changed).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
