-- Shared prelude of the relay's scripts (prepended at load time). Every script gets
-- ARGV[1..4] = now ms, TTL s, session id, the caller's role ('s' seeker | 'l' listener) and its
-- own arguments from ARGV[5] on. Replies: {'ok', ...} or {'err', code, message}.
--
-- wl:relay:<session> holds, per role x: pub_x (X25519 public key), node_x / conn_x (the relay
-- process and connection that has that side now), sent_x (highest seq of x's messages stored),
-- recv_x (highest seq of the other side's messages x has acknowledged). wl:log:<session>:<x>
-- is x's messages as a stream whose entry ids are 0-<seq>. The chat's end (matchmaker lib.lua,
-- finish_chat) deletes them all.
local NOW, TTL, SESSION, ROLE = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local PEER = ROLE == 's' and 'l' or 's'
local RKEY = 'wl:relay:' .. SESSION
local ENDED = 'This chat has ended.'

local function err(code, msg) return { 'err', code, msg } end
local function log_key(role) return 'wl:log:' .. SESSION .. ':' .. role end

-- Move a key's expiry only when it has fallen a little (up to a minute) behind: every EXPIRE is
-- an AOF write. The same rule as the matchmaker's extend() (services/matchmaker/lua/lib.lua).
local function extend(key, ttl)
  if redis.call('TTL', key) <= ttl - math.min(60, math.floor(ttl / 10)) then redis.call('EXPIRE', key, ttl) end
end

-- Tell the relay process `node` (if any) something; binary data goes last.
local function to_node(node, ...)
  if node and node ~= '' then redis.call('PUBLISH', 'wl:relaynode:' .. node, table.concat({ ... }, '|')) end
end
