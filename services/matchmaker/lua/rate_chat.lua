-- After a chat the seeker rates it and may block the listener. ARGV[8] = seeker id,
-- [9] session id, [10] stars 1-5, [11] comment, [12] '1' to block.
local sid, session = ARGV[8], ARGV[9]
local c = redis.call('HMGET', K.session(session), 'seeker', 'listener', 'state', 'rated')
if not c[1] or c[1] ~= sid then return err('NOT_FOUND', 'That chat could not be found.') end
if c[3] ~= 'ended' then return err('WRONG_STATE', 'A chat can be rated once it has ended.') end
if c[4] == '1' then return err('WRONG_STATE', 'This chat has already been rated.') end
local lid = c[2]
redis.call('HSET', K.session(session), 'rated', '1')
redis.call('HSET', K.rating(session), 'listener', lid, 'stars', ARGV[10], 'comment', ARGV[11], 'at', NOW)
redis.call('EXPIRE', K.rating(session), 30 * 24 * 3600)
redis.call('HINCRBY', K.listener(lid), 'rating_sum', tonumber(ARGV[10]))
redis.call('HINCRBY', K.listener(lid), 'rating_count', 1)
if ARGV[12] == '1' then
  redis.call('SADD', K.blocked(sid), lid)
  redis.call('EXPIRE', K.blocked(sid), TTL)
  touch_seeker(sid)
end
return { 'ok' }
