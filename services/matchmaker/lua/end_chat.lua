-- Either side ends a chat. ARGV[6] = role ('seeker' | 'listener'), [7] that side's id,
-- [8] session id. Frees the listener's slot and matches at once.
local role, who, session = ARGV[6], ARGV[7], ARGV[8]
local c = redis.call('HMGET', 'wl:session:' .. session, 'seeker', 'listener', 'state')
if not c[1] or c[3] ~= 'active' then return err('NOT_FOUND', 'That chat is not open.') end
if (role == 'seeker' and c[1] ~= who) or (role == 'listener' and c[2] ~= who) then
  return err('PERMISSION_DENIED', 'That chat is not yours to end.')
end
local sid, lid = c[1], c[2]
redis.call('HSET', 'wl:session:' .. session, 'state', 'ended', 'ended', NOW, 'ended_by', role)
redis.call('SREM', 'wl:sessions', session)
redis.call('SREM', listener_key(lid) .. ':chats', session)
if redis.call('HINCRBY', listener_key(lid), 'chats', -1) < 0 then redis.call('HSET', listener_key(lid), 'chats', 0) end
if redis.call('HGET', seeker_key(sid), 'session') == session then
  redis.call('HSET', seeker_key(sid), 'state', 'ended')
  touch_seeker(sid)
end
refresh_listener(lid)
publish('ended', session, sid, lid, role)
match_listener(lid)
return { 'ok', sid, lid }
