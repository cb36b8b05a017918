-- A listener narrows what it takes now. ARGV[8] = listener id, [9] topics csv ('' = all trained),
-- [10] languages csv ('' = all trained), [11] max chats (0 = unchanged).
local lid = ARGV[8]
local refusal = listener_refusal(lid)
if refusal then return refusal end
local f = redis.call('HMGET', K.listener(lid), 'topics', 'langs', 'cap')
local function subset(wanted, trained, what)
  local ok = {}
  for _, v in ipairs(split(trained)) do ok[v] = true end
  for _, v in ipairs(split(wanted)) do
    if not ok[v] then return 'You are not trained for the ' .. what .. ' "' .. v .. '".' end
  end
  return nil
end
local bad = subset(ARGV[9], f[1], 'topic') or subset(ARGV[10], f[2], 'language')
if bad then return err('PERMISSION_DENIED', bad) end
local max = tonumber(ARGV[11])
if max > num(f[3]) then
  return err('PERMISSION_DENIED', 'You can take at most ' .. f[3] .. ' chats at once; an admin can raise that.')
end
redis.call('HSET', K.listener(lid), 'atopics', ARGV[9], 'alangs', ARGV[10])
if max > 0 then redis.call('HSET', K.listener(lid), 'max', max) end
refresh_listener(lid)
match_listener(lid)
return { 'ok' }
