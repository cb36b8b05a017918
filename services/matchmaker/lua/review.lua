-- The safety team reviews a report (docs/protocol.md 4.23). ARGV[8] = who ('supervisor:<id>' or
-- 'admin:<name>'), [9] report id (the session id, with ':l' for a listener's report),
-- [10] status ('open' | 'reviewed' | 'actioned' | 'dismissed'; '' keeps it, or 'actioned' with an
-- action), [11] action on the report's listener ('' | 'suspend' | 'revoke' | 'reinstate'),
-- [12] a note for the safety team ('' keeps the one there). Returns {'ok', listener id, status}.
local who, id, status, action, note = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local session, side = string.match(id, '^(.-)(:l)$')
local key = side and K.listener_report(session) or K.report(id)
local r = redis.call('HMGET', key, 'listener', 'status')
if not r[1] then return err('NOT_FOUND', 'That report could not be found; reports are kept 90 days.') end
local lid = r[1]
if action ~= '' then
  if redis.call('EXISTS', K.listener(lid)) == 0 then return err('NOT_FOUND', 'That listener account no longer exists.') end
  if action == 'suspend' then
    suspend_listener(lid, 'review')
  elseif action == 'revoke' then
    if redis.call('HGET', K.listener(lid), 'revoked') ~= '1' then revoke_listener(lid) end
  elseif action == 'reinstate' then
    if redis.call('HGET', K.listener(lid), 'revoked') == '1' then
      return err('WRONG_STATE', 'A revoked account cannot be reinstated; an admin can create a new one.')
    end
    redis.call('HSET', K.listener(lid), 'suspended', '0', 'suspended_why', '')
    tell_listener(lid, 'profile')
  else
    return err('INVALID_ARGUMENT', 'unknown action')
  end
  if status == '' then status = 'actioned' end
end
if status == '' then status = r[2] or 'open' end
redis.call('HSET', key, 'status', status, 'reviewed_by', who, 'reviewed_at', NOW)
if note ~= '' then redis.call('HSET', key, 'note', note) end
if status == 'open' then
  redis.call('ZADD', K.reports_open, redis.call('HGET', key, 'at'), id)
else
  redis.call('ZREM', K.reports_open, id)
end
return { 'ok', lid, status }
