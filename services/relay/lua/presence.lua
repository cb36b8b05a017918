-- Presence of the two sides of every chat of one bucket, run by every relay process on a short
-- timer for every bucket (idempotent, so several at once is harmless). ARGV[5] = a relay lease
-- (ms), [6] --peer-away-ms, [7] --peer-grace-ms, [8] most items per kind in one call, then the
-- relay processes found dead (lease.lua). The sides those processes held are absent from now; a
-- side absent past the away time is announced to the other side (PeerPresence, once); a side
-- absent past the grace is returned: the relay ends its chat as lost on the control Redis and
-- purges it (it stays absent here until then, so a relay that dies in between leaves it for
-- the next sweep). A gap longer than a lease since any relay last swept this bucket (Redis
-- unreachable for all, or no relay running) is nobody's absence: the absences that were
-- running move on by the gap.
-- Returns {'ok', number of items handled, then "<session>|<s|l>" per side lost}.
local lease, away_ms, grace_ms, limit = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local handled = 0

local clock = redis_ms()
local last = tonumber(redis.call('GET', BUCKET_CLOCK))
redis.call('SET', BUCKET_CLOCK, fmt(clock))
if last and clock - last > lease then
  local gap = clock - last
  for _, z in ipairs({ ABSENT, AWAY }) do
    local e = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
    for i = 1, #e, 2 do redis.call('ZADD', z, fmt(tonumber(e[i + 1]) + gap), e[i]) end
  end
end

-- relay processes that died: the sides they held are absent from now
if #ARGV >= 9 then
  local dead = {}
  for i = 9, #ARGV do dead[ARGV[i]] = true end
  local held = redis.call('HGETALL', SIDES)
  for i = 1, #held, 2 do
    local side, node = held[i], held[i + 1]
    if dead[node] then
      let_go(side, node)
      handled = handled + 1
    end
  end
end

-- absent past the away time: the other side is told, once
local due = redis.call('ZRANGEBYSCORE', ABSENT, '-inf', fmt(NOW - away_ms), 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #due, 2 do
  local side, since = due[i], due[i + 1]
  local session, role = split_side(side)
  local rkey = K.relay(BUCKET, session or '')
  if session and since + grace_ms > NOW and redis.call('EXISTS', rkey) == 1 then
    redis.call('ZREM', ABSENT, side)
    redis.call('ZADD', AWAY, since, side)
    local peer = role == 's' and 'l' or 's'
    relay_event(redis.call('HGET', rkey, 'node_' .. peer), session, peer,
      PB.msg(16, PB.bool(1, false) .. PB.uint(2, since)))
    handled = handled + 1
  elseif not session or redis.call('EXISTS', rkey) == 0 then
    redis.call('ZREM', ABSENT, side)  -- its chat is gone
  end
end

-- absent past the grace: the chat ends, this side lost
local out = { 'ok', 0 }
for _, z in ipairs({ AWAY, ABSENT }) do
  for _, side in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', fmt(NOW - grace_ms), 'LIMIT', 0, limit)) do
    out[#out + 1] = side
    handled = handled + 1
  end
end
out[2] = handled
return out
