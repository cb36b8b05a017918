-- Count one use of a per-address quota. ARGV[8] = what ('seekers', 'requests', 'crisis'), [9] the
-- address bucket's keyed hash (limits.hpp), [10] the window (ms; fixed windows of the Unix
-- clock), [11] the limit per window. A use beyond the limit is not counted, so the count is the
-- uses let through. Returns {'ok', allowed (1/0), uses in this window (this one included)}.
local what, hash, window, limit = ARGV[8], ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
local key = K.address_uses(what, hash, fmt(math.floor(NOW / window)))
local used = num(redis.call('GET', key))
if used >= limit then return { 'ok', 0, used } end
used = redis.call('INCR', key)
if used == 1 then redis.call('PEXPIRE', key, fmt(window + 1000)) end
return { 'ok', 1, used }
