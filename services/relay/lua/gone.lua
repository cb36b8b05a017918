-- A connection closed. ARGV[5] = its connection id. If it still stood for its side, nothing is
-- forwarded to its process until the side says hello again (the log keeps everything), and the
-- side is absent from now: the other side is told after --peer-away-ms, and the chat ends as
-- lost after --peer-grace-ms (presence.lua).
local f = redis.call('HMGET', RKEY, 'conn_' .. ROLE, 'node_' .. ROLE)
if f[1] == ARGV[5] then
  local side = SESSION .. '|' .. ROLE
  redis.call('HSET', RKEY, 'node_' .. ROLE, '', 'conn_' .. ROLE, '')
  if f[2] and f[2] ~= '' then redis.call('SREM', K.relay_node_sides(f[2]), side) end
  if redis.call('HGET', K.session(SESSION), 'state') == 'active' then
    redis.call('ZADD', K.relay_absent, 'NX', NOW, side)
  end
end
return { 'ok' }
