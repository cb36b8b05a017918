-- A seeker connects: a new anonymous seeker, or one resuming with its token within the grace
-- period. ARGV[6] = 'new' | 'resume', ARGV[7] = seeker id (new) or resume-token hash (resume),
-- ARGV[8] = resume-token hash (new), ARGV[9] = node id of the connecting process.
-- Returns {'ok', sid, state, session, topic, lang, resumed, preferred listener id or ''}.
local mode, node = ARGV[6], ARGV[9]
local sid
if mode == 'new' then
  sid = ARGV[7]
  redis.call('HSET', seeker_key(sid), 'state', 'idle', 'resume', ARGV[8], 'created', NOW)
  redis.call('SET', 'wl:resume:' .. ARGV[8], sid, 'EX', TTL)
else
  sid = redis.call('GET', 'wl:resume:' .. ARGV[7])
  if not sid or redis.call('EXISTS', seeker_key(sid)) == 0 then
    return err('RESUME_FAILED', 'That conversation could not be found; it may have expired. You can start a new request.')
  end
end
local old_node = redis.call('HGET', seeker_key(sid), 'node')
if old_node and old_node ~= '' and old_node ~= node then
  redis.call('SREM', 'wl:node:' .. old_node .. ':seekers', sid)
end
redis.call('HSET', seeker_key(sid), 'node', node, 'conn', 1)
redis.call('SADD', 'wl:node:' .. node .. ':seekers', sid)
redis.call('ZREM', 'wl:gone', sid)
touch_seeker(sid)
local s = redis.call('HMGET', seeker_key(sid), 'state', 'session', 'topic', 'lang', 'pref')
if mode ~= 'new' then publish('seeker_resumed', sid, node) end
return { 'ok', sid, s[1] or 'idle', s[2] or '', s[3] or '', s[4] or '', mode == 'new' and '0' or '1', s[5] or '' }
