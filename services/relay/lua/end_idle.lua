-- The relay's idle sweep: ends, in one atomic step, the chats nobody has written in since
-- ARGV[5] (unix ms), oldest first, at most ARGV[6] of them (SESSION and ROLE are unused), as finish_chat(..., 'idle') does for
-- one. An entry whose chat is no longer open (its record expired without an end) is dropped
-- from the index, so such entries never pile up in front of real idle chats. Every relay process
-- sweeps; whichever comes first ends a chat, and the others find nothing left.
-- Returns {'ok', number of chats ended}.
local ended = 0
for _, session in ipairs(redis.call('ZRANGEBYSCORE', K.relay_active, '-inf', '(' .. ARGV[5], 'LIMIT', 0, tonumber(ARGV[6]))) do
  if finish_chat(session, 'idle') then
    ended = ended + 1
  else
    redis.call('ZREM', K.relay_active, session)
  end
end
return { 'ok', ended }
