-- "I need support": a listener's request for a supervisor (docs/protocol.md 4.22); its side
-- chat's lines are support_say.lua. ARGV[8] = action; the rest by action:
--   ask     [9] listener id, [10] their public key (32 bytes), [11] how long a request is kept (s)
--   answer  [9] supervisor id, [10] support id, [11] their public key (32 bytes)
--   end     [9] role ('listener' | 'supervisor'), [10] that side's id, [11] support id
-- Returns {'ok', support id}. Every change publishes SupportChanged, whose receivers read the
-- record.
local action = ARGV[8]

local function changed(id, lid) match_event(10, PB.bytes(1, id) .. PB.bytes(2, lid)) end

if action == 'ask' then
  local lid = ARGV[9]
  local refusal = listener_refusal(lid)
  if refusal then return refusal end
  local open = redis.call('HGET', K.listener(lid), 'support')
  if open and open ~= '' then
    local state = redis.call('HGET', K.support(open), 'state')
    if state == 'waiting' or state == 'answered' then return { 'ok', open } end
  end
  local id = new_id('h')
  redis.call('HSET', K.support(id), 'listener', lid, 'state', 'waiting', 'asked', NOW, 'lkey', ARGV[10])
  redis.call('EXPIRE', K.support(id), tonumber(ARGV[11]))
  redis.call('ZADD', K.supports, NOW, id)
  redis.call('ZREMRANGEBYSCORE', K.supports, '-inf', '(' .. fmt(NOW - tonumber(ARGV[11]) * 1000))
  redis.call('HSET', K.listener(lid), 'support', id)
  changed(id, lid)
  return { 'ok', id }
end

if action == 'answer' then
  local id = ARGV[10]
  local s = redis.call('HMGET', K.support(id), 'listener', 'state')
  if not s[1] then return err('NOT_FOUND', 'That request for support is no longer open.') end
  if s[2] ~= 'waiting' then
    if s[2] == 'answered' then return err('WRONG_STATE', 'Another supervisor is already with them.') end
    return err('NOT_FOUND', 'That request for support is no longer open.')
  end
  redis.call('HSET', K.support(id), 'state', 'answered', 'supervisor', ARGV[9], 'skey', ARGV[11], 'answered', NOW)
  changed(id, s[1])
  return { 'ok', id }
end

if action == 'end' then
  local role, id = ARGV[9], ARGV[11]
  local s, refusal = support_side(id, role, ARGV[10])
  if refusal then return refusal end
  redis.call('HSET', K.support(id), 'state', 'closed', 'closed_by', role, 'closed', NOW)
  redis.call('ZREM', K.supports, id)
  if redis.call('HGET', K.listener(s[1]), 'support') == id then redis.call('HDEL', K.listener(s[1]), 'support') end
  changed(id, s[1])
  return { 'ok', id }
end
return err('INVALID_ARGUMENT', 'unknown support action')
