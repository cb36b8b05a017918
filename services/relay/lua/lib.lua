-- The relay's prelude (after common/lua/base.lua and chat.lua; not a script by itself).
-- ARGV[3] = session id, ARGV[4] = the caller's role ('s' seeker | 'l' listener), and the
-- script's own arguments from ARGV[5] on. Replies: {'ok', ...} or {'err', code, message}.
--
-- wl:relay:<session> holds, per role x: pub_x (X25519 public key), node_x / conn_x (the relay
-- process and connection that has that side now), sent_x (highest seq of x's messages stored),
-- recv_x (highest seq of the other side's messages x has acknowledged). wl:log:<session>:<x>
-- is x's messages as a stream whose entry ids are 0-<seq>: a message has fields c (ciphertext)
-- and t (stored, unix ms); messages lost and skipped (skip.lua) are one entry at the last lost
-- seq with fields g (the first lost seq) and t. The chat's end (common/lua/chat.lua,
-- finish_chat) deletes them all.
local SESSION, ROLE = ARGV[3], ARGV[4]
local PEER = ROLE == 's' and 'l' or 's'
local ROLE_ENUM = ROLE == 's' and 1 or 2  -- warmline.v1.Role
local RKEY = K.relay(SESSION)
local ENDED = 'This chat has ended.'
