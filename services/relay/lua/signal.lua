-- Typing indicators and read receipts: passed to the other side's relay process, never stored.
-- ARGV[5] = 'typing' | 'read', [6] its value ('1'/'0' for typing, a seq for read). Returns {'ok'}.
local f = redis.call('HMGET', RKEY, 'node_' .. PEER, 'pub_' .. ROLE)
if not f[2] then return err('NOT_FOUND', ENDED) end
if ARGV[5] == 'typing' then relay_event(f[1], SESSION, PEER, PB.bool(12, ARGV[6] == '1'))
else relay_event(f[1], SESSION, PEER, PB.uint(13, ARGV[6])) end
return { 'ok' }
