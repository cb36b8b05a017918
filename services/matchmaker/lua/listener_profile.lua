-- What a ListenerProfile is made from, read in one step. ARGV[8] = listener id.
-- Returns {'ok', chats today, {field, value, field, value, ...} of wl:listener:<lid>}.
local lid = ARGV[8]
return { 'ok', chats_today(lid), redis.call('HGETALL', K.listener(lid)) }
