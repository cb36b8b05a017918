-- The first hand-written prelude of every Warmline script, the matchmaker's and the relay's
-- (prepended at load time by common/lua_scripts after the generated table K of every key name,
-- common/keys.list; not a script by itself). It owns what every script shares: the first two
-- arguments, reply and number helpers, and the protobuf writer behind every event between
-- processes (proto/warmline/v1/events.proto).
--
-- Every script gets ARGV[1] = now (unix ms, the caller's clock) and ARGV[2] = the TTL (s) of
-- records about a person or a chat; the service's prelude says what follows.
local NOW = tonumber(ARGV[1])
local TTL = tonumber(ARGV[2])

local function err(code, msg) return { 'err', code, msg } end
local function num(v) return tonumber(v) or 0 end
local function fmt(n) return string.format('%.0f', n) end

local function split(s)
  local out = {}
  if s then for item in string.gmatch(s, '[^,]+') do out[#out + 1] = item end end
  return out
end

-- Redis's own clock in ms. Leases of processes are kept on it, so that no process's clock (or
-- a test's hand-moved one) decides whether another process is alive.
local function redis_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- EXPIRE is a write that goes to the AOF, so records touched on every step are only extended
-- once their remaining time fell a little (a tenth of the TTL, at most a minute) below the full
-- TTL: a record lives at least TTL minus that slack after its last use.
local function stale(key, ttl)
  return redis.call('TTL', key) <= ttl - math.min(60, math.floor(ttl / 10))
end

local function extend(key, ttl)
  if stale(key, ttl) then redis.call('EXPIRE', key, ttl) end
end

-- ---- the protobuf wire format, for events.proto ---------------------------------------------
-- Enough of it for our events: varints (non-negative integers up to 2^53, bools, enums) and
-- length-delimited fields (strings, bytes, nested messages). A field is written even when it
-- holds its default, which a parser reads the same; oneof members must be written that way.
local PB = {}

function PB.varint(n)
  n = math.floor(math.max(0, tonumber(n) or 0))
  local out = {}
  while n >= 128 do
    out[#out + 1] = string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  out[#out + 1] = string.char(n)
  return table.concat(out)
end
function PB.uint(field, n) return PB.varint(field * 8) .. PB.varint(n) end
function PB.bool(field, b) return PB.varint(field * 8) .. (b and '\1' or '\0') end
function PB.bytes(field, s)
  s = s or ''
  return PB.varint(field * 8 + 2) .. PB.varint(#s) .. s
end
PB.msg = PB.bytes

-- Enum values of the protos, by the names the scripts use.
local ROLE = { seeker = 1, listener = 2, s = 1, l = 2 }
local OUTCOME = { accepted = 1, declined = 2, timed_out = 3, withdrawn = 4 }

-- A ChatEnded (matchmaker.proto). by: seeker | listener | idle | expired | peer_lost;
-- lost: the side that was gone ('s' | 'l', with peer_lost); requeued: the seeker is back in line.
local function chat_ended_pb(session, by, lost, requeued)
  local parts = { PB.bytes(1, session) }
  if ROLE[by] then parts[#parts + 1] = PB.uint(2, ROLE[by])
  else parts[#parts + 1] = PB.bytes(3, by) end
  if lost then parts[#parts + 1] = PB.uint(4, ROLE[lost]) end
  if requeued then parts[#parts + 1] = PB.bool(5, true) end
  return table.concat(parts)
end

-- Publish a MatchEvent on wl:events: `field` is the number of its `kind`, body the member.
local function match_event(field, body)
  redis.call('PUBLISH', K.events, PB.msg(field, body))
end
