-- A connection closed. ARGV[6] = 'seeker' | 'listener', [7] id, [8] node id of the process
-- that held it. A seeker keeps its place for the grace period; a listener is set away (open
-- offers run to their deadline, chats continue on the relay).
local kind, id, node = ARGV[6], ARGV[7], ARGV[8]
if kind == 'seeker' then
  if redis.call('HGET', K.seeker(id), 'node') ~= node then return { 'ok' } end
  redis.call('HSET', K.seeker(id), 'conn', 0)
  redis.call('SREM', K.node_seekers(node), id)
  redis.call('ZADD', K.gone, NOW + GRACE, id)
else
  if redis.call('HGET', K.listener(id), 'node') ~= node then return { 'ok' } end
  redis.call('HSET', K.listener(id), 'conn', 0, 'status', 'away')
  redis.call('SREM', K.node_listeners(node), id)
  refresh_listener(id)
end
return { 'ok' }
