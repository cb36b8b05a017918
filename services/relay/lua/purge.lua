-- The control Redis has ended this chat (finish.lua, or the matchmaker's finish_chat, queued in
-- wl:relay:ended): tell the sides this chat's relay processes hold (ARGV[5] = the ChatEnded),
-- then delete its record, both logs and its entries in the bucket's indexes. Idempotent.
-- Returns {'ok'}.
local r = redis.call('HMGET', RKEY, 'node_s', 'node_l')
relay_event(r[1], SESSION, 's', PB.msg(14, ARGV[5]))
relay_event(r[2], SESSION, 'l', PB.msg(14, ARGV[5]))
for _, role in ipairs({ 's', 'l' }) do
  local side = SESSION .. '|' .. role
  redis.call('ZREM', ABSENT, side)
  redis.call('ZREM', AWAY, side)
  redis.call('HDEL', SIDES, side)
end
redis.call('DEL', RKEY, LOG.s, LOG.l)
redis.call('ZREM', ACTIVE, SESSION)
return { 'ok' }
