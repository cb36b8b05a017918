-- A seeker reports a chat, during it or after it, once. ARGV[8] = seeker id, [9] session id,
-- [10] reason, [11] the messages the seeker chose to include (proto3 JSON of a ReportChat holding
-- only `messages`), [12] how many messages, [13] how long a report is kept (seconds).
-- The report keeps what the safety team needs and nothing about who the seeker is.
local sid, session, keep = ARGV[8], ARGV[9], tonumber(ARGV[13])
local c = redis.call('HMGET', K.session(session), 'seeker', 'listener', 'topic', 'lang', 'started', 'ended')
if not c[1] or c[1] ~= sid then return err('NOT_FOUND', 'That chat could not be found.') end
local key = K.report(session)
if redis.call('EXISTS', key) == 1 then return err('WRONG_STATE', 'This chat has already been reported.') end
redis.call('HSET', key, 'listener', c[2], 'topic', c[3], 'lang', c[4], 'started', c[5] or '', 'ended', c[6] or '',
  'reason', ARGV[10], 'messages', ARGV[11], 'count', ARGV[12], 'at', NOW)
redis.call('EXPIRE', key, keep)
redis.call('ZADD', K.reports, NOW, session)
redis.call('ZREMRANGEBYSCORE', K.reports, '-inf', '(' .. fmt(NOW - keep * 1000))
redis.call('EXPIRE', K.reports, keep)
return { 'ok' }
