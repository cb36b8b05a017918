-- Store one sealed message, then forward it. ARGV[5] = seq, [6] ciphertext, [7] most entries
-- kept per direction, [8] most messages the other side may be behind before sends are refused,
-- [9] '1' when the Ack waits for replicas (WAIT): a resend then writes too, so that the WAIT
-- after it covers the first copy even if that was written on an earlier connection, [10] the
-- sending connection's id. A connection this side has been taken over from (a newer hello, on
-- any relay) may no longer send; a resend must be the very message stored under its seq: two
-- tabs sealing different messages under one seq would reuse one key and nonce.
-- Returns {'ok', 'stored' | 'duplicate'}.
local f = redis.call('HMGET', RKEY, 'sent_' .. ROLE, 'recv_' .. PEER, 'node_' .. PEER, 'pub_' .. ROLE, 'conn_' .. ROLE)
if not f[4] then return err('NOT_FOUND', ENDED) end
if taken_over(f[5], ARGV[10]) then return err('PERMISSION_DENIED', TAKEN_OVER) end
local seq, sent = tonumber(ARGV[5]), tonumber(f[1]) or 0
if seq <= sent then
  local stored = redis.call('XRANGE', LOG[ROLE], '0-' .. seq, '0-' .. seq)[1]
  if stored then
    local fields = stored[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'c' and fields[i + 1] ~= ARGV[6] then
        return err('SEQ_CONFLICT', 'Message ' .. seq .. ' was already sent with other content, from another tab or ' ..
          'device; this one was not sent. Keep the chat in one tab.')
      end
    end
  end
  if ARGV[9] == '1' then redis.call('HSET', RKEY, 'sent_' .. ROLE, sent) end
  return { 'ok', 'duplicate' }
end
if seq ~= sent + 1 then
  return err('WRONG_STATE', 'Message ' .. (sent + 1) .. ' comes next; say hello again to learn where the chat stands.')
end
if sent - (tonumber(f[2]) or 0) >= tonumber(ARGV[8]) then
  return err('RATE_LIMITED', 'The other side has not received your last messages yet; try again when they have.')
end
redis.call('XADD', LOG[ROLE], 'MAXLEN', '~', ARGV[7], '0-' .. seq, 'c', ARGV[6], 't', ARGV[1])
-- writes go to the AOF: the log's expiry and the chat's last activity (for the idle sweep,
-- minutes) are only moved when they fell a little (at most a minute), resp. a second, behind
extend(LOG[ROLE], TTL)
redis.call('HSET', RKEY, 'sent_' .. ROLE, seq)
local active = tonumber(redis.call('ZSCORE', ACTIVE, SESSION))
if not active or NOW - active >= 1000 then redis.call('ZADD', ACTIVE, NOW, SESSION) end
relay_event(f[3], SESSION, PEER, PB.msg(10, PB.uint(1, ROLE_ENUM) .. PB.uint(2, seq) .. PB.bytes(3, ARGV[6]) .. PB.uint(4, NOW)))
return { 'ok', 'stored' }
