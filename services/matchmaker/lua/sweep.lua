-- The clock's work, run by every matchmaker process on a short timer (idempotent, so several
-- processes sweeping at once is harmless): listeners and seekers left to match by the relay,
-- offers past their deadline, requests due to widen to any topic or past their preferred-
-- listener window, seekers gone longer than the grace period, and processes whose lease ran
-- out. ARGV[8] = most items per kind in one call, [9] the lease (ms) of a matchmaker process.
-- Returns {'ok', n} with the number of items handled (the caller sweeps again while n > 0).
local limit, lease = tonumber(ARGV[8]), tonumber(ARGV[9])
local handled = 0

local clock = after_outage(lease, true)

-- listeners freed by a chat the relay ended (it cannot match): offer them their next seeker
for _, who in ipairs(redis.call('ZRANGEBYSCORE', K.due_match, '-inf', '+inf', 'LIMIT', 0, limit)) do
  redis.call('ZREM', K.due_match, who)
  local kind, id = string.sub(who, 1, 1), string.sub(who, 3)
  if kind == 'l' then match_listener(id) else match_seeker(id) end
  handled = handled + 1
end

-- cool-downs that ended: the listener may be offered that seeker again
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', K.due_cooldown, '-inf', fmt(NOW), 'LIMIT', 0, limit)) do
  redis.call('ZREM', K.due_cooldown, entry)
  local sid, lid = string.match(entry, '^(.*)|(.*)$')
  redis.call('ZREMRANGEBYSCORE', K.cooldown(sid), '-inf', fmt(NOW))
  local s = redis.call('HMGET', K.seeker(sid), 'topic', 'lang', 'state')
  if s[3] == 'queued' then
    bump(s[1], s[2])
    match_seeker(sid)
  end
  handled = handled + 1
end

-- offers that timed out: the seeker goes back to its place, the listener is set away
for _, oid in ipairs(redis.call('ZRANGEBYSCORE', K.offers_due, '-inf', NOW, 'LIMIT', 0, limit)) do
  local sid, lid = close_offer(oid, 'timed_out', true)
  redis.call('ZREM', K.offers_due, oid)
  if lid then
    redis.call('HSET', K.listener(lid), 'status', 'away')
    refresh_listener(lid)
    tell_listener(lid, 'offer_missed')
    match_seeker(sid)
  end
  handled = handled + 1
end

-- requests that waited long enough to go to a listener of any topic in their language
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', K.due_widen, '-inf', NOW, 'LIMIT', 0, limit)) do
  redis.call('ZREM', K.due_widen, sid)
  local s = redis.call('HMGET', K.seeker(sid), 'state', 'lang', 'score')
  if s[1] == 'queued' then
    redis.call('ZADD', K.queue_any(s[2]), s[3], sid)
    match_seeker(sid)
  end
  handled = handled + 1
end

-- listeners on duty longer than their admin's limit since their last break: a break is due
for _, lid in ipairs(redis.call('ZRANGEBYSCORE', K.due_break, '-inf', NOW, 'LIMIT', 0, limit)) do
  redis.call('ZREM', K.due_break, lid)
  local f = redis.call('HMGET', K.listener(lid), 'status', 'chats', 'break_due', 'revoked')
  -- one who went away with no chat open is resting already (set_availability.lua counts it)
  if f[1] and f[3] ~= '1' and f[4] ~= '1' and (f[1] == 'available' or num(f[2]) > 0) then break_now(lid) end
  handled = handled + 1
end

-- requests whose hold (request_chat.lua: listeners reported the seeker) is over: into the queues
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', K.due_hold, '-inf', NOW, 'LIMIT', 0, limit)) do
  redis.call('ZREM', K.due_hold, sid)
  local s = redis.call('HMGET', K.seeker(sid), 'state', 'parked')
  if s[1] == 'queued' then
    redis.call('HSET', K.seeker(sid), 'hold_until', 0)
    -- a parked seeker (gone, within its grace) is queued when it comes back
    if s[2] ~= '1' then
      enqueue(sid)
      match_seeker(sid)
    end
  end
  handled = handled + 1
end

-- requests whose named listener did not become free in time: open to everyone
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', K.due_pref, '-inf', NOW, 'LIMIT', 0, limit)) do
  redis.call('ZREM', K.due_pref, sid)
  local s = redis.call('HMGET', K.seeker(sid), 'state', 'pref')
  if s[1] == 'queued' then
    redis.call('ZREM', K.queue_pref(s[2]), sid)
    redis.call('HSET', K.seeker(sid), 'pref', '', 'pref_until', 0)
    enqueue(sid)
    match_seeker(sid)
  end
  handled = handled + 1
end

-- processes whose lease ran out on Redis's clock: their seekers start the grace period, their
-- listeners' connections there are gone (away unless connected elsewhere). A process that was
-- only cut off confirms its live connections when it is back (node_sync.lua).
for _, node in ipairs(redis.call('ZRANGEBYSCORE', K.nodes, '-inf', fmt(clock), 'LIMIT', 0, limit)) do
  for _, sid in ipairs(redis.call('SMEMBERS', K.node_seekers(node))) do seeker_away(sid, node) end
  for _, lid in ipairs(redis.call('SMEMBERS', K.node_listeners(node))) do listener_here(lid, node, 0, 'node') end
  redis.call('DEL', K.node_seekers(node), K.node_listeners(node))
  redis.call('ZREM', K.nodes, node)
  handled = handled + 1
end

-- seekers who did not come back within the grace period: their request is abandoned
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', K.gone, '-inf', NOW, 'LIMIT', 0, limit)) do
  redis.call('ZREM', K.gone, sid)
  local s = redis.call('HMGET', K.seeker(sid), 'state', 'offer', 'topic', 'lang', 'conn')
  if s[5] ~= '1' and (s[1] == 'queued' or s[1] == 'offered') then
    if s[1] == 'offered' then
      local _, lid = close_offer(s[2], 'withdrawn', false)
      if lid then match_listener(lid) end
    end
    unqueue(sid)
    -- `abandoned`: if this seeker's process was only cut off and still holds its connection,
    -- it puts the request back when it confirms its clients (node_sync.lua)
    redis.call('HSET', K.seeker(sid), 'state', 'idle', 'offer', '', 'parked', 0, 'abandoned', 1)
    redis.call('HINCRBY', K.stats(s[3], s[4]), 'abandoned', 1)
    waiting_remove(sid, s[3], s[4])
  end
  handled = handled + 1
end

-- a chat still open after half the record lifetime (12 h by default) is ended, so its records
-- never expire under an open chat; the relay ends idle chats (30 min) and chats whose side is
-- gone (2 min) much sooner, so this is the last resort of a chat the relay never saw
for _, session in ipairs(redis.call('ZRANGEBYSCORE', K.sessions, '-inf', NOW - TTL * 500, 'LIMIT', 0, limit)) do
  if not finish_chat(session, 'expired') then redis.call('ZREM', K.sessions, session) end
  handled = handled + 1
end

-- ended chats whose relay records no relay deleted (none running): the records expired by now
redis.call('ZREMRANGEBYSCORE', K.relay_ended, '-inf', fmt(NOW - TTL * 1000))

return { 'ok', handled }
