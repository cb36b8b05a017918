-- A connection closed. ARGV[8] = 'seeker' | 'listener', [9] id, [10] node id of the process
-- that held it, [11] (listeners) how many of their connections that process still holds.
-- A seeker keeps its place for the grace period, parked (never offered while away); a listener
-- with no connection left anywhere is set away (open offers run to their deadline, chats
-- continue on the relay).
local kind, id, node = ARGV[8], ARGV[9], ARGV[10]
if kind == 'seeker' then
  seeker_away(id, node)
else
  listener_here(id, node, tonumber(ARGV[11]) or 0, 'closed')
end
return { 'ok' }
