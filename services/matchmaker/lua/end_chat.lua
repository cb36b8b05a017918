-- Either side ends a chat. ARGV[8] = role ('seeker' | 'listener'), [9] that side's id,
-- [10] session id. Frees the listener's slot and matches at once.
local role, who, session = ARGV[8], ARGV[9], ARGV[10]
if role == 'listener' then
  local refusal = listener_refusal(who)
  if refusal then return refusal end
end
local c = redis.call('HMGET', K.session(session), 'seeker', 'listener', 'state')
if not c[1] or c[3] ~= 'active' then return err('NOT_FOUND', 'That chat is not open.') end
if (role == 'seeker' and c[1] ~= who) or (role == 'listener' and c[2] ~= who) then
  return err('PERMISSION_DENIED', 'That chat is not yours to end.')
end
local sid, lid = finish_chat(session, role)
return { 'ok', sid, lid }
