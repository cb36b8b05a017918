-- After its Redis connections come back, a relay process says which sides of this bucket's
-- chats it holds right now, before its presence sweep may act again (its lease is renewed by
-- lease.lua first). ARGV[5] = node id, then one "<session>|<s|l>|<connection id>" per live side
-- of this bucket. Sides it holds are here again (unless a newer connection elsewhere took the
-- side over meanwhile); sides recorded for it whose connections closed while Redis could not be
-- told are absent from now. Returns {'ok'}.
local node = ARGV[5]
local live = {}
for i = 6, #ARGV do
  local session, role, conn = string.match(ARGV[i], '^(.*)|([sl])|(.*)$')
  if session then
    local side = session .. '|' .. role
    local rkey = K.relay(BUCKET, session)
    live[side] = true
    local held = redis.call('HGET', rkey, 'conn_' .. role)
    if redis.call('EXISTS', rkey) == 1 and (not held or held == '' or held == conn) then
      redis.call('HSET', rkey, 'node_' .. role, node, 'conn_' .. role, conn)
      redis.call('HSET', SIDES, side, node)
      redis.call('ZREM', ABSENT, side)
      if redis.call('ZREM', AWAY, side) == 1 then
        local peer = role == 's' and 'l' or 's'
        relay_event(redis.call('HGET', rkey, 'node_' .. peer), session, peer, PB.msg(16, PB.bool(1, true)))
      end
    end
  end
end
local held = redis.call('HGETALL', SIDES)
for i = 1, #held, 2 do
  local side = held[i]
  if held[i + 1] == node and not live[side] then let_go(side, node) end
end
return { 'ok' }
