-- After its Redis connections come back, a relay process renews its lease and says which chat
-- sides it holds right now, before its presence sweep may act again. ARGV[5] = node id,
-- [6] lease ms, then one "<session>|<s|l>|<connection id>" per live side. Sides it holds are
-- here again (unless a newer connection elsewhere took the side over meanwhile); sides recorded
-- for it whose connections closed while Redis could not be told are absent from now.
local node, lease = ARGV[5], tonumber(ARGV[6])
redis.call('ZADD', K.relay_nodes, fmt(redis_ms() + lease), node)
local live = {}
for i = 7, #ARGV do
  local session, role, conn = string.match(ARGV[i], '^(.*)|([sl])|(.*)$')
  if session then
    local side = session .. '|' .. role
    live[side] = true
    local held = redis.call('HGET', K.relay(session), 'conn_' .. role)
    if redis.call('HGET', K.session(session), 'state') == 'active' and (not held or held == '' or held == conn) then
      redis.call('HSET', K.relay(session), 'node_' .. role, node, 'conn_' .. role, conn)
      redis.call('SADD', K.relay_node_sides(node), side)
      redis.call('ZREM', K.relay_absent, side)
      if redis.call('ZREM', K.relay_away, side) == 1 then
        local peer = role == 's' and 'l' or 's'
        relay_event(redis.call('HGET', K.relay(session), 'node_' .. peer), session, peer, PB.msg(16, PB.bool(1, true)))
      end
    end
  end
end
for _, side in ipairs(redis.call('SMEMBERS', K.relay_node_sides(node))) do
  if not live[side] then
    local session, role = string.match(side, '^(.*)|([sl])$')
    redis.call('SREM', K.relay_node_sides(node), side)
    if session and redis.call('HGET', K.relay(session), 'node_' .. role) == node then
      redis.call('HSET', K.relay(session), 'node_' .. role, '', 'conn_' .. role, '')
      if redis.call('HGET', K.session(session), 'state') == 'active' then
        redis.call('ZADD', K.relay_absent, 'NX', NOW, side)
      end
    end
  end
end
return { 'ok' }
