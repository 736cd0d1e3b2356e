-- Queue one webhook delivery unless its idempotency key was used already.
-- KEYS[1] outbox (stream)   KEYS[2] {outbox}:dedup:<client>:<sha> (same slot)
-- ARGV[1] dedup TTL (s)   ARGV[2] delivery ID   ARGV[3] the delivery (JSON text)
-- Returns the delivery ID: the new one, or the one queued earlier under the same key.
local existing = redis.call('GET', KEYS[2])
if existing then
  return existing
end
-- XADD first: if it fails (a script is not rolled back) the key stays unused for a retry.
redis.call('XADD', KEYS[1], '*', 'd', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[1])
return ARGV[2]
