-- Record one finished execution, atomically and at most once per execution ID.
-- KEYS[1] exec:{c}:<id>   KEYS[2] usage:{c}:<day>   KEYS[3] usage:{c}:<month>
-- KEYS[4] ledger:{c}      KEYS[5] ledgerid:{c} (execution ID -> ledger entry ID)
-- ARGV[1] (one argument: each one more costs the client about a microsecond to send):
--   struct '>I4I4' .. 9 x 'I8' .. 'I1I1I2' (84 bytes): idempotency TTL (s), ledger MAXLEN
--   (~; 0 = no cap, the maintenance job trims by time), the increments executions errors
--   fuel billed_cpu_ns cpu_us wall_us mem_bytes cost_pusd and updated_ms (each < 2**53 so
--   that the ledger gets it exactly; read here as two uint32 halves), the lengths of the
--   execution ID, of the plan and of the receipt facts; then the execution ID, the plan, the
--   receipt facts (billing/receipt_facts.py, passed through as the ledger field 'r') and the
--   payload to store (body hash "\n" response).
-- Usage hashes keep their counters in the field 'packed' (see billing/totals.py): uint64 high
-- and uint32 low limb per counter, so sums stay exact beyond 2**53 with one HGET and one HSET
-- per hash instead of one HINCRBY per counter.
-- Every read (and every check that can fail) comes before the first write, so an error
-- leaves nothing half-done. Returns 1 when recorded, the stored payload when the ID was
-- already claimed (then nothing changes).
local stored = redis.call('GET', KEYS[1])
if stored then
  return stored
end
local B = 4294967296
local F = '>I8I4I8I4I8I4I8I4I8I4I8I4I8I4I8I4I8I4'
local arg = ARGV[1]
-- each uint64 increment is read as its two uint32 halves (high, low)
local ttl, maxlen, eh, el, rh, rl, fh, fl, bh, bl, ch, cl, wh, wl, mh, ml, ph, pl, uh, ul,
  nid, nplan, nfacts = struct.unpack('>I4I4I4I4I4I4I4I4I4I4I4I4I4I4I4I4I4I4I4I4I1I1I2', arg)
local id = string.sub(arg, 85, 84 + nid)
local plan = string.sub(arg, 85 + nid, 84 + nid + nplan)
local facts = string.sub(arg, 85 + nid + nplan, 84 + nid + nplan + nfacts)
-- 108 zero bytes as a literal: a constant of the loaded script, not built on every call
local ZERO = '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0'
-- The hash's packed counters plus this execution's (limb sums stay below 2**33, exact),
-- inline rather than in a function: no closure to build on every call.
local packed = {}
for k = 2, 3 do
  local e1, e0, r1, r0, f1, f0, b1, b0, c1, c0, w1, w0, m1, m0, p1, p0, u1, u0 =
    struct.unpack(F, redis.call('HGET', KEYS[k], 'packed') or ZERO)
  e1, e0 = e1 + eh, e0 + el
  if e0 >= B then e0 = e0 - B; e1 = e1 + 1 end
  r1, r0 = r1 + rh, r0 + rl
  if r0 >= B then r0 = r0 - B; r1 = r1 + 1 end
  f1, f0 = f1 + fh, f0 + fl
  if f0 >= B then f0 = f0 - B; f1 = f1 + 1 end
  b1, b0 = b1 + bh, b0 + bl
  if b0 >= B then b0 = b0 - B; b1 = b1 + 1 end
  c1, c0 = c1 + ch, c0 + cl
  if c0 >= B then c0 = c0 - B; c1 = c1 + 1 end
  w1, w0 = w1 + wh, w0 + wl
  if w0 >= B then w0 = w0 - B; w1 = w1 + 1 end
  m1, m0 = m1 + mh, m0 + ml
  if m0 >= B then m0 = m0 - B; m1 = m1 + 1 end
  p1, p0 = p1 + ph, p0 + pl
  if p0 >= B then p0 = p0 - B; p1 = p1 + 1 end
  if uh > u1 or (uh == u1 and ul > u0) then -- updated_ms: the maximum
    u1, u0 = uh, ul
  end
  packed[k] = struct.pack(F, e1, e0, r1, r0, f1, f0, b1, b0, c1, c0, w1, w0, m1, m0, p1, p0,
    u1, u0)
end

-- Numbers below 2**53 reach Redis as plain integers ("%.17g" in 6.2, ll2string in 7.x).
-- The ledger is trimmed by time in the maintenance job (XTRIM MINID); MAXLEN ~ only as an
-- optional safety cap, and only once the stream is over it (XLEN is O(1), while asking XADD
-- to trim on every append costs several microseconds even when there is nothing to trim).
local ms, ex, er, fu = uh * B + ul, eh * B + el, rh * B + rl, fh * B + fl
local bi, cp, wa, me, co = bh * B + bl, ch * B + cl, wh * B + wl, mh * B + ml, ph * B + pl
local sid
if maxlen > 0 and redis.call('XLEN', KEYS[4]) >= maxlen then
  redis.call('XTRIM', KEYS[4], 'MAXLEN', '~', maxlen)
end
if nfacts > 0 then
  sid = redis.call('XADD', KEYS[4], '*', 'id', id, 'plan', plan, 'at_ms', ms, 'executions', ex,
    'errors', er, 'fuel', fu, 'billed_cpu_ns', bi, 'cpu_us', cp, 'wall_us', wa,
    'mem_bytes', me, 'cost_pusd', co, 'r', facts)
else -- a record without receipt facts (tools, tests): the entry has no 'r' field
  sid = redis.call('XADD', KEYS[4], '*', 'id', id, 'plan', plan, 'at_ms', ms, 'executions', ex,
    'errors', er, 'fuel', fu, 'billed_cpu_ns', bi, 'cpu_us', cp, 'wall_us', wa,
    'mem_bytes', me, 'cost_pusd', co)
end
redis.call('HSET', KEYS[5], id, sid)
redis.call('SET', KEYS[1], string.sub(arg, 85 + nid + nplan + nfacts), 'EX', ttl)
redis.call('HSET', KEYS[2], 'packed', packed[2])
redis.call('HSET', KEYS[3], 'packed', packed[3])
return 1
