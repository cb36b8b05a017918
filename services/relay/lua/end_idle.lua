-- The relay's idle sweep of one bucket: the chats nobody has written in since ARGV[5] (unix ms),
-- oldest first, at most ARGV[6] of them (SESSION and ROLE are unused). The relay then ends each
-- on the control Redis (finish.lua, by idle) and purges it (purge.lua): a chat stays in the
-- index until then, so a relay that dies in between leaves it for the next sweep. An entry
-- whose chat has no record any more (it expired without an end) is dropped here.
-- Returns {'ok', chat id, ...}.
local out = { 'ok' }
for _, session in ipairs(redis.call('ZRANGEBYSCORE', ACTIVE, '-inf', '(' .. ARGV[5], 'LIMIT', 0, tonumber(ARGV[6]))) do
  if redis.call('EXISTS', K.relay(BUCKET, session)) == 1 then
    out[#out + 1] = session
  else
    redis.call('ZREM', ACTIVE, session)
  end
end
return out
