-- Shared prelude of every matchmaker script (prepended at load time; not a script by itself).
-- It owns the matching rules: who is eligible, in which order seekers are served, and how an
-- offer is made, so that every state change ends by matching in the same atomic step.
--
-- Every script gets ARGV[1..5] = now_ms, offer_timeout_ms, state_ttl_s, grace_ms, id_salt and
-- its own arguments from ARGV[6] on. Replies are arrays: {'ok', ...} or {'err', code, message}.
local NOW = tonumber(ARGV[1])
local OFFER_TIMEOUT = tonumber(ARGV[2])
local TTL = tonumber(ARGV[3])
local GRACE = tonumber(ARGV[4])
local SALT = ARGV[5]
local CHANNEL = 'wl:events'
local TIER_BASE = { [0] = 0, [1] = 4000000000000000 }
local SCAN_LIMIT = 32
local WAIT_WINDOW_MS = 15 * 60 * 1000
local ACCEPTS_KEEP_S = 48 * 3600  -- wl:listener:<lid>:accepts, for ListenerProfile.chats_today

local function err(code, msg) return { 'err', code, msg } end
local function num(v) return tonumber(v) or 0 end
local function fmt(n) return string.format('%.0f', n) end

local function split(s)
  local out = {}
  if s then for item in string.gmatch(s, '[^,]+') do out[#out + 1] = item end end
  return out
end

local function new_id(kind)
  return kind .. SALT .. string.format('%x', redis.call('INCR', 'wl:ids'))
end

local function seeker_key(sid) return 'wl:seeker:' .. sid end
local function listener_key(lid) return 'wl:listener:' .. lid end
local function queue_key(topic, lang) return 'wl:q:' .. topic .. ':' .. lang end
local function any_key(lang) return 'wl:qany:' .. lang end
local function pref_key(lid) return 'wl:qpref:' .. lid end
local function avail_key(topic, lang) return 'wl:avail:' .. topic .. ':' .. lang end
local function avail_lang_key(lang) return 'wl:availlang:' .. lang end
local function stats_key(topic, lang) return 'wl:stats:' .. topic .. ':' .. lang end
-- every open request of a pair, queued or being offered, by enqueue time (for supervisors)
local function waiting_key(topic, lang) return 'wl:waiting:' .. topic .. ':' .. lang end

local function publish(...) redis.call('PUBLISH', CHANNEL, table.concat({ ... }, '|')) end

-- Every change that can move a position or an estimate in a topic x language queue (someone
-- joins or leaves it, an offer there is accepted) bumps its version, so the processes recompute
-- positions only for seekers whose queue changed.
local function bump(topic, lang) redis.call('INCR', 'wl:qver:' .. topic .. ':' .. lang) end

-- EXPIRE is a write that goes to the AOF, so records touched on every step are only extended
-- once their remaining time fell a little (a tenth of the TTL, at most a minute) below the full
-- TTL: a record lives at least TTL minus that slack after its last use.
local function stale(key, ttl)
  return redis.call('TTL', key) <= ttl - math.min(60, math.floor(ttl / 10))
end

local function extend(key, ttl)
  if stale(key, ttl) then redis.call('EXPIRE', key, ttl) end
end

local touched = {}
local function touch_seeker(sid)
  if touched[sid] then return end
  touched[sid] = true
  if not stale(seeker_key(sid), TTL) then return end
  redis.call('EXPIRE', seeker_key(sid), TTL)
  -- blocks last as long as the anonymous identity that made them
  redis.call('EXPIRE', 'wl:seeker:' .. sid .. ':blocked', TTL)
  local h = redis.call('HGET', seeker_key(sid), 'resume')
  if h then redis.call('EXPIRE', 'wl:resume:' .. h, TTL) end
end

-- The one rule for what a listener takes right now, from their hash's fields: the narrowed lists
-- (atopics, alangs), or all they are trained for (topics, langs); comma lists.
local function active_csv(topics, langs, atopics, alangs)
  return (atopics and atopics ~= '') and atopics or (topics or ''), (alangs and alangs ~= '') and alangs or (langs or '')
end

-- The one rule for whether a listener can be offered another chat.
local function has_room(status, chats, offers, max, revoked)
  return status == 'available' and revoked ~= '1' and num(chats) + num(offers) < num(max)
end

-- The topics and languages a listener takes right now, and those they are trained for (lists).
local function listener_scope(lid)
  local f = redis.call('HMGET', listener_key(lid), 'topics', 'langs', 'atopics', 'alangs')
  local topics, langs = active_csv(f[1], f[2], f[3], f[4])
  return split(topics), split(langs), split(f[1]), split(f[2])
end

-- Chats a listener accepted since midnight of their own clock (utc_offset minutes east of UTC,
-- from their last sign-in; 0 = UTC).
local function chats_today(lid)
  local offset = num(redis.call('HGET', listener_key(lid), 'utc_offset')) * 60000
  local day = 24 * 3600 * 1000
  local midnight = math.floor((NOW + offset) / day) * day - offset
  return redis.call('ZCOUNT', listener_key(lid) .. ':accepts', fmt(midnight), '+inf')
end

local function listener_has_room(lid)
  local f = redis.call('HMGET', listener_key(lid), 'status', 'chats', 'offers', 'max', 'revoked')
  return has_room(f[1], f[2], f[3], f[4], f[5])
end

local function index_pairs(topics, langs, lid, score)
  for _, l in ipairs(split(langs)) do
    for _, t in ipairs(split(topics)) do
      if score then redis.call('ZADD', avail_key(t, l), score, lid) else redis.call('ZREM', avail_key(t, l), lid) end
    end
    if score then redis.call('ZADD', avail_lang_key(l), score, lid) else redis.call('ZREM', avail_lang_key(l), lid) end
  end
end

-- Keep the availability indexes true to the listener's hash: present in wl:avail:<t>:<l> for
-- every pair they take now and in wl:availlang:<l> (scored by idle_since, oldest first) exactly
-- while they have room. The hash field `ix` records what is indexed ('' for nothing, else
-- 'score|topics|languages'), so a refresh that changes nothing costs one read, one that only
-- moves the score is a ZADD per pair, and only a change of scope removes anything.
local function refresh_listener(lid)
  local f = redis.call('HMGET', listener_key(lid), 'topics', 'langs', 'atopics', 'alangs', 'status', 'chats',
    'offers', 'max', 'revoked', 'idle_since', 'ix')
  local topics, langs = active_csv(f[1], f[2], f[3], f[4])
  local room = has_room(f[5], f[6], f[7], f[8], f[9])
  local want = room and (fmt(num(f[10])) .. '|' .. topics .. '|' .. langs) or ''
  local have = f[11]
  if have == want then return end
  if not have then
    -- indexed before `ix` existed: leave every pair they are trained for
    index_pairs(f[1], f[2], lid, nil)
  elseif have ~= '' then
    local _, _, had_topics, had_langs = string.find(have, '^[^|]*|([^|]*)|(.*)$')
    if not room or had_topics ~= topics or had_langs ~= langs then index_pairs(had_topics, had_langs, lid, nil) end
  end
  if room then index_pairs(topics, langs, lid, num(f[10])) end
  redis.call('HSET', listener_key(lid), 'ix', want)
end

local function avoids(sid, lid)
  return redis.call('SISMEMBER', 'wl:seeker:' .. sid .. ':blocked', lid) == 1
      or redis.call('SISMEMBER', 'wl:seeker:' .. sid .. ':declined', lid) == 1
end

-- The first seeker of a queue that does not avoid this listener (and passes `accept`, if
-- given), with its score.
local function head_for(qkey, lid, accept)
  local entries = redis.call('ZRANGE', qkey, 0, SCAN_LIMIT - 1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    if not avoids(entries[i], lid) and (accept == nil or accept(entries[i])) then
      return entries[i], tonumber(entries[i + 1])
    end
  end
  return nil, nil
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
  consider(pref_key(lid), function(sid)
    local s = redis.call('HMGET', seeker_key(sid), 'topic', 'lang')
    return takes[(s[1] or '') .. ':' .. (s[2] or '')] == true
  end)
  for _, l in ipairs(langs) do
    for _, t in ipairs(topics) do consider(queue_key(t, l)) end
    consider(any_key(l))
  end
  return best
end

-- Among eligible listeners the one idle longest (lowest idle_since) gets the offer.
local function first_listener(zkey, sid)
  local entries = redis.call('ZRANGE', zkey, 0, SCAN_LIMIT - 1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    if not avoids(sid, entries[i]) then return entries[i], tonumber(entries[i + 1]) end
  end
  return nil, nil
end

local function find_listener_for(sid)
  local s = redis.call('HMGET', seeker_key(sid), 'topic', 'lang', 'pref', 'pref_until', 'widen_at')
  local topic, lang, pref = s[1], s[2], s[3]
  if pref and pref ~= '' and num(s[4]) > NOW then
    if redis.call('ZSCORE', avail_key(topic, lang), pref) and not avoids(sid, pref) then return pref end
    return nil
  end
  local best, best_idle = first_listener(avail_key(topic, lang), sid)
  local widen_at = num(s[5])
  if widen_at > 0 and widen_at <= NOW then
    local other, idle = first_listener(avail_lang_key(lang), sid)
    if other and (best_idle == nil or idle < best_idle) then best = other end
  end
  return best
end

local function unqueue(sid)
  local s = redis.call('HMGET', seeker_key(sid), 'topic', 'lang', 'pref')
  if s[1] then
    redis.call('ZREM', queue_key(s[1], s[2]), sid)
    bump(s[1], s[2])
  end
  if s[2] then redis.call('ZREM', any_key(s[2]), sid) end
  if s[3] and s[3] ~= '' then redis.call('ZREM', pref_key(s[3]), sid) end
  redis.call('ZREM', 'wl:due:widen', sid)
  redis.call('ZREM', 'wl:due:pref', sid)
end

-- Put a seeker in its queues at its own score (its original place after a decline/timeout).
local function enqueue(sid)
  local s = redis.call('HMGET', seeker_key(sid), 'topic', 'lang', 'score', 'pref', 'pref_until', 'widen_at')
  local topic, lang, score = s[1], s[2], s[3]
  redis.call('HSET', seeker_key(sid), 'state', 'queued', 'offer', '')
  bump(topic, lang)
  if s[4] and s[4] ~= '' and num(s[5]) > NOW then
    redis.call('ZADD', pref_key(s[4]), score, sid)
    redis.call('ZADD', 'wl:due:pref', s[5], sid)
    return
  end
  redis.call('ZADD', queue_key(topic, lang), score, sid)
  local widen_at = num(s[6])
  if widen_at > 0 then
    if widen_at <= NOW then
      redis.call('ZADD', any_key(lang), score, sid)
    else
      redis.call('ZADD', 'wl:due:widen', widen_at, sid)
    end
  end
  publish('queued', sid)
end

-- `fresh`: the seeker was never queued for this request (it found a listener at once).
local function make_offer(sid, lid, fresh)
  local oid = new_id('o')
  local s = redis.call('HMGET', seeker_key(sid), 'topic', 'lang', 'tier', 'enq_ms', 'pref')
  local deadline = NOW + OFFER_TIMEOUT
  local preferred = (s[5] == lid) and '1' or '0'
  if not fresh then unqueue(sid) end
  redis.call('HSET', 'wl:offer:' .. oid, 'seeker', sid, 'listener', lid, 'deadline', deadline,
    'topic', s[1], 'lang', s[2], 'tier', s[3], 'enq_ms', s[4], 'preferred', preferred)
  redis.call('EXPIRE', 'wl:offer:' .. oid, TTL)
  redis.call('ZADD', 'wl:offers:due', deadline, oid)
  redis.call('SADD', listener_key(lid) .. ':offers', oid)
  redis.call('HINCRBY', listener_key(lid), 'offers', 1)
  redis.call('HSET', listener_key(lid), 'idle_since', NOW)
  redis.call('HSET', seeker_key(sid), 'state', 'offered', 'offer', oid)
  touch_seeker(sid)
  refresh_listener(lid)
  publish('offer', lid, oid, s[1], s[2], s[3], fmt(deadline), fmt(NOW - num(s[4])), preferred)
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
  if redis.call('HGET', seeker_key(sid), 'state') ~= 'queued' then return end
  local lid = find_listener_for(sid)
  if lid then make_offer(sid, lid) end
end

-- Close an open offer without a chat (declined, timed out, withdrawn): free the listener's slot
-- and, unless the seeker left, put the seeker back at its original place.
local function close_offer(oid, outcome, requeue)
  local o = redis.call('HMGET', 'wl:offer:' .. oid, 'seeker', 'listener', 'topic', 'lang')
  local sid, lid = o[1], o[2]
  if not sid then return nil end
  redis.call('DEL', 'wl:offer:' .. oid)
  redis.call('ZREM', 'wl:offers:due', oid)
  redis.call('SREM', listener_key(lid) .. ':offers', oid)
  if redis.call('HINCRBY', listener_key(lid), 'offers', -1) < 0 then
    redis.call('HSET', listener_key(lid), 'offers', 0)
  end
  if outcome == 'declined' or outcome == 'timed_out' then
    redis.call('HINCRBY', stats_key(o[3], o[4]), outcome, 1)
    redis.call('SADD', 'wl:seeker:' .. sid .. ':declined', lid)
    redis.call('EXPIRE', 'wl:seeker:' .. sid .. ':declined', TTL)
    -- a named listener who did not take the chat: the request widens to everyone at once
    if redis.call('HGET', seeker_key(sid), 'pref') == lid then
      redis.call('HSET', seeker_key(sid), 'pref', '', 'pref_until', 0)
    end
  end
  publish('offer_closed', lid, oid, outcome)
  if requeue and redis.call('HGET', seeker_key(sid), 'offer') == oid then enqueue(sid) end
  refresh_listener(lid)
  return sid, lid
end

local function record_wait(topic, lang, waited_ms, oid)
  local key = 'wl:waits:' .. topic .. ':' .. lang
  redis.call('ZADD', key, NOW, fmt(waited_ms) .. ':' .. oid)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. fmt(NOW - WAIT_WINDOW_MS))
  extend(key, WAIT_WINDOW_MS / 1000 + 60)
  bump(topic, lang)
end

-- A seeker's position (1 = next) in its own queue and an estimated wait in seconds from the
-- queue's recent service rate: offers accepted over the last 15 minutes, over the time they
-- span (at least a minute, so one early chat does not promise a wait of seconds); 0 = unknown.
local function position_of(sid)
  local s = redis.call('HMGET', seeker_key(sid), 'topic', 'lang', 'pref', 'state')
  if s[4] ~= 'queued' and s[4] ~= 'offered' then return 0, 0 end
  if s[4] == 'offered' then return 1, 0 end  -- next: a listener is deciding
  local rank = redis.call('ZRANK', queue_key(s[1], s[2]), sid)
  if not rank and s[3] and s[3] ~= '' then rank = redis.call('ZRANK', pref_key(s[3]), sid) end
  if not rank then return 1, 0 end
  local waits = 'wl:waits:' .. s[1] .. ':' .. s[2]
  local served = redis.call('ZCOUNT', waits, NOW - WAIT_WINDOW_MS, '+inf')
  if served == 0 then return rank + 1, 0 end
  local oldest = redis.call('ZRANGEBYSCORE', waits, NOW - WAIT_WINDOW_MS, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  local span = math.max(60000, NOW - tonumber(oldest[2]))
  return rank + 1, math.ceil((rank + 1) * span / served / 1000)
end

-- End an open chat (either side, the relay for an idle chat, or the sweep for a chat that outlived
-- --state-ttl-s / 2): free the listener's slot, tell both sides and the relay, delete the chat's
-- relay log, and match the listener again at once. `by`: seeker | listener | idle | expired.
local function finish_chat(session, by)
  local c = redis.call('HMGET', 'wl:session:' .. session, 'seeker', 'listener', 'state')
  if not c[1] or c[3] ~= 'active' then return nil, nil end
  local sid, lid = c[1], c[2]
  redis.call('HSET', 'wl:session:' .. session, 'state', 'ended', 'ended', NOW, 'ended_by', by)
  redis.call('ZREM', 'wl:sessions', session)
  redis.call('SREM', listener_key(lid) .. ':chats', session)
  if redis.call('HINCRBY', listener_key(lid), 'chats', -1) < 0 then redis.call('HSET', listener_key(lid), 'chats', 0) end
  if redis.call('HGET', seeker_key(sid), 'session') == session then
    redis.call('HSET', seeker_key(sid), 'state', 'ended')
    touch_seeker(sid)
  end
  refresh_listener(lid)
  publish('ended', session, sid, lid, by)
  -- the relay's share of the chat goes with it: its processes are told, its log is deleted
  -- (channel and message as the relay's to_node() writes them: services/relay/lua/lib.lua)
  local r = redis.call('HMGET', 'wl:relay:' .. session, 'node_s', 'node_l')
  for i, role in ipairs({ 's', 'l' }) do
    if r[i] and r[i] ~= '' then
      redis.call('PUBLISH', 'wl:relaynode:' .. r[i], 'ended|' .. session .. '|' .. role .. '|' .. by)
    end
  end
  redis.call('DEL', 'wl:relay:' .. session, 'wl:log:' .. session .. ':s', 'wl:log:' .. session .. ':l')
  redis.call('ZREM', 'wl:relay:active', session)
  match_listener(lid)
  return sid, lid
end
