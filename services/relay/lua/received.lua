-- The caller has every message of the other side up to ARGV[5] (cumulative; never moves back,
-- never past what the other side sent). When that moves, the other side is told (PeerReceived):
-- it may let those messages go. Returns {'ok'}.
local f = redis.call('HMGET', RKEY, 'recv_' .. ROLE, 'sent_' .. PEER, 'pub_' .. ROLE, 'node_' .. PEER)
if not f[3] then return err('NOT_FOUND', ENDED) end
local through = math.min(tonumber(ARGV[5]), tonumber(f[2]) or 0)
if through > (tonumber(f[1]) or 0) then
  redis.call('HSET', RKEY, 'recv_' .. ROLE, through)
  relay_event(f[4], SESSION, PEER, PB.uint(17, through))
end
return { 'ok' }
