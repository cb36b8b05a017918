-- Either side reports a chat, during it or after it, once per side. ARGV[8] = role ('seeker' |
-- 'listener'), [9] that side's id, [10] session id, [11] reason, [12] the messages the reporter
-- chose to include (proto3 JSON of a ReportChat holding only `messages`), [13] how many messages,
-- [14] how long a report is kept (seconds), [15] '1': a listener blocks the seeker (the chat
-- ends now if it is open, and the two are never matched again), [16] the window (ms) over which
-- listeners' reports of a seeker are counted for a hold (request_chat.lua), [17] how many seekers'
-- reports of one listener within [18] ms suspend the listener pending review (0: never).
-- A seeker's report is wl:report:<session>, a listener's wl:report:<session>:l; both keep what
-- the safety team needs and nothing about who the seeker is. Returns {'ok'}.
local role, who, session, keep = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[14])
local block, window = ARGV[15] == '1', tonumber(ARGV[16])
if role == 'listener' then
  local refusal = listener_refusal(who)
  if refusal then return refusal end
end
local c = redis.call('HMGET', K.session(session), 'seeker', 'listener', 'topic', 'lang', 'started', 'ended', 'state')
local mine = (role == 'seeker' and c[1] == who) or (role == 'listener' and c[2] == who)
if not c[1] or not mine then return err('NOT_FOUND', 'That chat could not be found.') end
-- the index holds the report's id: the session id, with ':l' for the listener's (K.listener_report)
local id = role == 'seeker' and session or session .. ':l'
local key = role == 'seeker' and K.report(session) or K.listener_report(session)
if redis.call('EXISTS', key) == 1 then return err('WRONG_STATE', 'This chat has already been reported.') end
local sid, lid = c[1], c[2]
if role == 'listener' and block then
  redis.call('SADD', K.blocked(sid), lid)
  redis.call('EXPIRE', K.blocked(sid), TTL)
  if c[7] == 'active' then finish_chat(session, 'listener') end
end
redis.call('HSET', key, 'by', role, 'listener', lid, 'topic', c[3], 'lang', c[4], 'started', c[5] or '',
  'ended', redis.call('HGET', K.session(session), 'ended') or '', 'reason', ARGV[11], 'messages', ARGV[12],
  'count', ARGV[13], 'blocked', block and '1' or '0', 'at', NOW)
redis.call('EXPIRE', key, keep)
redis.call('ZADD', K.reports, NOW, id)
redis.call('ZREMRANGEBYSCORE', K.reports, '-inf', '(' .. fmt(NOW - keep * 1000))
redis.call('EXPIRE', K.reports, keep)
-- the safety team's review queue (review.lua takes a report out of it)
redis.call('ZADD', K.reports_open, NOW, id)
redis.call('ZREMRANGEBYSCORE', K.reports_open, '-inf', '(' .. fmt(NOW - keep * 1000))
if role == 'seeker' then
  -- seekers' reports of one listener: enough of them within the window suspend the listener
  -- pending review (each chat counts once)
  local after, span = tonumber(ARGV[17]) or 0, tonumber(ARGV[18]) or 0
  local k = K.listener_reported(lid)
  redis.call('ZADD', k, NOW, session)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. fmt(NOW - span))
  redis.call('PEXPIRE', k, math.max(span, 1))
  if after > 0 and redis.call('ZCARD', k) >= after then suspend_listener(lid, 'reports') end
end
if role == 'listener' then
  -- each listener counts once per seeker (and per address bucket) towards a hold on its requests
  local function count(k)
    redis.call('ZADD', k, NOW, lid)
    redis.call('PEXPIRE', k, window)
  end
  count(K.seeker_reported(sid))
  local addr = redis.call('HGET', K.seeker(sid), 'addr')
  if addr and addr ~= '' then count(K.address_reported(addr)) end
end
return { 'ok' }
