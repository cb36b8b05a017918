-- Queue positions and estimated waits for the waiting seekers of one process.
-- ARGV[6..] = seeker ids. Returns {'ok', pos1, est1, pos2, est2, ...} (0, 0: not waiting).
local out = { 'ok' }
for i = 6, #ARGV do
  local p, e = position_of(ARGV[i])
  out[#out + 1] = p
  out[#out + 1] = e
end
return out
