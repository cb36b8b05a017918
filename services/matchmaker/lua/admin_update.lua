-- An admin edits or revokes a listener. ARGV[8] = listener id, [9] name ('' unchanged),
-- [10] trained topics csv ('' unchanged), [11] trained languages csv ('' unchanged),
-- [12] max-chats cap (0 unchanged), [13] '1' to revoke, [14] chats per day, [15] a break after
-- this many chats, [16] after this many minutes on duty, [17] the break's minutes ('' unchanged,
-- 0 none; lib.lua, "wellbeing"). Keeps the availability indexes true.
-- A revoke bites at once: the token stops working, every open offer of theirs is withdrawn (its
-- seeker back in its place), every chat of theirs ends as for a lost listener (the seeker back
-- at the front of the line, told kindly; the relays close both sides), and every matchmaker
-- closes their connections (the 'revoked' event; a process that misses it finds out at its
-- next session check, services/matchmaker/tickers.cpp).
local lid = ARGV[8]
local key = K.listener(lid)
if redis.call('EXISTS', key) == 0 then return err('NOT_FOUND', 'There is no listener ' .. lid .. '.') end
-- (refresh_listener below leaves the pairs recorded in `ix`, so old lists need no care here)
if ARGV[9] ~= '' then redis.call('HSET', key, 'name', ARGV[9]) end
if ARGV[10] ~= '' then redis.call('HSET', key, 'topics', ARGV[10], 'atopics', '') end
if ARGV[11] ~= '' then redis.call('HSET', key, 'langs', ARGV[11], 'alangs', '') end
local cap = tonumber(ARGV[12])
if cap > 0 then
  redis.call('HSET', key, 'cap', cap)
  if num(redis.call('HGET', key, 'max')) > cap or num(redis.call('HGET', key, 'max')) == 0 then
    redis.call('HSET', key, 'max', cap)
  end
end
for i, f in ipairs({ 'day_cap', 'break_chats', 'break_after_min', 'break_min' }) do
  if ARGV[13 + i] and ARGV[13 + i] ~= '' then redis.call('HSET', key, f, tonumber(ARGV[13 + i])) end
end
if ARGV[13] == '1' then revoke_listener(lid) end
refresh_listener(lid)
-- the matchmakers' sweep offers them their next seeker: warmline-admin does not know the
-- deployment's offer timeout, so it makes no offer itself
redis.call('ZADD', K.due_match, NOW, 'l:' .. lid)
return { 'ok' }
