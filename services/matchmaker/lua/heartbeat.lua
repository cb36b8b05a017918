-- A matchmaker process renews its lease. ARGV[6] = node id, [7] lease ms. The lease is kept
-- on Redis's clock (redis_ms), so no process's clock decides whether another is alive.
redis.call('ZADD', K.nodes, fmt(redis_ms() + tonumber(ARGV[7])), ARGV[6])
return { 'ok' }
