-- The processes ARGV[5..] were found dead (lease.lua) and their sides let go in every bucket:
-- remove them from wl:{relay}:nodes (KEYS[1]), unless one renewed its lease meanwhile (a stalled
-- process that came back). Returns {'ok'}.
local clock = redis_ms()
for i = 5, #ARGV do
  local lease = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]))
  if lease and lease <= clock then redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return { 'ok' }
