-- Typing indicators and read receipts: passed to the other side's relay process, never stored.
-- ARGV[5] = 'typing' | 'read', [6] its value. Returns {'ok'}.
local f = redis.call('HMGET', RKEY, 'node_' .. PEER, 'pub_' .. ROLE)
if not f[2] then return err('NOT_FOUND', ENDED) end
to_node(f[1], ARGV[5], SESSION, PEER, ARGV[6])
return { 'ok' }
