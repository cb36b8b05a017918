-- The second prelude of every Warmline script (after base.lua): the state both services change.
-- It owns the end of a chat (finish_chat: the one place a chat ends, whoever ends it: either
-- side through the matchmaker or the relay, the relay's idle and presence sweeps, the
-- matchmaker's expiry sweep) and what ending needs: a listener's availability indexes and the
-- queues a seeker waits in. The matching rules themselves are the matchmaker's
-- (services/matchmaker/lua/lib.lua); a script that cannot match (the relay's) leaves the freed
-- listener in wl:due:match for the matchmakers' sweep.

-- A queue's score: tier base (crisis first), then enqueue time. Arrivals take
-- TIER_BASE + now * 1000 + a sequence (about 1.8e15 + ...); a seeker put back at the front of
-- its tier takes TIER_BASE + now (about 1.8e12), ahead of every arrival of the tier and behind
-- every earlier one put back.
local TIER_BASE = { [0] = 0, [1] = 4000000000000000 }
-- A seeker whose listener was lost is not offered to that listener again for this long.
local PEER_LOST_AVOID_MS = 10 * 60 * 1000

-- Every change that can move a position or an estimate in a topic x language queue (someone
-- joins or leaves it, an offer there is accepted) bumps its version, so the processes recompute
-- positions only for seekers whose queue changed.
local function bump(topic, lang) redis.call('INCR', K.queue_version(topic, lang)) end

local touched = {}
local function touch_seeker(sid)
  if touched[sid] then return end
  touched[sid] = true
  if not stale(K.seeker(sid), TTL) then return end
  redis.call('EXPIRE', K.seeker(sid), TTL)
  -- blocks last as long as the anonymous identity that made them
  redis.call('EXPIRE', K.blocked(sid), TTL)
  local h = redis.call('HGET', K.seeker(sid), 'resume')
  if h then redis.call('EXPIRE', K.resume(h), TTL) end
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

-- Every open request of a pair (queued, being offered or parked), by when it was made: for
-- supervisors' counts. Crisis requests are also in their own set.
local function waiting_add(sid, topic, lang, tier, at)
  redis.call('ZADD', K.waiting(topic, lang), at, sid)
  extend(K.waiting(topic, lang), TTL)
  if tonumber(tier) == 0 then
    redis.call('ZADD', K.waiting_crisis(topic, lang), at, sid)
    extend(K.waiting_crisis(topic, lang), TTL)
  end
end

local function waiting_remove(sid, topic, lang)
  redis.call('ZREM', K.waiting(topic, lang), sid)
  redis.call('ZREM', K.waiting_crisis(topic, lang), sid)
end

-- The pairs of a listener's scope: calls f(topic, lang) for each, and f(nil, lang) once per
-- language.
local function each_pair(topics, langs, f)
  for _, l in ipairs(split(langs)) do
    for _, t in ipairs(split(topics)) do f(t, l) end
    f(nil, l)
  end
end

local function index_pairs(topics, langs, lid, score)
  for _, l in ipairs(split(langs)) do
    for _, t in ipairs(split(topics)) do
      if score then redis.call('ZADD', K.avail(t, l), score, lid) else redis.call('ZREM', K.avail(t, l), lid) end
    end
    if score then redis.call('ZADD', K.avail_lang(l), score, lid) else redis.call('ZREM', K.avail_lang(l), lid) end
  end
end

-- Keep the availability indexes true to the listener's hash: present in wl:avail:<t>:<l> for
-- every pair they take now and in wl:availlang:<l> (scored by idle_since, oldest first) exactly
-- while they have room. The hash field `ix` records what is indexed ('' for nothing, else
-- 'score|topics|languages'), so a refresh that changes nothing costs one read, one that only
-- moves the score is a ZADD per pair, and only a change of scope removes anything.
local function refresh_listener(lid)
  local f = redis.call('HMGET', K.listener(lid), 'topics', 'langs', 'atopics', 'alangs', 'status', 'chats',
    'offers', 'max', 'revoked', 'idle_since', 'ix', 'on')
  local topics, langs = active_csv(f[1], f[2], f[3], f[4])
  -- Who is there to take a pair at all (available, with room or not): wl:online:<t>:<l> and
  -- wl:onlinelang:<l>, recorded in `on` ('topics|languages' or ''). Whether anyone may take a
  -- waiting seeker is read from them, and a change moves the positions of the pairs concerned.
  local want_on = (f[5] == 'available' and f[9] ~= '1') and (topics .. '|' .. langs) or ''
  local have_on = f[12] or ''
  if have_on ~= want_on then
    if have_on ~= '' then
      local _, _, on_topics, on_langs = string.find(have_on, '^([^|]*)|(.*)$')
      each_pair(on_topics, on_langs, function(t, l)
        if t then redis.call('SREM', K.online(t, l), lid); bump(t, l)
        else redis.call('SREM', K.online_lang(l), lid) end
      end)
    end
    if want_on ~= '' then
      each_pair(topics, langs, function(t, l)
        if t then redis.call('SADD', K.online(t, l), lid); bump(t, l)
        else redis.call('SADD', K.online_lang(l), lid) end
      end)
    end
    redis.call('HSET', K.listener(lid), 'on', want_on)
  end
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
  redis.call('HSET', K.listener(lid), 'ix', want)
end

local function unqueue(sid)
  local s = redis.call('HMGET', K.seeker(sid), 'topic', 'lang', 'pref')
  if s[1] then
    redis.call('ZREM', K.queue(s[1], s[2]), sid)
    bump(s[1], s[2])
  end
  if s[2] then redis.call('ZREM', K.queue_any(s[2]), sid) end
  if s[3] and s[3] ~= '' then redis.call('ZREM', K.queue_pref(s[3]), sid) end
  redis.call('ZREM', K.due_widen, sid)
  redis.call('ZREM', K.due_pref, sid)
  redis.call('ZREM', K.due_hold, sid)
end

-- Put a seeker in its queues at its own score (its original place after a decline/timeout). A
-- request on hold (listeners reported this seeker, request_chat.lua) waits outside the queues,
-- in wl:due:hold, until the sweep lets it in.
local function enqueue(sid)
  local s = redis.call('HMGET', K.seeker(sid), 'topic', 'lang', 'score', 'pref', 'pref_until', 'widen_at', 'hold_until')
  local topic, lang, score = s[1], s[2], s[3]
  redis.call('HSET', K.seeker(sid), 'state', 'queued', 'offer', '')
  bump(topic, lang)
  if num(s[7]) > NOW then
    redis.call('ZADD', K.due_hold, s[7], sid)
    return
  end
  if s[4] and s[4] ~= '' and num(s[5]) > NOW then
    redis.call('ZADD', K.queue_pref(s[4]), score, sid)
    redis.call('ZADD', K.due_pref, s[5], sid)
    return
  end
  redis.call('ZADD', K.queue(topic, lang), score, sid)
  local widen_at = num(s[6])
  if widen_at > 0 then
    if widen_at <= NOW then
      redis.call('ZADD', K.queue_any(lang), score, sid)
    else
      redis.call('ZADD', K.due_widen, widen_at, sid)
    end
  end
  match_event(3, PB.bytes(1, sid))
end

-- What happens once a chat has ended and freed a listener's slot (and, when its listener was
-- lost, put its seeker back in line). A script that can match (the matchmaker's prelude sets
-- this) matches at once; the default leaves both to the matchmakers' sweep (wl:due:match),
-- which every matchmaker process runs every few hundred ms.
local after_chat_end = function(sid, lid, requeued)
  redis.call('ZADD', K.due_match, NOW, 'l:' .. lid)
  if requeued then redis.call('ZADD', K.due_match, NOW, 's:' .. sid) end
end

-- A chat starts unseen by the relay until either side says hello there (a chat neither side
-- ever joins ends as lost: the relay's sweep, services/relay/store.cpp).
local function chat_presence_start(session)
  redis.call('ZADD', K.relay_unseen, NOW, session)
end

-- The seeker of a chat whose listener was lost goes back to the front of the line in its tier,
-- not to that listener (lost_lid, if given) again for a while; parked if it is not connected to
-- a matchmaker now (its grace period, if already over, ends the request at the next sweep).
local function requeue_front(sid, lost_lid)
  local s = redis.call('HMGET', K.seeker(sid), 'topic', 'lang', 'tier', 'conn')
  local tier = tonumber(s[3]) or 1
  redis.call('HSET', K.seeker(sid), 'state', 'queued', 'score', fmt(TIER_BASE[tier] + NOW), 'enq_ms', NOW,
    'offer', '', 'session', '', 'pref', '', 'pref_until', 0)
  if lost_lid then
    -- not offered to the listener who was lost for a while; then the sweep matches again
    redis.call('ZADD', K.cooldown(sid), fmt(NOW + PEER_LOST_AVOID_MS), lost_lid)
    redis.call('EXPIRE', K.cooldown(sid), TTL)
    redis.call('ZADD', K.due_cooldown, fmt(NOW + PEER_LOST_AVOID_MS), sid .. '|' .. lost_lid)
  end
  waiting_add(sid, s[1], s[2], tier, NOW)
  if s[4] == '1' then
    enqueue(sid)
  else
    redis.call('HSET', K.seeker(sid), 'parked', 1)
    redis.call('ZADD', K.gone, 'NX', NOW, sid)
    bump(s[1], s[2])
  end
  touch_seeker(sid)
end

-- A listener whose break is due (lib.lua, break_now) rests from the moment their last open chat
-- ends, for their admin-set break length (`break_min`, 15 minutes if unset); they are told, so
-- that their page starts the timer.
local function rest_if_due(lid)
  local f = redis.call('HMGET', K.listener(lid), 'break_due', 'chats', 'rest_until', 'break_min')
  if f[1] ~= '1' or num(f[2]) > 0 or num(f[3]) > 0 then return end
  local minutes = num(f[4]) > 0 and num(f[4]) or 15
  redis.call('HSET', K.listener(lid), 'rest_until', fmt(NOW + minutes * 60000))
  match_event(6, PB.bytes(1, lid) .. PB.uint(2, 0))
end

-- End an open chat: free the listener's slot, tell both sides through the matchmakers, queue
-- the relay's records for deletion (the relays tell the sides they hold), then match the
-- listener again. by: seeker | listener | idle | expired | peer_lost; with peer_lost, `lost`
-- ('s' | 'l') is the side that was gone, and a lost listener's seeker goes back to the front of
-- the line (so does a seeker who is here but lost the chat's keys: requeue_seeker).
-- Returns the seeker and listener ids, or nil when the chat is not open.
local function finish_chat(session, by, lost, requeue_seeker)
  local c = redis.call('HMGET', K.session(session), 'seeker', 'listener', 'state', 'topic', 'lang')
  if not c[1] or c[3] ~= 'active' then return nil, nil end
  local sid, lid = c[1], c[2]
  redis.call('HSET', K.session(session), 'state', 'ended', 'ended', NOW, 'ended_by', by, 'lost', lost or '')
  redis.call('ZREM', K.sessions, session)
  redis.call('SREM', K.listener_chats(lid), session)
  if redis.call('HINCRBY', K.listener(lid), 'chats', -1) < 0 then redis.call('HSET', K.listener(lid), 'chats', 0) end
  rest_if_due(lid)
  local requeued = false
  if redis.call('HGET', K.seeker(sid), 'session') == session then
    if by == 'peer_lost' and (lost == 'l' or requeue_seeker) then
      requeue_front(sid, lost == 'l' and lid or nil)
      requeued = true
    else
      redis.call('HSET', K.seeker(sid), 'state', 'ended')
      touch_seeker(sid)
    end
  end
  if by == 'peer_lost' then redis.call('HINCRBY', K.stats(c[4], c[5]), 'peer_lost', 1) end
  refresh_listener(lid)
  local ended = chat_ended_pb(session, by, lost, requeued)
  match_event(5, PB.bytes(1, sid) .. PB.bytes(2, lid) .. PB.msg(3, ended))
  -- the relay's share of the chat lives in the chat Redis (maybe a Cluster), which no script
  -- here can reach: the relays delete it and tell the sides they hold (wl:relay:ended)
  redis.call('HSET', K.session(session), 'ended_pb', ended)
  redis.call('ZREM', K.relay_unseen, session)
  redis.call('ZADD', K.relay_ended, NOW, session)
  after_chat_end(sid, lid, requeued)
  return sid, lid
end
