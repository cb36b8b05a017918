-- A seeker connects: a new anonymous seeker, or one resuming with its token (within the grace
-- period a parked request takes its place again). ARGV[8] = 'new' | 'resume', ARGV[9] = seeker id (new) or resume-token hash (resume),
-- ARGV[10] = resume-token hash (new), ARGV[11] = node id of the connecting process, [12] its lease ms.
-- Returns {'ok', sid, state, session, topic, lang, resumed, preferred listener id or '', tier,
-- region}.
local mode, node = ARGV[8], ARGV[11]
local sid
if mode == 'new' then
  sid = ARGV[9]
  redis.call('HSET', K.seeker(sid), 'state', 'idle', 'resume', ARGV[10], 'created', NOW)
  redis.call('SET', K.resume(ARGV[10]), sid, 'EX', TTL)
else
  sid = redis.call('GET', K.resume(ARGV[9]))
  if not sid or redis.call('EXISTS', K.seeker(sid)) == 0 then
    return err('RESUME_FAILED', 'That conversation could not be found; it may have expired. You can start a new request.')
  end
end
seeker_here(sid, node)
lease_at_least(node, tonumber(ARGV[12]))
-- a seeker who says hello learns its state from the reply: a request let go while it was away
-- stays let go (only a process that held it all along puts it back: node_sync.lua)
redis.call('HSET', K.seeker(sid), 'abandoned', 0)
touch_seeker(sid)
local s = redis.call('HMGET', K.seeker(sid), 'state', 'session', 'topic', 'lang', 'pref', 'tier', 'region')
if mode ~= 'new' then match_event(8, PB.bytes(1, sid) .. PB.bytes(2, node)) end
return { 'ok', sid, s[1] or 'idle', s[2] or '', s[3] or '', s[4] or '', mode == 'new' and '0' or '1', s[5] or '',
  s[6] or '1', s[7] or '' }
