-- Queue positions and estimated waits for the waiting seekers of one process.
-- ARGV[8..] = seeker ids. Returns {'ok', pos1, est1, nobody1, held1, pos2, ...} (0, 0, 0, 0:
-- not waiting; nobody: 1 when no listener available now may take the request; held: seconds
-- left of a hold, request_chat.lua).
local out = { 'ok' }
for i = 8, #ARGV do
  local p, e, nobody, held = position_of(ARGV[i])
  out[#out + 1] = p
  out[#out + 1] = e
  out[#out + 1] = nobody and 1 or 0
  out[#out + 1] = held
end
return out
