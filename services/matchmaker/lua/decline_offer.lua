-- A listener declines an offer. ARGV[8] = listener id, [9] offer id. The seeker goes back to
-- its original place and is matched again (not to this listener for this request).
local lid, oid = ARGV[8], ARGV[9]
local refusal = listener_refusal(lid)
if refusal then return refusal end
local o = redis.call('HMGET', K.offer(oid), 'seeker', 'listener')
if not o[1] or o[2] ~= lid then return err('NOT_FOUND', 'That offer is no longer open.') end
local sid = close_offer(oid, 'declined', true)
match_seeker(sid)
match_listener(lid)
return { 'ok' }
