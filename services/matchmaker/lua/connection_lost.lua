-- A connection closed. ARGV[6] = 'seeker' | 'listener', [7] id, [8] node id of the process
-- that held it. A seeker keeps its place for the grace period; a listener is set away (open
-- offers run to their deadline, chats continue on the relay).
local kind, id, node = ARGV[6], ARGV[7], ARGV[8]
if kind == 'seeker' then
  if redis.call('HGET', seeker_key(id), 'node') ~= node then return { 'ok' } end
  redis.call('HSET', seeker_key(id), 'conn', 0)
  redis.call('SREM', 'wl:node:' .. node .. ':seekers', id)
  redis.call('ZADD', 'wl:gone', NOW + GRACE, id)
else
  if redis.call('HGET', listener_key(id), 'node') ~= node then return { 'ok' } end
  redis.call('HSET', listener_key(id), 'conn', 0, 'status', 'away')
  redis.call('SREM', 'wl:node:' .. node .. ':listeners', id)
  refresh_listener(id)
end
return { 'ok' }
