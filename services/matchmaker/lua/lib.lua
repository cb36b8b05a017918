-- The matchmaker's prelude (after common/lua/base.lua and chat.lua; not a script by itself). It
-- owns the matching rules: who is eligible, in which order seekers are served, and how an offer
-- is made, so that every state change ends by matching in the same atomic step.
--
-- Every script gets ARGV[1..7] = now_ms, state_ttl_s, offer_timeout_ms, grace_ms, id_salt,
-- decline_cooldown_ms, crisis_widen_ms and its own arguments from ARGV[8] on. Replies are
-- arrays: {'ok', ...} or {'err', code, message}.
local OFFER_TIMEOUT = tonumber(ARGV[3])
local GRACE = tonumber(ARGV[4])
local SALT = ARGV[5]
local COOLDOWN = tonumber(ARGV[6])      -- a listener who declined or missed a seeker is not offered them again for this long
local CRISIS_WIDEN = tonumber(ARGV[7])  -- a crisis request nobody took this long goes to every listener of its language
local SCAN_PAGE = 32  -- members read at a time when looking for the first eligible one
local WAIT_WINDOW_MS = 15 * 60 * 1000
local ACCEPTS_KEEP_S = 48 * 3600  -- wl:listener:<lid>:accepts, for ListenerProfile.chats_today

-- Tell the listener's connections that their status or profile changed (ListenerChanged.change:
-- 0 the profile, 1 an offer was missed, 2 revoked).
local LISTENER_CHANGE = { profile = 0, offer_missed = 1, revoked = 2, break_due = 3, day_cap = 4, suspended = 5 }
local function tell_listener(lid, change)
  match_event(6, PB.bytes(1, lid) .. PB.uint(2, LISTENER_CHANGE[change]))
end

-- Whether a listener may act: refused when the account is gone or revoked, in every listener
-- script (a revoke closes their connections everywhere, but a request may already be on its way
-- or come through a process that missed the event). Returns the refusal, or nil.
local function listener_refusal(lid)
  local f = redis.call('HMGET', K.listener(lid), 'status', 'revoked')
  if not f[1] then return err('UNAUTHENTICATED', 'This listener account no longer exists.') end
  if f[2] == '1' then return err('UNAUTHENTICATED', 'This listener account has been revoked.') end
  return nil
end

local function new_id(kind)
  return kind .. SALT .. string.format('%x', redis.call('INCR', K.ids))
end

-- The topics and languages a listener takes right now, and those they are trained for (lists).
local function listener_scope(lid)
  local f = redis.call('HMGET', K.listener(lid), 'topics', 'langs', 'atopics', 'alangs')
  local topics, langs = active_csv(f[1], f[2], f[3], f[4])
  return split(topics), split(langs), split(f[1]), split(f[2])
end

-- Chats a listener accepted since midnight of their own clock (utc_offset minutes east of UTC,
-- from their last sign-in; 0 = UTC).
local function chats_today(lid)
  local offset = num(redis.call('HGET', K.listener(lid), 'utc_offset')) * 60000
  local day = 24 * 3600 * 1000
  local midnight = math.floor((NOW + offset) / day) * day - offset
  return redis.call('ZCOUNT', K.listener_accepts(lid), fmt(midnight), '+inf')
end

