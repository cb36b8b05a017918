-- A participant (re)connects. ARGV[5] = this relay's node id, [6] connection id, [7] its public
-- key, [8] this relay's lease ms (it gets one now if it has none yet, so that if it dies before
-- its first presence sweep its sides are still let go). Records where this side is now, tells the other side its key the first time (and that
-- it is back, if it had been told this side was away), and moves any older connection of this
-- side out of the way. A device without the chat's keys (a new browser: the key differs) cannot
-- continue it: refused while the side's own device is still connected, otherwise the chat ends
-- as lost at once (docs/architecture.md, "A listener on a new device").
-- Returns {'ok', sent_through, peer public key or '', since when the other side is away or 0,
-- how far the other side has received this side's messages}.
if redis.call('HGET', K.session(SESSION), 'state') ~= 'active' then return err('NOT_FOUND', ENDED) end
local node, conn, key = ARGV[5], ARGV[6], ARGV[7]
local f = redis.call('HMGET', RKEY, 'pub_' .. ROLE, 'node_' .. ROLE, 'conn_' .. ROLE, 'sent_' .. ROLE,
  'pub_' .. PEER, 'node_' .. PEER, 'recv_' .. PEER)
local side = SESSION .. '|' .. ROLE
if f[1] and f[1] ~= key then
  if f[3] and f[3] ~= '' then
    return err('WRONG_STATE', 'This chat is open on another device, with other keys, so it cannot continue here.')
  end
  -- a seeker here without the keys is still here: back to the front of the line
  finish_chat(SESSION, 'peer_lost', ROLE, ROLE == 's')
  if ROLE == 'l' then
    return err('NOT_FOUND', 'This chat was open on another device, which is gone, and its keys went with it, so ' ..
      'it has ended here. The person is back at the front of the line and will be matched again quickly.')
  end
  return err('NOT_FOUND', "This chat's keys are not in this browser any more, so it has ended. You are back at " ..
    'the front of the line, and we are finding someone for you now.')
end
if f[3] and f[3] ~= '' and f[3] ~= conn then relay_event(f[2], SESSION, ROLE, PB.bytes(15, f[3])) end
if f[2] and f[2] ~= '' and f[2] ~= node then redis.call('SREM', K.relay_node_sides(f[2]), side) end
redis.call('HSET', RKEY, 'pub_' .. ROLE, key, 'node_' .. ROLE, node, 'conn_' .. ROLE, conn)
redis.call('EXPIRE', RKEY, TTL)
redis.call('ZADD', K.relay_active, 'NX', NOW, SESSION)
redis.call('SADD', K.relay_node_sides(node), side)
redis.call('ZADD', K.relay_nodes, 'NX', fmt(redis_ms() + tonumber(ARGV[8])), node)
if not f[1] then relay_event(f[6], SESSION, PEER, PB.bytes(11, key)) end
redis.call('ZREM', K.relay_absent, side)
if redis.call('ZREM', K.relay_away, side) == 1 then relay_event(f[6], SESSION, PEER, PB.msg(16, PB.bool(1, true))) end
local peer_away = redis.call('ZSCORE', K.relay_away, SESSION .. '|' .. PEER)
return { 'ok', f[4] or '0', f[5] or '', peer_away or '0', f[7] or '0' }
