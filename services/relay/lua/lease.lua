-- A relay process's lease, on Redis's clock (KEYS[1] = wl:{relay}:nodes, [2] wl:{relay}:clock;
-- SESSION and ROLE unused). ARGV[5] = this node, [6] its lease (ms). Renews it; after a gap of
-- more than a lease since any relay last did this (Redis unreachable for all, or no relay
-- running), every lease is extended first, so that nobody is judged dead by the outage.
-- Returns {'ok', node whose lease ran out, ...}: the presence sweep lets their sides go in
-- every bucket, then drop_nodes.lua removes them.
local node, lease = ARGV[5], tonumber(ARGV[6])
local clock = redis_ms()
local last = tonumber(redis.call('GET', KEYS[2]))
redis.call('SET', KEYS[2], fmt(clock))
if last and clock - last > lease then
  for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    redis.call('ZADD', KEYS[1], 'GT', fmt(clock + 2 * lease), n)
  end
end
redis.call('ZADD', KEYS[1], fmt(clock + lease), node)
local out = { 'ok' }
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', fmt(clock), 'LIMIT', 0, 100)) do
  out[#out + 1] = dead
end
return out
