-- Send a dead-lettered delivery back to the outbox for a fresh series of attempts.
-- KEYS[1] {outbox}:deadletter   KEYS[2] outbox
-- ARGV[1] dead-letter stream entry ID   ARGV[2] the delivery, attempts reset (JSON text)
-- Returns 1, or 0 if that dead letter is gone (retried already).
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], '*', 'd', ARGV[2])
return 1
