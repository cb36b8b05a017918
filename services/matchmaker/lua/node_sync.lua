-- After its Redis connections come back, a matchmaker process renews its lease and says which
-- seekers and listeners it holds right now, before its sweep may act again. ARGV[8] = node id,
-- [9] lease ms, [10] n, then n seeker ids, then pairs (listener id, connections here).
-- Its registry in Redis becomes exactly that: connections that closed while Redis could not be
-- told are let go, those that stayed open keep (or get back) their place. A seeker whose request
-- was let go while this process could not renew its lease (it never left) is queued again at
-- its original place; a listener set away for the same reason is available again.
local node, lease, n = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
redis.call('ZADD', K.nodes, fmt(redis_ms() + lease), node)
local live = {}
for i = 11, 10 + n do
  local sid = ARGV[i]
  live[sid] = true
  if redis.call('EXISTS', K.seeker(sid)) == 1 then
    seeker_here(sid, node)
    local s = redis.call('HMGET', K.seeker(sid), 'state', 'abandoned', 'topic', 'lang', 'enq_ms', 'tier')
    if s[1] == 'idle' and s[2] == '1' then
      redis.call('HSET', K.seeker(sid), 'abandoned', 0)
      redis.call('HINCRBY', K.stats(s[3], s[4]), 'abandoned', -1)  -- it was not, after all
      waiting_add(sid, s[3], s[4], s[6], s[5])
      enqueue(sid)
      match_seeker(sid)
    end
  end
end
for _, sid in ipairs(redis.call('SMEMBERS', K.node_seekers(node))) do
  if not live[sid] then seeker_away(sid, node) end
end
local here = {}
for i = 11 + n, #ARGV, 2 do
  local lid, count = ARGV[i], tonumber(ARGV[i + 1])
  here[lid] = true
  listener_here(lid, node, count)
  local f = redis.call('HMGET', K.listener(lid), 'status', 'away_why', 'revoked')
  if f[1] == 'away' and f[2] == 'node' and f[3] ~= '1' then
    redis.call('HSET', K.listener(lid), 'status', 'available', 'away_why', '', 'idle_since', NOW)
    refresh_listener(lid)
    tell_listener(lid, 'profile')
    match_listener(lid)
  end
end
for _, lid in ipairs(redis.call('SMEMBERS', K.node_listeners(node))) do
  if not here[lid] then listener_here(lid, node, 0, 'closed') end
end
return { 'ok' }
