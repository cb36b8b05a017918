-- A listener accepts an offer. ARGV[6] = listener id, [7] offer id.
-- Creates the chat session. Returns {'ok', session id, seeker id, topic, language}.
local lid, oid = ARGV[6], ARGV[7]
local o = redis.call('HMGET', 'wl:offer:' .. oid, 'seeker', 'listener', 'deadline', 'topic', 'lang', 'enq_ms')
if not o[1] or o[2] ~= lid then
  return err('NOT_FOUND', 'That offer is no longer open.')
end
local sid = o[1]
if num(o[3]) <= NOW then
  close_offer(oid, 'timed_out', true)
  redis.call('HSET', listener_key(lid), 'status', 'away')
  refresh_listener(lid)
  match_seeker(sid)
  publish('listener', lid, 'offer_timeout')
  return err('WRONG_STATE', 'That offer expired before it was accepted.')
end
local session = new_id('c')
redis.call('DEL', 'wl:offer:' .. oid)
redis.call('ZREM', 'wl:offers:due', oid)
redis.call('SREM', listener_key(lid) .. ':offers', oid)
-- the open offer becomes a chat: the listener's load (and so the indexes) does not change
local n = redis.call('HMGET', listener_key(lid), 'offers', 'chats', 'chats_total')
redis.call('HSET', listener_key(lid), 'offers', math.max(0, num(n[1]) - 1), 'chats', num(n[2]) + 1,
  'chats_total', num(n[3]) + 1)
redis.call('SADD', listener_key(lid) .. ':chats', session)
-- when the listener accepted each chat, for "chats today" in any time zone: two days are enough
-- for every offset from -14 h to +14 h
local accepts = listener_key(lid) .. ':accepts'
redis.call('ZADD', accepts, NOW, session)
redis.call('ZREMRANGEBYSCORE', accepts, '-inf', '(' .. fmt(NOW - ACCEPTS_KEEP_S * 1000))
redis.call('EXPIRE', accepts, ACCEPTS_KEEP_S)
redis.call('HSET', 'wl:session:' .. session, 'seeker', sid, 'listener', lid, 'topic', o[4], 'lang', o[5],
  'started', NOW, 'state', 'active')
redis.call('EXPIRE', 'wl:session:' .. session, TTL)
redis.call('ZADD', 'wl:sessions', NOW, session)
redis.call('ZREM', waiting_key(o[4], o[5]), sid)
redis.call('HSET', seeker_key(sid), 'state', 'chat', 'session', session, 'offer', '')
redis.call('DEL', 'wl:seeker:' .. sid .. ':declined')
touch_seeker(sid)
redis.call('HINCRBY', stats_key(o[4], o[5]), 'accepted', 1)
record_wait(o[4], o[5], NOW - num(o[6]), oid)
refresh_listener(lid)
-- one event for both sides: the seeker's ChatStarted and the listener's OfferClosed(accepted)
publish('chat', sid, lid, session, o[4], o[5], oid)
return { 'ok', session, sid, o[4], o[5] }
