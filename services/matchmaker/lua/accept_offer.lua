-- A listener accepts an offer. ARGV[8] = listener id, [9] offer id, [10] the lease (ms) of a
-- matchmaker process. Creates the chat session.
-- Returns {'ok', session id, seeker id, topic, language, tier}.
local lid, oid = ARGV[8], ARGV[9]
after_outage(tonumber(ARGV[10]), false)
local refusal = listener_refusal(lid)
if refusal then return refusal end
local o = redis.call('HMGET', K.offer(oid), 'seeker', 'listener', 'deadline', 'topic', 'lang', 'enq_ms', 'tier')
if not o[1] or o[2] ~= lid then
  return err('NOT_FOUND', 'That offer is no longer open.')
end
local sid = o[1]
-- an offer made before the listener's cap or break came due (they are away now) goes back
local capped, cap = day_cap_reached(lid)
local w = redis.call('HMGET', K.listener(lid), 'break_due', 'suspended')
if capped or w[1] == '1' or w[2] == '1' then
  close_offer(oid, 'withdrawn', true)
  match_seeker(sid)
  if w[2] == '1' then
    return err('WRONG_STATE', 'Your account is paused pending a review by the safety team, so this request went to someone else.')
  end
  if capped then
    return err('WRONG_STATE', 'That was your ' .. cap .. ' chats for today, so this request went to someone else. Thank you.')
  end
  return err('WRONG_STATE', "It's time for your break, so this request went to someone else.")
end
if num(o[3]) <= NOW then
  close_offer(oid, 'timed_out', true)
  redis.call('HSET', K.listener(lid), 'status', 'away')
  refresh_listener(lid)
  match_seeker(sid)
  tell_listener(lid, 'offer_missed')
  return err('WRONG_STATE', 'That offer expired before it was accepted.')
end
local session = new_id('c')
redis.call('DEL', K.offer(oid))
redis.call('ZREM', K.offers_due, oid)
redis.call('SREM', K.listener_offers(lid), oid)
-- the open offer becomes a chat: the listener's load (and so the indexes) does not change
local n = redis.call('HMGET', K.listener(lid), 'offers', 'chats', 'chats_total', 'since_break', 'break_chats')
redis.call('HSET', K.listener(lid), 'offers', math.max(0, num(n[1]) - 1), 'chats', num(n[2]) + 1,
  'chats_total', num(n[3]) + 1, 'since_break', num(n[4]) + 1)
redis.call('SADD', K.listener_chats(lid), session)
-- when the listener accepted each chat, for "chats today" in any time zone: two days are enough
-- for every offset from -14 h to +14 h
local accepts = K.listener_accepts(lid)
redis.call('ZADD', accepts, NOW, session)
redis.call('ZREMRANGEBYSCORE', accepts, '-inf', '(' .. fmt(NOW - ACCEPTS_KEEP_S * 1000))
redis.call('EXPIRE', accepts, ACCEPTS_KEEP_S)
redis.call('HSET', K.session(session), 'seeker', sid, 'listener', lid, 'topic', o[4], 'lang', o[5],
  'started', NOW, 'state', 'active', 'tier', o[7] or '1')
redis.call('EXPIRE', K.session(session), TTL)
redis.call('ZADD', K.sessions, NOW, session)
chat_presence_start(session)
waiting_remove(sid, o[4], o[5])
redis.call('HSET', K.seeker(sid), 'state', 'chat', 'session', session, 'offer', '')
redis.call('DEL', K.cooldown(sid))
touch_seeker(sid)
redis.call('HINCRBY', K.stats(o[4], o[5]), 'accepted', 1)
record_wait(o[4], o[5], NOW - num(o[6]), oid, o[7])
refresh_listener(lid)
-- this chat may be the day's last, or the one before a break: no more offers after it
if day_cap_reached(lid) then
  stop_taking(lid, 'day_cap')
  tell_listener(lid, 'day_cap')
elseif num(n[5]) > 0 and num(n[4]) + 1 >= num(n[5]) then
  break_now(lid)
end
-- one event for both sides: the seeker's ChatStarted and the listener's OfferClosed(accepted)
match_event(4, PB.bytes(1, sid) .. PB.bytes(2, lid) .. PB.bytes(3, session) .. PB.bytes(4, o[4]) ..
  PB.bytes(5, o[5]) .. PB.bytes(6, oid) .. PB.bool(7, o[7] == '0'))
return { 'ok', session, sid, o[4], o[5], o[7] or '1' }
