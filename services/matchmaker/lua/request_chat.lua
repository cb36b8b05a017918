-- A seeker asks for someone to talk to. ARGV[8] = seeker id, [9] topic, [10] language,
-- [11] tier (0 crisis, 1 normal), [12] preferred listener id or '', [13] preference window ms,
-- [14] widen-after ms (0: never). Queues the seeker and matches at once. A crisis request
-- widens to every listener of its language after CRISIS_WIDEN at the latest.
-- Returns {'ok', state, position, estimate_s, nobody (1: no listener available now may take it)}.
local sid, topic, lang, tier = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local pref, pref_window, widen_after = ARGV[12], tonumber(ARGV[13]), tonumber(ARGV[14])
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
redis.call('DEL', K.cooldown(sid))
redis.call('HSET', K.seeker(sid), 'state', 'queued', 'topic', topic, 'lang', lang, 'tier', tier, 'score', fmt(score),
  'enq_ms', NOW, 'pref', pref, 'pref_until', pref_until, 'widen_at', widen_at, 'session', '', 'offer', '',
  'abandoned', 0, 'parked', 0)
waiting_add(sid, topic, lang, tier, NOW)
if tier == 0 then
  -- the fleet's crisis requests per minute, for the supervisors' spike alert; kept an hour and
  -- five minutes, as the alert compares the last 5 minutes with the hour before them
  local minute = K.crisis_minute(fmt(math.floor(NOW / 60000)))
  if redis.call('INCR', minute) == 1 then redis.call('PEXPIRE', minute, 66 * 60000) end
end
-- Every state change ends by matching, so no listener with room has an older seeker it could
-- take: a free listener now goes to this seeker, and only one who finds none is queued.
local lid = find_listener_for(sid)
if lid then make_offer(sid, lid, true) else enqueue(sid) end
touch_seeker(sid)
local position, estimate, nobody = position_of(sid)
return { 'ok', lid and 'offered' or 'queued', position, estimate, nobody and 1 or 0 }
