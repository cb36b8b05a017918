-- A seeker asks for someone to talk to. ARGV[8] = seeker id, [9] topic, [10] language,
-- [11] tier (0 crisis, 1 normal), [12] preferred listener id or '', [13] preference window ms,
-- [14] widen-after ms (0: never), [15] the client's address hash ('' unknown), [16] the window
-- (ms) over which listeners' reports of a seeker count, [17] how many listeners reporting this
-- seeker, [18] or seekers of its address, put its requests on hold (0: never), [19] the hold
-- (ms) after the latest such report, [20] where the seeker is (a region code, or '': for the
-- crisis lines a resumed connection is shown). Queues the seeker and matches at once. A crisis request
-- widens to every listener of its language after CRISIS_WIDEN at the latest.
-- Returns {'ok', state, position, estimate_s, nobody (1: no listener available now may take it),
-- held_s (the request is on hold this many more seconds)}.
local sid, topic, lang, tier = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local pref, pref_window, widen_after = ARGV[12], tonumber(ARGV[13]), tonumber(ARGV[14])
local addr, window, by_seeker, by_addr, hold = ARGV[15], tonumber(ARGV[16]), tonumber(ARGV[17]),
  tonumber(ARGV[18]), tonumber(ARGV[19])
local state = redis.call('HGET', K.seeker(sid), 'state')
if not state then return err('RESUME_FAILED', 'This connection has expired; please reconnect.') end
if state == 'queued' or state == 'offered' then
  return err('WRONG_STATE', 'You are already waiting for a listener.')
end
if state == 'chat' then return err('WRONG_STATE', 'You are already in a chat; end it first.') end
local seq = redis.call('INCR', K.seq) % 1000
local score = TIER_BASE[tier] + NOW * 1000 + seq
-- naming a listener one has blocked names nobody
if pref ~= '' and redis.call('SISMEMBER', K.blocked(sid), pref) == 1 then pref = '' end
local pref_until = 0
if pref ~= '' then pref_until = NOW + pref_window end
-- in a crisis, waiting for one named listener lasts no longer than the crisis wait
if tier == 0 and CRISIS_WIDEN > 0 and pref_until > NOW + CRISIS_WIDEN then pref_until = NOW + CRISIS_WIDEN end
local widen_at = 0
if widen_after > 0 then widen_at = NOW + widen_after end
if tier == 0 and CRISIS_WIDEN > 0 and (widen_at == 0 or widen_at > NOW + CRISIS_WIDEN) then
  widen_at = NOW + CRISIS_WIDEN
end
-- Reported by several listeners (this seeker, or seekers of its address) within the window: the
-- request waits outside the queues until the hold after the latest such report is over.
local hold_until = 0
local function hold_from(key, threshold)
  if threshold <= 0 then return end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. fmt(NOW - window))
  if redis.call('ZCARD', key) < threshold then return end
  local latest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  hold_until = math.max(hold_until, tonumber(latest[2]) + hold)
end
hold_from(K.seeker_reported(sid), by_seeker)
if addr ~= '' then hold_from(K.address_reported(addr), by_addr) end
if hold_until <= NOW then hold_until = 0 end
redis.call('DEL', K.cooldown(sid))
redis.call('HSET', K.seeker(sid), 'state', 'queued', 'topic', topic, 'lang', lang, 'tier', tier, 'score', fmt(score),
  'enq_ms', NOW, 'pref', pref, 'pref_until', pref_until, 'widen_at', widen_at, 'session', '', 'offer', '',
  'abandoned', 0, 'parked', 0, 'addr', addr, 'hold_until', hold_until, 'region', ARGV[20] or '')
waiting_add(sid, topic, lang, tier, NOW)
if tier == 0 then
  -- the fleet's crisis requests per minute, for the supervisors' spike alert; kept an hour and
  -- five minutes, as the alert compares the last 5 minutes with the hour before them
  local minute = K.crisis_minute(fmt(math.floor(NOW / 60000)))
  if redis.call('INCR', minute) == 1 then redis.call('PEXPIRE', minute, 66 * 60000) end
end
-- Every state change ends by matching, so no listener with room has an older seeker it could
-- take: a free listener now goes to this seeker, and only one who finds none is queued.
local lid = nil
if hold_until == 0 then lid = find_listener_for(sid) end
if lid then make_offer(sid, lid, true) else enqueue(sid) end
touch_seeker(sid)
local position, estimate, nobody, held_s = position_of(sid)
return { 'ok', lid and 'offered' or 'queued', position, estimate, nobody and 1 or 0, held_s }
