-- Counts and durations per topic x language for supervisors: never who talks to whom.
-- ARGV[6] = topics csv, [7] languages csv (the catalogue). Returns {'ok', {p50, p90 over all
-- pairs, listeners available, busy, away (each counted once)}, row, row, ...} where
-- each row is {topic, lang, waiting, longest_wait_ms, p50_ms, p90_ms, available, busy, away,
-- chats, accepted, declined, timed_out, abandoned}.
local topics, langs = split(ARGV[6]), split(ARGV[7])
local rows = {}
local index = {}
local all_waits = {}
local totals = { 0, 0, 0 }  -- each listener once: available, busy, away
local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.max(1, math.ceil(#sorted * p))]
end
for _, t in ipairs(topics) do
  for _, l in ipairs(langs) do
    -- every open request, queued or being offered, including those waiting for a named listener
    local w = K.waiting(t, l)
    local waiting = redis.call('ZCARD', w)
    local longest = 0
    local oldest = redis.call('ZRANGE', w, 0, 0, 'WITHSCORES')
    if oldest[2] then longest = NOW - tonumber(oldest[2]) end
    local waits = {}
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', K.waits(t, l), NOW - WAIT_WINDOW_MS, '+inf')) do
      local v = tonumber(string.match(m, '^(%d+)'))
      waits[#waits + 1] = v
      all_waits[#all_waits + 1] = v
    end
    table.sort(waits)
    local function pct(p) return percentile(waits, p) end
    local st = redis.call('HMGET', K.stats(t, l), 'accepted', 'declined', 'timed_out', 'abandoned')
    local row = { t, l, waiting, longest, pct(0.5), pct(0.9), 0, 0, 0, 0, num(st[1]), num(st[2]), num(st[3]), num(st[4]) }
    rows[#rows + 1] = row
    index[t .. ':' .. l] = row
  end
end
-- listeners: each counted in every pair they take now (or are trained for, when away)
for _, lid in ipairs(redis.call('SMEMBERS', K.listeners)) do
  if redis.call('HGET', K.listener(lid), 'revoked') ~= '1' then
    local f = redis.call('HMGET', K.listener(lid), 'status', 'chats', 'offers', 'max')
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
    totals[column - 6] = totals[column - 6] + 1
    for _, t in ipairs(active) do
      for _, l in ipairs(a_langs) do
        local row = index[t .. ':' .. l]
        if row then row[column] = row[column] + 1 end
      end
    end
  end
end
for _, session in ipairs(redis.call('ZRANGE', K.sessions, 0, -1)) do
  local c = redis.call('HMGET', K.session(session), 'topic', 'lang')
  if c[1] then
    local row = index[c[1] .. ':' .. c[2]]
    if row then row[10] = row[10] + 1 end
  end
end
table.sort(all_waits)
local out = { 'ok', { percentile(all_waits, 0.5), percentile(all_waits, 0.9), totals[1], totals[2], totals[3] } }
for _, r in ipairs(rows) do out[#out + 1] = r end
return out
