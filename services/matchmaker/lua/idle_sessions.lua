-- Chats nobody has written in since ARGV[6] (unix ms), oldest first, at most ARGV[7] of them:
-- the relay ends each with end_session(..., 'idle'). Read-only.
-- Returns {'ok', session id, ...}.
local out = { 'ok' }
for _, session in ipairs(redis.call('ZRANGEBYSCORE', 'wl:relay:active', '-inf', '(' .. ARGV[6], 'LIMIT', 0, tonumber(ARGV[7]))) do
  out[#out + 1] = session
end
return out