-- ---- wellbeing: a daily cap and breaks, set per listener by an admin -------------------------
-- Fields of wl:listener:<lid>: day_cap (chats per day, 0 none), break_chats (a break after this
-- many chats, 0 none), break_after_min (a break after this many minutes on duty, 0 none),
-- break_min (the break's length, default 15); since_break, duty_since (ms), away_at (ms),
-- break_due ('1'), rest_until (ms; 0 while open chats delay the rest).

-- Whether the listener's chats today reached their cap; and the cap.
local function day_cap_reached(lid)
  local cap = num(redis.call('HGET', K.listener(lid), 'day_cap'))
  return cap > 0 and chats_today(lid) >= cap, cap
end

local function break_ms(lid)
  local m = num(redis.call('HGET', K.listener(lid), 'break_min'))
  return (m > 0 and m or 15) * 60000
end

local function listener_has_room(lid)
  local f = redis.call('HMGET', K.listener(lid), 'status', 'chats', 'offers', 'max', 'revoked')
  return has_room(f[1], f[2], f[3], f[4], f[5])
end

-- A seeker is never offered to a listener they blocked, nor, for the cool-down, to one who
-- declined or missed them (wl:seeker:<sid>:cooldown, listener -> until when).
local function avoids(sid, lid)
  if redis.call('SISMEMBER', K.blocked(sid), lid) == 1 then return true end
  local until_ms = redis.call('ZSCORE', K.cooldown(sid), lid)
  return until_ms ~= false and tonumber(until_ms) > NOW
end

-- Whether some listener who is available right now (with room or not) may take this request:
-- one who covers its pair (its language, once widened; only the named listener within the
-- preference window) and is not avoided. Exact, and it costs the seeker's avoid list, not the
-- number of listeners online: anyone is there unless everyone online is avoided.
local function anyone_for(sid)
  local s = redis.call('HMGET', K.seeker(sid), 'topic', 'lang', 'pref', 'pref_until', 'widen_at')
  if not s[1] then return false end
  if s[3] and s[3] ~= '' and num(s[4]) > NOW then
    return redis.call('SISMEMBER', K.online(s[1], s[2]), s[3]) == 1 and not avoids(sid, s[3])
  end
  local key = K.online(s[1], s[2])
  local widen_at = num(s[5])
  if widen_at > 0 and widen_at <= NOW then key = K.online_lang(s[2]) end
  local online = redis.call('SCARD', key)
  if online == 0 then return false end
  local avoided = {}
  local n = 0
  local function avoid(lid)
    if not avoided[lid] and redis.call('SISMEMBER', key, lid) == 1 then
      avoided[lid] = true
      n = n + 1
    end
  end
  for _, lid in ipairs(redis.call('SMEMBERS', K.blocked(sid))) do avoid(lid) end
  for _, lid in ipairs(redis.call('ZRANGEBYSCORE', K.cooldown(sid), '(' .. fmt(NOW), '+inf')) do avoid(lid) end
  return online > n
end

-- The first member of a sorted set (lowest score first) that passes `ok`, with its score, read
-- a page at a time however deep it is. What it skips are the seekers (or listeners) that must
-- not meet: a seeker who blocked this listener or whom they declined, so the cost is bounded by
-- those, not by the length of the queue.
local function first_passing(zkey, ok)
  local from = 0
  while true do
    local entries = redis.call('ZRANGE', zkey, from, from + SCAN_PAGE - 1, 'WITHSCORES')
    for i = 1, #entries, 2 do
      if ok(entries[i]) then return entries[i], tonumber(entries[i + 1]) end
    end
    if #entries < 2 * SCAN_PAGE then return nil, nil end
    from = from + SCAN_PAGE
  end
end

-- The first seeker of a queue that does not avoid this listener (and passes `accept`, if
-- given), with its score.
local function head_for(qkey, lid, accept)
  return first_passing(qkey, function(sid) return not avoids(sid, lid) and (accept == nil or accept(sid)) end)
end

-- Seekers are served by tier, then oldest first, across every queue the listener takes: the
-- topic x language queues, the widened "any topic" queue of each language, and the seekers who
-- asked for this listener by name.
local function find_seeker_for(lid)
  local topics, langs = listener_scope(lid)
  local best, best_score = nil, nil
  local function consider(qkey, accept)
    local sid, score = head_for(qkey, lid, accept)
    if sid and (best_score == nil or score < best_score) then best, best_score = sid, score end
  end
  -- a seeker who named this listener still needs a topic and language they take now
  local takes = {}
  for _, t in ipairs(topics) do
    for _, l in ipairs(langs) do takes[t .. ':' .. l] = true end
  end
  consider(K.queue_pref(lid), function(sid)
    local s = redis.call('HMGET', K.seeker(sid), 'topic', 'lang')
    return takes[(s[1] or '') .. ':' .. (s[2] or '')] == true
  end)
  for _, l in ipairs(langs) do
    for _, t in ipairs(topics) do consider(K.queue(t, l)) end
    consider(K.queue_any(l))
  end
  return best
end

-- Among eligible listeners the one idle longest (lowest idle_since) gets the offer.
local function first_listener(zkey, sid)
  return first_passing(zkey, function(lid) return not avoids(sid, lid) end)
end

local function find_listener_for(sid)
  local s = redis.call('HMGET', K.seeker(sid), 'topic', 'lang', 'pref', 'pref_until', 'widen_at')
  local topic, lang, pref = s[1], s[2], s[3]
  if pref and pref ~= '' and num(s[4]) > NOW then
    if redis.call('ZSCORE', K.avail(topic, lang), pref) and not avoids(sid, pref) then return pref end
    return nil
  end
  local best, best_idle = first_listener(K.avail(topic, lang), sid)
  local widen_at = num(s[5])
  if widen_at > 0 and widen_at <= NOW then
    local other, idle = first_listener(K.avail_lang(lang), sid)
    if other and (best_idle == nil or idle < best_idle) then best = other end
  end
  return best
end

-- `fresh`: the seeker was never queued for this request (it found a listener at once).
local function make_offer(sid, lid, fresh)
  local oid = new_id('o')
  local s = redis.call('HMGET', K.seeker(sid), 'topic', 'lang', 'tier', 'enq_ms', 'pref')
  local deadline = NOW + OFFER_TIMEOUT
  local preferred = (s[5] == lid) and '1' or '0'
  if not fresh then unqueue(sid) end
  redis.call('HSET', K.offer(oid), 'seeker', sid, 'listener', lid, 'deadline', deadline,
    'topic', s[1], 'lang', s[2], 'tier', s[3], 'enq_ms', s[4], 'preferred', preferred)
  redis.call('EXPIRE', K.offer(oid), TTL)
  redis.call('ZADD', K.offers_due, deadline, oid)
  redis.call('SADD', K.listener_offers(lid), oid)
  redis.call('HINCRBY', K.listener(lid), 'offers', 1)
  redis.call('HSET', K.listener(lid), 'idle_since', NOW)
  redis.call('HSET', K.seeker(sid), 'state', 'offered', 'offer', oid)
  touch_seeker(sid)
  refresh_listener(lid)
  local offer = PB.bytes(1, oid) .. PB.bytes(2, s[1]) .. PB.bytes(3, s[2]) .. PB.bool(4, s[3] == '0') ..
    PB.uint(5, deadline) .. PB.uint(6, math.floor((NOW - num(s[4])) / 1000)) .. PB.bool(7, preferred == '1')
  match_event(1, PB.bytes(1, lid) .. PB.msg(2, offer))
  return oid
end

local function match_listener(lid)
  local made = 0
  while listener_has_room(lid) and made < 64 do
    local sid = find_seeker_for(lid)
    if not sid then break end
    make_offer(sid, lid)
    made = made + 1
  end
end

local function match_seeker(sid)
  -- only a seeker who is there: a parked one (gone, within its grace) waits for its return, and
  -- one on hold for the sweep
  local s = redis.call('HMGET', K.seeker(sid), 'state', 'parked', 'hold_until')
  if s[1] ~= 'queued' or s[2] == '1' or num(s[3]) > NOW then return end
  local lid = find_listener_for(sid)
  if lid then make_offer(sid, lid) end
end

-- Close an open offer without a chat (declined, timed out, withdrawn): free the listener's slot
-- and, unless the seeker left, put the seeker back at its original place.
local function close_offer(oid, outcome, requeue)
  local o = redis.call('HMGET', K.offer(oid), 'seeker', 'listener', 'topic', 'lang')
  local sid, lid = o[1], o[2]
  if not sid then return nil end
  redis.call('DEL', K.offer(oid))
  redis.call('ZREM', K.offers_due, oid)
  redis.call('SREM', K.listener_offers(lid), oid)
  if redis.call('HINCRBY', K.listener(lid), 'offers', -1) < 0 then
    redis.call('HSET', K.listener(lid), 'offers', 0)
  end
  if outcome == 'declined' or outcome == 'timed_out' then
    redis.call('HINCRBY', K.stats(o[3], o[4]), outcome, 1)
    -- not offered to this listener again for the cool-down; then the sweep matches again
    local until_ms = NOW + COOLDOWN
    redis.call('ZADD', K.cooldown(sid), fmt(until_ms), lid)
    redis.call('EXPIRE', K.cooldown(sid), TTL)
    redis.call('ZADD', K.due_cooldown, fmt(until_ms), sid .. '|' .. lid)
    bump(o[3], o[4])
    -- a named listener who did not take the chat: the request widens to everyone at once
    if redis.call('HGET', K.seeker(sid), 'pref') == lid then
      redis.call('HSET', K.seeker(sid), 'pref', '', 'pref_until', 0)
    end
  end
  match_event(2, PB.bytes(1, lid) .. PB.bytes(2, oid) .. PB.uint(3, OUTCOME[outcome]))
  if requeue and redis.call('HGET', K.seeker(sid), 'offer') == oid then enqueue(sid) end
  refresh_listener(lid)
  return sid, lid
end

-- A listener stops taking chats (a break is due, the day's cap is reached, a revoke): set away
-- with `why`, and every open offer of theirs goes back to its seeker's place at once.
local function stop_taking(lid, why)
  redis.call('HSET', K.listener(lid), 'status', 'away', 'away_why', why)
  refresh_listener(lid)
  for _, oid in ipairs(redis.call('SMEMBERS', K.listener_offers(lid))) do
    local sid = close_offer(oid, 'withdrawn', true)
    if sid then match_seeker(sid) end
  end
end

-- A break is due now: no new chats; open chats carry on and the rest starts when they end.
local function break_now(lid)
  redis.call('HSET', K.listener(lid), 'break_due', '1', 'rest_until', 0)
  redis.call('ZREM', K.due_break, lid)
  stop_taking(lid, 'break')
  rest_if_due(lid)
  tell_listener(lid, 'break_due')
end

-- A listener is taken off the line at once: away, offers withdrawn, every chat of theirs ended as
-- for a lost listener (the seeker back at the front of the line, told kindly; the relays close
-- both sides). `why` goes in away_why.
local function take_off_line(lid, why)
  stop_taking(lid, why)
  for _, session in ipairs(redis.call('SMEMBERS', K.listener_chats(lid))) do
    finish_chat(session, 'peer_lost', 'l')
  end
end

-- An admin's or a supervisor's revoke: the token and handle go, and they are off the line; every
-- matchmaker closes their connections (the 'revoked' event).
local function revoke_listener(lid)
  local key = K.listener(lid)
  local h = redis.call('HGET', key, 'token')
  if h and h ~= '' then redis.call('DEL', K.token(h)) end
  local handle = redis.call('HGET', key, 'handle')
  if handle then redis.call('DEL', K.handle(handle)) end
  redis.call('HSET', key, 'revoked', '1', 'token', '')
  take_off_line(lid, '')
  tell_listener(lid, 'revoked')
end

-- Suspended pending review (by a supervisor, or by reports: report_chat.lua): off the line, and
-- going available is refused until a supervisor lifts it; they may still sign in and are told
-- why. `why`: 'review' or 'reports'. False when already suspended.
local function suspend_listener(lid, why)
  local key = K.listener(lid)
  if redis.call('HGET', key, 'suspended') == '1' then return false end
  redis.call('HSET', key, 'suspended', '1', 'suspended_why', why, 'suspended_at', NOW)
  take_off_line(lid, 'suspended')
  tell_listener(lid, 'suspended')
  return true
end

-- A request for support as one of its two sides sees it (support.lua, support_say.lua):
-- {listener, state, supervisor}, or a refusal for anyone else, an unknown request or a closed one.
local function support_side(id, role, who)
  local s = redis.call('HMGET', K.support(id), 'listener', 'state', 'supervisor')
  if not s[1] or (role == 'listener' and s[1] ~= who) or (role == 'supervisor' and s[3] ~= who) then
    return nil, err('NOT_FOUND', 'That request for support is no longer open.')
  end
  if s[2] == 'closed' then return nil, err('WRONG_STATE', 'This support chat has ended.') end
  return s, nil
end

-- Waits of accepted offers, for the estimate and supervisors' percentiles; a crisis request's
-- member ends in ':c'.
local function record_wait(topic, lang, waited_ms, oid, tier)
  local key = K.waits(topic, lang)
  redis.call('ZADD', key, NOW, fmt(waited_ms) .. ':' .. oid .. (tostring(tier) == '0' and ':c' or ''))
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. fmt(NOW - WAIT_WINDOW_MS))
  extend(key, WAIT_WINDOW_MS / 1000 + 60)
  bump(topic, lang)
end

-- A seeker's position (1 = next) in its own queue and an estimated wait in seconds from the
-- queue's recent service rate: offers accepted over the last 15 minutes, over the time they
-- span (at least a minute, so one early chat does not promise a wait of seconds); 0 = unknown.
-- The third value says nobody may take this request right now (anyone_for): then there is no
-- estimate, since none can come true. The fourth: the seconds a request on hold has left (then
-- it has no place yet: position 1, no estimate).
local function position_of(sid)
  local s = redis.call('HMGET', K.seeker(sid), 'topic', 'lang', 'pref', 'state', 'hold_until')
  if s[4] ~= 'queued' and s[4] ~= 'offered' then return 0, 0, false, 0 end
  if s[4] == 'offered' then return 1, 0, false, 0 end  -- next: a listener is deciding
  if num(s[5]) > NOW then return 1, 0, false, math.ceil((num(s[5]) - NOW) / 1000) end
  local nobody = not anyone_for(sid)
  local rank = redis.call('ZRANK', K.queue(s[1], s[2]), sid)
  if not rank and s[3] and s[3] ~= '' then rank = redis.call('ZRANK', K.queue_pref(s[3]), sid) end
  if not rank then return 1, 0, nobody, 0 end
  if nobody then return rank + 1, 0, true, 0 end
  local waits = K.waits(s[1], s[2])
  local served = redis.call('ZCOUNT', waits, NOW - WAIT_WINDOW_MS, '+inf')
  if served == 0 then return rank + 1, 0, false, 0 end
  local oldest = redis.call('ZRANGEBYSCORE', waits, NOW - WAIT_WINDOW_MS, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  local span = math.max(60000, NOW - tonumber(oldest[2]))
  return rank + 1, math.ceil((rank + 1) * span / served / 1000), false, 0
end

-- The matchmaker's scripts can match: a chat's end offers the listener their next seeker in the
-- same step (chat.lua's default would leave that to the sweep).
after_chat_end = function(sid, lid, requeued)
  match_listener(lid)
  if requeued then match_seeker(sid) end
end

-- ---- presence: who is connected, on which process ---------------------------------------------

-- A process holds a client before its first heartbeat may have renewed its lease: give it one
-- now (only if it has none), so that if it dies at once its clients are still let go.
local function lease_at_least(node, lease)
  redis.call('ZADD', K.nodes, 'NX', fmt(redis_ms() + lease), node)
end

-- A seeker's connection is gone (closed, or its process died): it keeps its place for GRACE,
-- but a listener is never offered someone who is not there. A queued request leaves the queues
-- (`parked`, its score kept) and an open offer is withdrawn; both come back with the seeker.
local function seeker_away(sid, node)
  local s = redis.call('HMGET', K.seeker(sid), 'node', 'state', 'offer', 'conn')
  if s[1] ~= node then return end  -- it resumed on another process meanwhile
  redis.call('SREM', K.node_seekers(node), sid)
  if s[4] == '0' then return end
  redis.call('HSET', K.seeker(sid), 'conn', 0)
  redis.call('ZADD', K.gone, NOW + GRACE, sid)
  if s[2] == 'offered' then
    local _, lid = close_offer(s[3], 'withdrawn', false)
    redis.call('HSET', K.seeker(sid), 'state', 'queued', 'offer', '')
    if lid then match_listener(lid) end
  elseif s[2] ~= 'queued' then
    return
  end
  unqueue(sid)
  redis.call('HSET', K.seeker(sid), 'parked', 1)
end

-- A seeker is connected to process `node` (a hello, or a process confirming its live
-- connections after an outage): a parked request takes its place again and is matched.
local function seeker_here(sid, node)
  local old = redis.call('HGET', K.seeker(sid), 'node')
  if old and old ~= '' and old ~= node then redis.call('SREM', K.node_seekers(old), sid) end
  redis.call('HSET', K.seeker(sid), 'node', node, 'conn', 1)
  redis.call('SADD', K.node_seekers(node), sid)
  redis.call('ZREM', K.gone, sid)
  local s = redis.call('HMGET', K.seeker(sid), 'state', 'parked')
  if s[2] == '1' then
    redis.call('HSET', K.seeker(sid), 'parked', 0)
    if s[1] == 'queued' then
      enqueue(sid)
      match_seeker(sid)
    end
  end
end

-- A listener has `count` connections on process `node` (0: none left there). With none left on
-- any process they are set away; `away_why` says a process's death did it, so that process
-- confirming the connections after an outage sets them available again.
local function listener_here(lid, node, count, why)
  if count > 0 then
    redis.call('HSET', K.listener_conns(lid), node, count)
    redis.call('SADD', K.node_listeners(node), lid)
    return
  end
  redis.call('HDEL', K.listener_conns(lid), node)
  redis.call('SREM', K.node_listeners(node), lid)
  if redis.call('HLEN', K.listener_conns(lid)) > 0 then return end
  if redis.call('HGET', K.listener(lid), 'status') == 'available' then
    redis.call('HSET', K.listener(lid), 'status', 'away', 'away_why', why or '')
    refresh_listener(lid)
  end
end

-- ---- outages ----------------------------------------------------------------------------------

-- Every process sweeps every few hundred ms, so a gap of more than a lease since the last sweep
-- anyone made (wl:clock, on Redis's clock) means nobody could reach Redis (it was stalled,
-- restarting or failing over) or no matchmaker ran. Nothing that ran out meanwhile is anyone's
-- fault: every process gets a fresh lease (two, to reconnect first) to come back and confirm its
-- clients, and the grace
-- periods and offer deadlines that were running move on by the gap. Run first by the sweep
-- (`mark`: it records its own time) and by every step that checks a deadline outside the sweep
-- (accepting an offer), which must not hold a listener to a deadline that passed while nobody
-- could accept. Returns Redis's clock.
local function after_outage(lease, mark)
  local clock = redis_ms()
  local last = tonumber(redis.call('GET', K.clock))
  if mark then redis.call('SET', K.clock, fmt(clock)) end
  if not last or clock - last <= lease then return clock end
  if not mark then redis.call('SET', K.clock, fmt(clock)) end
  local gap = clock - last
  -- two leases: each process first has to reconnect (its backoff grows to 2 s in an outage)
  for _, node in ipairs(redis.call('ZRANGE', K.nodes, 0, -1)) do
    redis.call('ZADD', K.nodes, 'GT', fmt(clock + 2 * lease), node)
  end
  local gone = redis.call('ZRANGE', K.gone, 0, -1, 'WITHSCORES')
  for i = 1, #gone, 2 do redis.call('ZADD', K.gone, fmt(tonumber(gone[i + 1]) + gap), gone[i]) end
  local due = redis.call('ZRANGE', K.offers_due, 0, -1, 'WITHSCORES')
  for i = 1, #due, 2 do
    local deadline = fmt(tonumber(due[i + 1]) + gap)
    redis.call('ZADD', K.offers_due, deadline, due[i])
    redis.call('HSET', K.offer(due[i]), 'deadline', deadline)
  end
  return clock
end
