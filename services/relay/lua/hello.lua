-- A participant (re)connects. ARGV[5] = this relay's node id, [6] connection id, [7] its public
-- key. Records where this side is now, tells the other side its key the first time, and moves
-- any older connection of this side out of the way.
-- Returns {'ok', sent_through, peer public key or ''}.
if redis.call('HGET', K.session(SESSION), 'state') ~= 'active' then return err('NOT_FOUND', ENDED) end
local f = redis.call('HMGET', RKEY, 'pub_' .. ROLE, 'node_' .. ROLE, 'conn_' .. ROLE, 'sent_' .. ROLE,
  'pub_' .. PEER, 'node_' .. PEER)
local key = ARGV[7]
if f[1] and f[1] ~= key then
  return err('WRONG_STATE', 'You joined this chat with another key. Use the key pair you started it with.')
end
if f[3] and f[3] ~= '' and f[3] ~= ARGV[6] then relay_event(f[2], SESSION, ROLE, PB.bytes(15, f[3])) end
redis.call('HSET', RKEY, 'pub_' .. ROLE, key, 'node_' .. ROLE, ARGV[5], 'conn_' .. ROLE, ARGV[6])
redis.call('EXPIRE', RKEY, TTL)
redis.call('ZADD', K.relay_active, 'NX', NOW, SESSION)
if not f[1] then relay_event(f[6], SESSION, PEER, PB.bytes(11, key)) end
return { 'ok', f[4] or '0', f[5] or '' }
