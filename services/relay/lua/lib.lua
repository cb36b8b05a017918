-- The relay's prelude (after common/lua/base.lua and chat.lua; not a script by itself).
-- ARGV[3] = session id, ARGV[4] = the caller's role ('s' seeker | 'l' listener), and the
-- script's own arguments from ARGV[5] on. Replies: {'ok', ...} or {'err', code, message}.
--
-- The chat scripts run on the chat Redis (one server, or a Cluster) and declare their keys, all
-- in the slot of the chat's bucket (services/relay/store.cpp, chat_keys): KEYS[1] the chat's
-- record, [2] and [3] the seeker's and the listener's logs, then the bucket's [4] active,
-- [5] absent, [6] away, [7] sides and [8] clock. A bucket's sweeps (presence, end_idle,
-- node_sync) get the same list for an empty chat id and touch other chats of their bucket,
-- which share its slot. The scripts that run on the control Redis (finish.lua) get no keys.
--
-- wl:relay:{b}:<session> holds, per role x: pub_x (X25519 public key), node_x / conn_x (the
-- relay process and connection that has that side now), sent_x (highest seq of x's messages
-- stored), recv_x (highest seq of the other side's messages x has acknowledged).
-- wl:log:{b}:<session>:<x> is x's messages as a stream whose entry ids are 0-<seq>: a message has
-- fields c (ciphertext) and t (stored, unix ms); messages lost and skipped (skip.lua) are one
-- entry at the last lost seq with fields g (the first lost seq) and t. purge.lua deletes them
-- all once the control Redis has ended the chat.
local SESSION, ROLE = ARGV[3], ARGV[4]
local PEER = ROLE == 's' and 'l' or 's'
local ROLE_ENUM = ROLE == 's' and 1 or 2  -- warmline.v1.Role
local RKEY, ACTIVE, ABSENT, AWAY, SIDES, BUCKET_CLOCK = KEYS[1], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local LOG = { s = KEYS[2], l = KEYS[3] }
local BUCKET = KEYS[1] and string.match(KEYS[1], '{([^}]*)}')
local ENDED = 'This chat has ended.'
local TAKEN_OVER = 'This chat was opened in another tab or on another device; this connection may no longer write to it.'

-- Whether `conn` lost this side to another connection (`holder`, the record's conn_x). No holder
-- (its connection closed, or its process was found dead) is not a takeover: the side is free.
local function taken_over(holder, conn)
  return holder ~= nil and holder ~= false and holder ~= '' and holder ~= conn
end

-- Publish a RelayEvent to relay process `node` (nothing when no process holds that side), on
-- its shard channel of this bucket (same slot as the keys): for side `to` ('s' | 'l') of chat
-- `session`; `kind` is its oneof member, already written (e.g. PB.bytes(11, key)).
local function relay_event(node, session, to, kind)
  if node and node ~= '' then
    redis.call('SPUBLISH', K.relay_channel(BUCKET, node), PB.bytes(1, session) .. PB.uint(2, to == 's' and 1 or 2) .. kind)
  end
end

local function split_side(side)
  local session, role = string.match(side, '^(.*)|([sl])$')
  return session, role
end

-- Relay process `node` no longer holds `side` of this bucket (its connection closed while Redis
-- could not be told, or the process is dead): unless another took the side over meanwhile, the
-- side has no connection and is absent from now.
local function let_go(side, node)
  local session, role = split_side(side)
  redis.call('HDEL', SIDES, side)
  if not session then return end
  local rkey = K.relay(BUCKET, session)
  if redis.call('HGET', rkey, 'node_' .. role) == node then
    redis.call('HSET', rkey, 'node_' .. role, '', 'conn_' .. role, '')
    redis.call('ZADD', ABSENT, 'NX', NOW, side)
  end
end
