-- A listener signs in with a token (ARGV[8] = its SHA-256) from process ARGV[9], with its
-- clock's offset east of UTC in minutes ARGV[10] (where its "today" starts; the last sign-in's
-- wins); [11] that process's lease ms. Returns {'ok', listener id} after counting the connection on that process.
local who = redis.call('GET', K.token(ARGV[8]))
if not who or string.sub(who, 1, 9) ~= 'listener:' then
  return err('UNAUTHENTICATED', 'That listener token is not valid. Ask an admin for a new one.')
end
local lid = string.sub(who, 10)
if redis.call('HGET', K.listener(lid), 'revoked') == '1' then
  return err('UNAUTHENTICATED', 'This listener account has been revoked.')
end
local node = ARGV[9]
lease_at_least(node, tonumber(ARGV[11]))
redis.call('HINCRBY', K.listener_conns(lid), node, 1)
redis.call('SADD', K.node_listeners(node), lid)
redis.call('HSET', K.listener(lid), 'utc_offset', ARGV[10])
redis.call('HINCRBY', K.listener(lid), 'sessions', 1)
return { 'ok', lid }
