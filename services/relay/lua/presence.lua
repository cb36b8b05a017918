-- Presence of the two sides of every chat, run by every relay process on a short timer
-- (idempotent, so several at once is harmless). ARGV[5] = this relay's node id, [6] its lease
-- (ms), [7] --peer-away-ms, [8] --peer-grace-ms, [9] most items per kind in one call.
-- Renews this process's lease (on Redis's clock); the sides held by a relay process whose lease
-- ran out are absent from now; a side absent past the away time is announced to the other side
-- (PeerPresence, once); a side absent past the grace ends the chat as lost. A gap longer than a
-- lease since any relay last ran this (Redis unreachable for all, or no relay running) is
-- nobody's absence: leases are renewed and the absences that were running move on by the gap.
-- Returns {'ok', number of items handled}.
local node, lease, away_ms, grace_ms, limit = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]),
  tonumber(ARGV[9])
local handled = 0
local function split_side(side)
  local session, role = string.match(side, '^(.*)|([sl])$')
  return session, role
end

local clock = redis_ms()
local last = tonumber(redis.call('GET', K.relay_clock))
redis.call('SET', K.relay_clock, fmt(clock))
if last and clock - last > lease then
  local gap = clock - last
  for _, n in ipairs(redis.call('ZRANGE', K.relay_nodes, 0, -1)) do
    redis.call('ZADD', K.relay_nodes, 'GT', fmt(clock + 2 * lease), n)
  end
  for _, z in ipairs({ K.relay_absent, K.relay_away }) do
    local e = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
    for i = 1, #e, 2 do redis.call('ZADD', z, fmt(tonumber(e[i + 1]) + gap), e[i]) end
  end
end
redis.call('ZADD', K.relay_nodes, fmt(clock + lease), node)

-- relay processes that died: the sides they held are absent from now
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', K.relay_nodes, '-inf', fmt(clock), 'LIMIT', 0, limit)) do
  for _, side in ipairs(redis.call('SMEMBERS', K.relay_node_sides(dead))) do
    local session, role = split_side(side)
    if session and redis.call('HGET', K.relay(session), 'node_' .. role) == dead then
      redis.call('HSET', K.relay(session), 'node_' .. role, '', 'conn_' .. role, '')
      redis.call('ZADD', K.relay_absent, 'NX', NOW, side)
    end
  end
  redis.call('DEL', K.relay_node_sides(dead))
  redis.call('ZREM', K.relay_nodes, dead)
  handled = handled + 1
end

-- absent past the away time: the other side is told, once
local due = redis.call('ZRANGEBYSCORE', K.relay_absent, '-inf', fmt(NOW - away_ms), 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #due, 2 do
  local side, since = due[i], due[i + 1]
  local session, role = split_side(side)
  redis.call('ZREM', K.relay_absent, side)
  if session and redis.call('HGET', K.session(session), 'state') == 'active' then
    redis.call('ZADD', K.relay_away, since, side)
    local peer = role == 's' and 'l' or 's'
    relay_event(redis.call('HGET', K.relay(session), 'node_' .. peer), session, peer,
      PB.msg(16, PB.bool(1, false) .. PB.uint(2, since)))
  end
  handled = handled + 1
end

-- absent past the grace: the chat ends, this side lost
for _, z in ipairs({ K.relay_away, K.relay_absent }) do
  for _, side in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', fmt(NOW - grace_ms), 'LIMIT', 0, limit)) do
    redis.call('ZREM', z, side)
    local session, role = split_side(side)
    if session then finish_chat(session, 'peer_lost', role) end
    handled = handled + 1
  end
end
return { 'ok', handled }
