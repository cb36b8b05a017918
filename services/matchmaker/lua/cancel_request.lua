-- A seeker withdraws its request (queued or being offered). ARGV[8] = seeker id.
local sid = ARGV[8]
local s = redis.call('HMGET', K.seeker(sid), 'state', 'offer')
if s[1] == 'offered' then
  local _, lid = close_offer(s[2], 'withdrawn', false)
  if lid then match_listener(lid) end
elseif s[1] ~= 'queued' then
  return err('WRONG_STATE', 'There is no open request to cancel.')
end
unqueue(sid)
redis.call('HSET', K.seeker(sid), 'state', 'idle', 'offer', '')
redis.call('DEL', K.cooldown(sid))
local t = redis.call('HMGET', K.seeker(sid), 'topic', 'lang')
redis.call('HINCRBY', K.stats(t[1], t[2]), 'cancelled', 1)
waiting_remove(sid, t[1], t[2])
touch_seeker(sid)
return { 'ok' }
