-- A listener toggles available/away. ARGV[8] = listener id, ARGV[9] = '1' available, '0' away.
local lid, available = ARGV[8], ARGV[9] == '1'
local refusal = listener_refusal(lid)
if refusal then return refusal end
local status = redis.call('HGET', K.listener(lid), 'status')
if available then
  if status ~= 'available' then redis.call('HSET', K.listener(lid), 'idle_since', NOW) end
  redis.call('HSET', K.listener(lid), 'status', 'available', 'away_why', '')
else
  redis.call('HSET', K.listener(lid), 'status', 'away', 'away_why', '')
end
refresh_listener(lid)
if available then match_listener(lid) end
return { 'ok' }
