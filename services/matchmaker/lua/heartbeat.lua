-- A matchmaker process renews its lease. ARGV[8] = node id, [9] lease ms. The lease is kept
-- on Redis's clock (redis_ms), so no process's clock decides whether another is alive. Like a
-- sweep, a heartbeat first looks whether nobody could reach Redis for longer than a lease.
local lease = tonumber(ARGV[9])
local clock = after_outage(lease, true)
redis.call('ZADD', K.nodes, fmt(clock + lease), ARGV[8])
return { 'ok' }
