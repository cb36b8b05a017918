-- A seeker connects: a new anonymous seeker, or one resuming with its token (within the grace
-- period a parked request takes its place again). ARGV[6] = 'new' | 'resume', ARGV[7] = seeker id (new) or resume-token hash (resume),
-- ARGV[8] = resume-token hash (new), ARGV[9] = node id of the connecting process.
-- Returns {'ok', sid, state, session, topic, lang, resumed, preferred listener id or '', tier}.
local mode, node = ARGV[6], ARGV[9]
local sid
if mode == 'new' then
  sid = ARGV[7]
  redis.call('HSET', K.seeker(sid), 'state', 'idle', 'resume', ARGV[8], 'created', NOW)
  redis.call('SET', K.resume(ARGV[8]), sid, 'EX', TTL)
else
  sid = redis.call('GET', K.resume(ARGV[7]))
  if not sid or redis.call('EXISTS', K.seeker(sid)) == 0 then
    return err('RESUME_FAILED', 'That conversation could not be found; it may have expired. You can start a new request.')
  end
end
seeker_here(sid, node)
touch_seeker(sid)
local s = redis.call('HMGET', K.seeker(sid), 'state', 'session', 'topic', 'lang', 'pref', 'tier')
if mode ~= 'new' then match_event(8, PB.bytes(1, sid) .. PB.bytes(2, node)) end
return { 'ok', sid, s[1] or 'idle', s[2] or '', s[3] or '', s[4] or '', mode == 'new' and '0' or '1', s[5] or '',
  s[6] or '1' }
