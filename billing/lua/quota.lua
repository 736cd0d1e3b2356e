-- Read what a client spent this month and its budget override, in one round trip.
-- KEYS[1] usage:{c}:<month>   KEYS[2] budget:{c}
-- Returns {spent pico-USD, override} (override: false if none, "none" = unlimited).
local spent = redis.call('HGET', KEYS[1], 'cost_pusd') or '0'
local override = redis.call('HGET', KEYS[2], 'monthly')
return {spent, override}
