-- The caller's messages after what is stored, up to ARGV[5], are gone from its client too (Redis
-- lost them, and the client let them go or lost them): record them as lost, as one log entry
-- at id 0-<through> whose field g is the first lost seq, tell the other side, and take
-- through + 1 next. ARGV[6] = most entries kept per direction, [7] most messages one side may
-- be ahead of the other's receipts (a skip is never longer), [8] the connection's id (a
-- connection this side was taken over from may not skip). Returns {'ok', first lost or 0}.
local f = redis.call('HMGET', RKEY, 'sent_' .. ROLE, 'node_' .. PEER, 'pub_' .. ROLE, 'conn_' .. ROLE)
if not f[3] then return err('NOT_FOUND', ENDED) end
if taken_over(f[4], ARGV[8]) then return err('PERMISSION_DENIED', TAKEN_OVER) end
local through, sent = tonumber(ARGV[5]), tonumber(f[1]) or 0
if through <= sent then return { 'ok', '0' } end
if through - sent > tonumber(ARGV[7]) then
  return err('INVALID_ARGUMENT', 'A skip can pass over at most ' .. ARGV[7] .. ' messages; the relay has up to ' ..
    sent .. '.')
end
local first = sent + 1
redis.call('XADD', LOG[ROLE], 'MAXLEN', '~', ARGV[6], '0-' .. through, 'g', first, 't', ARGV[1])
extend(LOG[ROLE], TTL)
redis.call('HSET', RKEY, 'sent_' .. ROLE, through)
relay_event(f[2], SESSION, PEER, PB.msg(18, PB.uint(1, ROLE_ENUM) .. PB.uint(2, first) .. PB.uint(3, through)))
return { 'ok', fmt(first) }
