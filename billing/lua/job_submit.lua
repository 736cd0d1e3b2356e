-- Write a submitted job's hash and add it to its client's unfinished jobs.
-- KEYS[1] job:{<client>}:<executionId> (hash)   KEYS[2] jobs:{<client>} (zset)
-- ARGV[1] body hash   ARGV[2] stream entry ID   ARGV[3] entry ms   ARGV[4] window ms
-- ARGV[5] TTL s   ARGV[6] submitted ms   ARGV[7] execution ID   ARGV[8..] fields (name, value)
-- Returns {1, ''} written; {0, existing body hash} the ID exists; {-1, ''} the entry is
-- older than the window by this node's clock (nothing written).
local existing = redis.call('HGET', KEYS[1], 'hash')
if existing then return {0, existing} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now - tonumber(ARGV[3]) > tonumber(ARGV[4]) then return {-1, ''} end
redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'entry', ARGV[2], unpack(ARGV, 8))
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return {1, ''}
