-- Counts and durations per topic x language for supervisors: never who talks to whom.
-- ARGV[6] = topics csv, [7] languages csv (the catalogue). Returns {'ok', row, row, ...} where
-- each row is {topic, lang, waiting, longest_wait_ms, p50_ms, p90_ms, available, busy, away,
-- chats, accepted, declined, timed_out, abandoned}.
local topics, langs = split(ARGV[6]), split(ARGV[7])
local rows = {}
local index = {}
for _, t in ipairs(topics) do
  for _, l in ipairs(langs) do
    local q = queue_key(t, l)
    local waiting = redis.call('ZCARD', q)
    local longest = 0
    -- the oldest seeker of each tier: scores are tier base + enqueue ms * 1000 + seq
    for tier = 0, 1 do
      local head = redis.call('ZRANGEBYSCORE', q, TIER_BASE[tier], TIER_BASE[tier] + 3999999999999999, 'LIMIT', 0, 1)
      if head[1] then
        local enq = num(redis.call('HGET', seeker_key(head[1]), 'enq_ms'))
        if enq > 0 and NOW - enq > longest then longest = NOW - enq end
      end
    end
    local waits = {}
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', 'wl:waits:' .. t .. ':' .. l, NOW - WAIT_WINDOW_MS, '+inf')) do
      waits[#waits + 1] = tonumber(string.match(m, '^(%d+)'))
    end
    table.sort(waits)
    local function pct(p)
      if #waits == 0 then return 0 end
      return waits[math.max(1, math.ceil(#waits * p))]
    end
    local st = redis.call('HMGET', stats_key(t, l), 'accepted', 'declined', 'timed_out', 'abandoned')
    local row = { t, l, waiting, longest, pct(0.5), pct(0.9), 0, 0, 0, 0, num(st[1]), num(st[2]), num(st[3]), num(st[4]) }
    rows[#rows + 1] = row
    index[t .. ':' .. l] = row
  end
end
-- listeners: each counted in every pair they take now (or are trained for, when away)
for _, lid in ipairs(redis.call('SMEMBERS', 'wl:listeners')) do
  if redis.call('HGET', listener_key(lid), 'revoked') ~= '1' then
    local f = redis.call('HMGET', listener_key(lid), 'status', 'chats', 'offers', 'max')
    local active, a_langs, trained_topics, trained_langs = listener_scope(lid)
    local column
    if f[1] ~= 'available' then
      column = 9
      active, a_langs = trained_topics, trained_langs
    elseif num(f[2]) + num(f[3]) < num(f[4]) then
      column = 7
    else
      column = 8
    end
    for _, t in ipairs(active) do
      for _, l in ipairs(a_langs) do
        local row = index[t .. ':' .. l]
        if row then row[column] = row[column] + 1 end
      end
    end
  end
end
for _, session in ipairs(redis.call('SMEMBERS', 'wl:sessions')) do
  local c = redis.call('HMGET', 'wl:session:' .. session, 'topic', 'lang')
  if not c[1] then
    redis.call('SREM', 'wl:sessions', session)
  else
    local row = index[c[1] .. ':' .. c[2]]
    if row then row[10] = row[10] + 1 end
  end
end
local out = { 'ok' }
for _, r in ipairs(rows) do out[#out + 1] = r end
return out
