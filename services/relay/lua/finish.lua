-- Runs on the control Redis (no keys declared): end chat SESSION as finish_chat does (the one
-- place a chat ends). ARGV[5] = by (seeker | listener | idle | peer_lost), [6] the side that was
-- lost or '', [7] '1' when a seeker who is here goes back to the front of the line anyway (its
-- browser lost the chat's keys). Returns {'ok', ChatEnded} when it ended now, {'gone', ChatEnded
-- or ''} when the chat was not open (already ended: its ChatEnded; never existed or expired: '').
local lost = ARGV[6] ~= '' and ARGV[6] or nil
local sid = finish_chat(SESSION, ARGV[5], lost, ARGV[7] == '1')
local pb = redis.call('HGET', K.session(SESSION), 'ended_pb') or ''
if not sid then return { 'gone', pb } end
return { 'ok', pb }
