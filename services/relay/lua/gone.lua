-- A connection closed. ARGV[5] = its connection id. If it still stood for its side, nothing is
-- forwarded to its process until the side says hello again (the log keeps everything).
if redis.call('HGET', RKEY, 'conn_' .. ROLE) == ARGV[5] then
  redis.call('HSET', RKEY, 'node_' .. ROLE, '', 'conn_' .. ROLE, '')
end
return { 'ok' }
