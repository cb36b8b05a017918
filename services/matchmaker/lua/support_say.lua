-- A line of a support side chat (docs/protocol.md 4.22), from one of its two sides: passed on
-- sealed in a SupportSaid event for the other side's connections and never stored. It changes
-- nothing in Redis, so it is no promise to wait on replicas for (store.cpp, promises).
-- ARGV[8] = role ('listener' | 'supervisor'), [9] that side's id, [10] support id, [11] seq,
-- [12] the sealed bytes. Returns {'ok'}.
local role, id = ARGV[8], ARGV[10]
local s, refusal = support_side(id, role, ARGV[9])
if refusal then return refusal end
if s[2] ~= 'answered' then return err('WRONG_STATE', 'No supervisor has joined yet.') end
local from = role == 'listener' and 2 or 3  -- Role: LISTENER, SUPERVISOR
match_event(11, PB.bytes(1, id) .. PB.bytes(2, s[1]) .. PB.bytes(3, s[3]) .. PB.uint(4, from) ..
  PB.uint(5, tonumber(ARGV[11])) .. PB.bytes(6, ARGV[12]))
return { 'ok' }
