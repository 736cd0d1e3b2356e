-- Read what a client spent this month and its budget override, in one round trip.
-- KEYS[1] usage:{c}:<month>   KEYS[2] budget:{c}
-- Returns {plain cost_pusd, packed field, override}, each false if absent: the spend is the
-- sum of the first two (billing.totals.spent_pusd); override "none" means unlimited.
local spent = redis.call('HMGET', KEYS[1], 'cost_pusd', 'packed')
local override = redis.call('HGET', KEYS[2], 'monthly')
return {spent[1], spent[2], override}
