-- A listener toggles available/away. ARGV[8] = listener id, ARGV[9] = '1' available, '0' away.
local lid, available = ARGV[8], ARGV[9] == '1'
local refusal = listener_refusal(lid)
if refusal then return refusal end
local key = K.listener(lid)
local status = redis.call('HGET', key, 'status')
if available then
  if redis.call('HGET', key, 'suspended') == '1' then
    return err('WRONG_STATE', 'Your account is paused pending a review by the safety team. They will be in touch.')
  end
  -- the admin's wellbeing limits (lib.lua): the day's cap, and a break that is due or running
  local capped, cap = day_cap_reached(lid)
  if capped then
    return err('WRONG_STATE', "That's your " .. cap .. " chats for today. Thank you! You can take chats again tomorrow.")
  end
  local w = redis.call('HMGET', key, 'break_due', 'rest_until', 'away_at', 'duty_since', 'break_after_min')
  if w[1] == '1' then
    if num(w[2]) == 0 then return err('WRONG_STATE', 'Your break starts when your open chats end.') end
    if num(w[2]) > NOW then
      local minutes = math.ceil((num(w[2]) - NOW) / 60000)
      return err('WRONG_STATE', 'You are on a break for ' .. minutes .. ' more minute' .. (minutes == 1 and '' or 's') .. '. Rest well.')
    end
    redis.call('HSET', key, 'break_due', 0, 'rest_until', 0, 'since_break', 0, 'duty_since', 0)
    w[4] = 0
  elseif status ~= 'available' and num(w[3]) > 0 and NOW - num(w[3]) >= break_ms(lid) then
    -- time away at least a break long was a break
    redis.call('HSET', key, 'since_break', 0, 'duty_since', 0)
    w[4] = 0
  end
  if status ~= 'available' then
    redis.call('HSET', key, 'idle_since', NOW)
    local since = num(w[4])
    if since == 0 then
      since = NOW
      redis.call('HSET', key, 'duty_since', since)
    end
    -- on duty that long since the last break: the sweep calls the break
    if num(w[5]) > 0 then redis.call('ZADD', K.due_break, fmt(since + num(w[5]) * 60000), lid) end
  end
  redis.call('HSET', key, 'status', 'available', 'away_why', '')
else
  if status == 'available' then redis.call('HSET', key, 'away_at', NOW) end
  redis.call('HSET', key, 'status', 'away', 'away_why', '')
end
refresh_listener(lid)
if available then match_listener(lid) end
return { 'ok' }
