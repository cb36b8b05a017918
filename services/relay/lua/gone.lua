-- A connection closed. ARGV[5] = its connection id. If it still stood for its side, nothing is
-- forwarded to its process until the side says hello again (the log keeps everything), and the
-- side is absent from now: the other side is told after --peer-away-ms, and the chat ends as
-- lost after --peer-grace-ms (presence.lua). Returns {'ok'}.
local f = redis.call('HMGET', RKEY, 'conn_' .. ROLE)
if f[1] and f[1] == ARGV[5] then
  local side = SESSION .. '|' .. ROLE
  redis.call('HSET', RKEY, 'node_' .. ROLE, '', 'conn_' .. ROLE, '')
  redis.call('HDEL', SIDES, side)
  redis.call('ZADD', ABSENT, 'NX', NOW, side)
end
return { 'ok' }
