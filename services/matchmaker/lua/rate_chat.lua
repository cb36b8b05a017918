-- After a chat the seeker rates it and may block the listener. ARGV[6] = seeker id,
-- [7] session id, [8] stars 1-5, [9] comment, [10] '1' to block.
local sid, session = ARGV[6], ARGV[7]
local c = redis.call('HMGET', K.session(session), 'seeker', 'listener', 'state', 'rated')
if not c[1] or c[1] ~= sid then return err('NOT_FOUND', 'That chat could not be found.') end
if c[3] ~= 'ended' then return err('WRONG_STATE', 'A chat can be rated once it has ended.') end
if c[4] == '1' then return err('WRONG_STATE', 'This chat has already been rated.') end
local lid = c[2]
redis.call('HSET', K.session(session), 'rated', '1')
redis.call('HSET', K.rating(session), 'listener', lid, 'stars', ARGV[8], 'comment', ARGV[9], 'at', NOW)
redis.call('EXPIRE', K.rating(session), 30 * 24 * 3600)
redis.call('HINCRBY', K.listener(lid), 'rating_sum', tonumber(ARGV[8]))
redis.call('HINCRBY', K.listener(lid), 'rating_count', 1)
if ARGV[10] == '1' then
  redis.call('SADD', K.blocked(sid), lid)
  redis.call('EXPIRE', K.blocked(sid), TTL)
  touch_seeker(sid)
end
return { 'ok' }
