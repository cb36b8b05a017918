-- A participant (re)connects (the control Redis said the chat is open). ARGV[5] = this relay's
-- node id, [6] connection id, [7] its public key, [8] since when the other side has been
-- expected (the chat's start while no side has said hello yet, else 0). Records where this side
-- is now, tells the other side its key the first time (and that it is back, if it had been told
-- this side was away), and moves any older connection of this side out of the way. A device
-- without the chat's keys (a new browser: the key differs) cannot continue it: refused while
-- the side's own device is still connected, otherwise {'keys_lost'}: the relay ends the chat as
-- lost (docs/architecture.md, "A listener on a new device").
-- Returns {'ok', sent_through, peer public key or '', since when the other side is away or 0,
-- how far the other side has received this side's messages}.
local node, conn, key = ARGV[5], ARGV[6], ARGV[7]
local f = redis.call('HMGET', RKEY, 'pub_' .. ROLE, 'node_' .. ROLE, 'conn_' .. ROLE, 'sent_' .. ROLE,
  'pub_' .. PEER, 'node_' .. PEER, 'recv_' .. PEER)
local side = SESSION .. '|' .. ROLE
if f[1] and f[1] ~= key then
  if f[3] and f[3] ~= '' then
    return err('WRONG_STATE', 'This chat is open on another device, with other keys, so it cannot continue here.')
  end
  return { 'keys_lost' }
end
if f[3] and f[3] ~= '' and f[3] ~= conn then relay_event(f[2], SESSION, ROLE, PB.bytes(15, f[3])) end
redis.call('HSET', RKEY, 'pub_' .. ROLE, key, 'node_' .. ROLE, node, 'conn_' .. ROLE, conn)
redis.call('EXPIRE', RKEY, TTL)
redis.call('ZADD', ACTIVE, 'NX', NOW, SESSION)
redis.call('HSET', SIDES, side, node)
if not f[1] then relay_event(f[6], SESSION, PEER, PB.bytes(11, key)) end
redis.call('ZREM', ABSENT, side)
if redis.call('ZREM', AWAY, side) == 1 then relay_event(f[6], SESSION, PEER, PB.msg(16, PB.bool(1, true))) end
-- the other side has never come: absent since the chat's start (the presence sweep tells this
-- side after --peer-away-ms and ends the chat after --peer-grace-ms)
if not f[5] and tonumber(ARGV[8]) > 0 then redis.call('ZADD', ABSENT, 'NX', ARGV[8], SESSION .. '|' .. PEER) end
local peer_away = redis.call('ZSCORE', AWAY, SESSION .. '|' .. PEER)
return { 'ok', f[4] or '0', f[5] or '', peer_away or '0', f[7] or '0' }
