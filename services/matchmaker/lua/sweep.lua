-- The clock's work, run by every matchmaker process on a short timer (idempotent, so several
-- processes sweeping at once is harmless): offers past their deadline, requests due to widen to
-- any topic or past their preferred-listener window, seekers gone longer than the grace period,
-- and processes whose heartbeat lease ran out. ARGV[6] = most items per kind in one call.
-- Returns {'ok', n} with the number of items handled (the caller sweeps again while n > 0).
local limit = tonumber(ARGV[6])
local handled = 0

-- offers that timed out: the seeker goes back to its place, the listener is set away
for _, oid in ipairs(redis.call('ZRANGEBYSCORE', 'wl:offers:due', '-inf', NOW, 'LIMIT', 0, limit)) do
  local sid, lid = close_offer(oid, 'timed_out', true)
  redis.call('ZREM', 'wl:offers:due', oid)
  if lid then
    redis.call('HSET', listener_key(lid), 'status', 'away')
    refresh_listener(lid)
    publish('listener', lid, 'offer_timeout')
    match_seeker(sid)
  end
  handled = handled + 1
end

-- requests that waited long enough to go to a listener of any topic in their language
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', 'wl:due:widen', '-inf', NOW, 'LIMIT', 0, limit)) do
  redis.call('ZREM', 'wl:due:widen', sid)
  local s = redis.call('HMGET', seeker_key(sid), 'state', 'lang', 'score')
  if s[1] == 'queued' then
    redis.call('ZADD', any_key(s[2]), s[3], sid)
    match_seeker(sid)
  end
  handled = handled + 1
end

-- requests whose named listener did not become free in time: open to everyone
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', 'wl:due:pref', '-inf', NOW, 'LIMIT', 0, limit)) do
  redis.call('ZREM', 'wl:due:pref', sid)
  local s = redis.call('HMGET', seeker_key(sid), 'state', 'pref')
  if s[1] == 'queued' then
    redis.call('ZREM', pref_key(s[2]), sid)
    redis.call('HSET', seeker_key(sid), 'pref', '', 'pref_until', 0)
    enqueue(sid)
    match_seeker(sid)
  end
  handled = handled + 1
end

-- processes that died: their seekers start the grace period, their listeners go away
for _, node in ipairs(redis.call('ZRANGEBYSCORE', 'wl:nodes', '-inf', NOW, 'LIMIT', 0, limit)) do
  for _, sid in ipairs(redis.call('SMEMBERS', 'wl:node:' .. node .. ':seekers')) do
    if redis.call('HGET', seeker_key(sid), 'node') == node then
      redis.call('HSET', seeker_key(sid), 'conn', 0)
      redis.call('ZADD', 'wl:gone', NOW + GRACE, sid)
    end
  end
  for _, lid in ipairs(redis.call('SMEMBERS', 'wl:node:' .. node .. ':listeners')) do
    if redis.call('HGET', listener_key(lid), 'node') == node then
      redis.call('HSET', listener_key(lid), 'conn', 0, 'status', 'away')
      refresh_listener(lid)
    end
  end
  redis.call('DEL', 'wl:node:' .. node .. ':seekers', 'wl:node:' .. node .. ':listeners')
  redis.call('ZREM', 'wl:nodes', node)
  handled = handled + 1
end

-- seekers who did not come back within the grace period: their request is abandoned
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', 'wl:gone', '-inf', NOW, 'LIMIT', 0, limit)) do
  redis.call('ZREM', 'wl:gone', sid)
  local s = redis.call('HMGET', seeker_key(sid), 'state', 'offer', 'topic', 'lang', 'conn')
  if s[5] ~= '1' and (s[1] == 'queued' or s[1] == 'offered') then
    if s[1] == 'offered' then
      local _, lid = close_offer(s[2], 'withdrawn', false)
      if lid then match_listener(lid) end
    end
    unqueue(sid)
    redis.call('HSET', seeker_key(sid), 'state', 'idle', 'offer', '')
    redis.call('HINCRBY', stats_key(s[3], s[4]), 'abandoned', 1)
    redis.call('ZREM', waiting_key(s[3], s[4]), sid)
  end
  handled = handled + 1
end

-- a chat still open after half the record lifetime (12 h by default) is ended, so a chat that
-- both sides abandoned frees the listener's slot before its records expire; once the relay
-- exists it ends idle chats much sooner
for _, session in ipairs(redis.call('ZRANGEBYSCORE', 'wl:sessions', '-inf', NOW - TTL * 500, 'LIMIT', 0, limit)) do
  if not finish_chat(session, 'expired') then redis.call('ZREM', 'wl:sessions', session) end
  handled = handled + 1
end

return { 'ok', handled }
