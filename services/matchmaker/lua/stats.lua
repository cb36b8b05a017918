-- Counts and durations per topic x language for supervisors: never who talks to whom.
-- ARGV[8] = topics csv, [9] languages csv (the catalogue). Returns {'ok', {p50, p90 over all
-- pairs, listeners available, busy, away (each counted once), crisis p50, crisis p90 over all
-- pairs}, row, row, ...} where each row is {topic, lang, waiting, longest_wait_ms, p50_ms,
-- p90_ms, available, busy, away, chats, accepted, declined, timed_out, abandoned,
-- unservable, crisis_waiting, crisis_overdue, crisis_chats, crisis_p50_ms, crisis_p90_ms}.
--
-- unservable: waiting seekers no listener available now may take (anyone_for), checked for the
-- UNSERVABLE_CHECKED longest waiting of a pair (all of them when nobody of its language is online).
local UNSERVABLE_CHECKED = 200
local topics, langs = split(ARGV[8]), split(ARGV[9])
local rows = {}
local index = {}
local all_waits, all_crisis = {}, {}
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
    local waits, crisis = {}, {}
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', K.waits(t, l), NOW - WAIT_WINDOW_MS, '+inf')) do
      local v = tonumber(string.match(m, '^(%d+)'))
      waits[#waits + 1] = v
      all_waits[#all_waits + 1] = v
      if string.sub(m, -2) == ':c' then
        crisis[#crisis + 1] = v
        all_crisis[#all_crisis + 1] = v
      end
    end
    table.sort(waits)
    table.sort(crisis)
    local unservable = 0
    if waiting > 0 then
      if redis.call('SCARD', K.online_lang(l)) == 0 then
        unservable = waiting
      else
        for _, sid in ipairs(redis.call('ZRANGE', w, 0, UNSERVABLE_CHECKED - 1)) do
          if redis.call('HGET', K.seeker(sid), 'state') == 'queued' and not anyone_for(sid) then
            unservable = unservable + 1
          end
        end
      end
    end
    local crisis_waiting = redis.call('ZCARD', K.waiting_crisis(t, l))
    local crisis_overdue = 0
    if crisis_waiting > 0 and CRISIS_WIDEN > 0 then
      crisis_overdue = redis.call('ZCOUNT', K.waiting_crisis(t, l), '-inf', fmt(NOW - CRISIS_WIDEN))
    end
    local st = redis.call('HMGET', K.stats(t, l), 'accepted', 'declined', 'timed_out', 'abandoned')
    local row = { t, l, waiting, longest, percentile(waits, 0.5), percentile(waits, 0.9), 0, 0, 0, 0, num(st[1]),
      num(st[2]), num(st[3]), num(st[4]), unservable, crisis_waiting, crisis_overdue, 0, percentile(crisis, 0.5),
      percentile(crisis, 0.9) }
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
  local c = redis.call('HMGET', K.session(session), 'topic', 'lang', 'tier')
  if c[1] then
    local row = index[c[1] .. ':' .. c[2]]
    if row then
      row[10] = row[10] + 1
      if c[3] == '0' then row[18] = row[18] + 1 end
    end
  end
end
table.sort(all_waits)
table.sort(all_crisis)
local out = { 'ok', { percentile(all_waits, 0.5), percentile(all_waits, 0.9), totals[1], totals[2], totals[3],
  percentile(all_crisis, 0.5), percentile(all_crisis, 0.9), redis.call('ZCARD', K.reports_open) } }
for _, r in ipairs(rows) do out[#out + 1] = r end
return out
