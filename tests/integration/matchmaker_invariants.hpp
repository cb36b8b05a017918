// The matchmaker's invariants, checked inside Redis by one read-only Lua script so the check
// sees one atomic snapshot even while matchmaker processes keep running: a seeker is in at most
// one of queued / offered / in a chat; no seeker is offered to two listeners; a listener never
// holds more chats plus open offers than their max; the availability indexes hold exactly the
// listeners with room, for the pairs they take now, at their idle time. Returns a description of
// each violation.
#pragma once

#include "tests/support/redis_server.hpp"

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

namespace warmline::test {

inline std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string l; std::getline(ss, l);)
        if (!l.empty()) out.push_back(l);
    return out;
}

inline const char* invariants_lua = R"lua(
local bad = {}
local offers_of = {}
for _, key in ipairs(redis.call('KEYS', 'wl:offer:*')) do
  local oid = string.sub(key, 10)
  local sid = redis.call('HGET', key, 'seeker')
  offers_of[sid] = (offers_of[sid] or 0) + 1
  if offers_of[sid] > 1 then bad[#bad + 1] = 'seeker ' .. sid .. ' has two open offers' end
  if redis.call('HGET', 'wl:seeker:' .. sid, 'offer') ~= oid then
    bad[#bad + 1] = 'offer ' .. oid .. ' is not the offer its seeker ' .. sid .. ' holds'
  end
end
for _, key in ipairs(redis.call('KEYS', 'wl:seeker:*')) do
  local sid = string.sub(key, 11)
  if not string.find(sid, ':') then
    local s = redis.call('HMGET', key, 'state', 'topic', 'lang', 'pref', 'parked')
    local in_queue = s[2] and redis.call('ZSCORE', 'wl:q:' .. s[2] .. ':' .. s[3], sid)
    local in_pref = s[4] and s[4] ~= '' and redis.call('ZSCORE', 'wl:qpref:' .. s[4], sid)
    local offered = offers_of[sid] ~= nil
    -- a parked request (its seeker's connection is gone, within the grace) is in no queue and
    -- has no offer: nobody is offered someone who is not there
    local parked = s[5] == '1'
    if s[1] == 'queued' and not parked and (offered or not (in_queue or in_pref)) then
      bad[#bad + 1] = 'queued seeker ' .. sid .. (offered and ' has an offer' or ' is in no queue')
    end
    if parked and (s[1] ~= 'queued' or offered or in_queue or in_pref) then
      bad[#bad + 1] = 'parked seeker ' .. sid .. ' is ' .. (s[1] or '?') .. ', offered or in a queue'
    end
    if s[1] == 'queued' and in_queue and in_pref then bad[#bad + 1] = 'seeker ' .. sid .. ' is queued twice' end
    if s[1] == 'offered' and (not offered or in_queue or in_pref) then
      bad[#bad + 1] = 'offered seeker ' .. sid .. (offered and ' is still queued' or ' has no offer')
    end
    if (s[1] == 'chat' or s[1] == 'idle' or s[1] == 'ended') and (offered or in_queue or in_pref) then
      bad[#bad + 1] = s[1] .. ' seeker ' .. sid .. ' is still queued or offered'
    end
  end
end
for _, lid in ipairs(redis.call('SMEMBERS', 'wl:listeners')) do
  local key = 'wl:listener:' .. lid
  local f = redis.call('HMGET', key, 'chats', 'offers', 'max')
  local chats, offers, max = tonumber(f[1]) or 0, tonumber(f[2]) or 0, tonumber(f[3]) or 0
  if chats + offers > max then
    bad[#bad + 1] = 'listener ' .. lid .. ' holds ' .. (chats + offers) .. ' > max ' .. max
  end
  if chats < 0 or offers < 0 then bad[#bad + 1] = 'listener ' .. lid .. ' has a negative count' end
  if offers ~= redis.call('SCARD', key .. ':offers') then
    bad[#bad + 1] = 'listener ' .. lid .. ' offer count disagrees with its offer set'
  end
  if chats ~= redis.call('SCARD', key .. ':chats') then
    bad[#bad + 1] = 'listener ' .. lid .. ' chat count disagrees with its chat set'
  end
end
-- the availability indexes: a listener is in wl:avail:<t>:<l> and wl:availlang:<l>, scored by
-- idle_since, for exactly the pairs they take now while they have room, and nowhere else
local want = {}
for _, lid in ipairs(redis.call('SMEMBERS', 'wl:listeners')) do
  local f = redis.call('HMGET', 'wl:listener:' .. lid, 'topics', 'langs', 'atopics', 'alangs', 'status', 'chats',
    'offers', 'max', 'revoked', 'idle_since')
  local room = f[5] == 'available' and f[9] ~= '1' and (tonumber(f[6]) or 0) + (tonumber(f[7]) or 0) < (tonumber(f[8]) or 0)
  if room then
    local topics = (f[3] and f[3] ~= '') and f[3] or f[1]
    local langs = (f[4] and f[4] ~= '') and f[4] or f[2]
    for l in string.gmatch(langs, '[^,]+') do
      want['wl:availlang:' .. l .. '|' .. lid] = tonumber(f[10]) or 0
      for t in string.gmatch(topics, '[^,]+') do want['wl:avail:' .. t .. ':' .. l .. '|' .. lid] = tonumber(f[10]) or 0 end
    end
  end
end
local seen = 0
for _, pattern in ipairs({ 'wl:avail:*', 'wl:availlang:*' }) do
  for _, key in ipairs(redis.call('KEYS', pattern)) do
    local e = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    for i = 1, #e, 2 do
      local w = want[key .. '|' .. e[i]]
      if w == nil then bad[#bad + 1] = 'listener ' .. e[i] .. ' is in ' .. key .. ' without room or scope'
      elseif w ~= tonumber(e[i + 1]) then bad[#bad + 1] = 'listener ' .. e[i] .. ' has a stale score in ' .. key
      else seen = seen + 1 end
    end
  end
end
local expected = 0
for _ in pairs(want) do expected = expected + 1 end
if seen ~= expected then bad[#bad + 1] = (expected - seen) .. ' listener index entries are missing' end
-- who is online: wl:online:<t>:<l> and wl:onlinelang:<l> hold exactly the available, unrevoked
-- listeners for the pairs they take now, with room or not
local on = {}
for _, lid in ipairs(redis.call('SMEMBERS', 'wl:listeners')) do
  local f = redis.call('HMGET', 'wl:listener:' .. lid, 'topics', 'langs', 'atopics', 'alangs', 'status', 'revoked')
  if f[5] == 'available' and f[6] ~= '1' then
    local topics = (f[3] and f[3] ~= '') and f[3] or f[1]
    local langs = (f[4] and f[4] ~= '') and f[4] or f[2]
    for l in string.gmatch(langs, '[^,]+') do
      on['wl:onlinelang:' .. l .. '|' .. lid] = true
      for t in string.gmatch(topics, '[^,]+') do on['wl:online:' .. t .. ':' .. l .. '|' .. lid] = true end
    end
  end
end
local on_seen, on_expected = 0, 0
for _ in pairs(on) do on_expected = on_expected + 1 end
for _, pattern in ipairs({ 'wl:online:*', 'wl:onlinelang:*' }) do
  for _, key in ipairs(redis.call('KEYS', pattern)) do
    for _, lid in ipairs(redis.call('SMEMBERS', key)) do
      if on[key .. '|' .. lid] then on_seen = on_seen + 1
      else bad[#bad + 1] = 'listener ' .. lid .. ' is in ' .. key .. ' but not available for it' end
    end
  end
end
if on_seen ~= on_expected then bad[#bad + 1] = (on_expected - on_seen) .. ' online index entries are missing' end
return bad
)lua";

inline std::vector<std::string> check_invariants(const redis_server& r) {
    return lines(r.cmd({"EVAL", invariants_lua, "0"}));
}

// Fail the test (naming every violation) unless the invariants hold.
inline void require_consistent(const redis_server& r) {
    auto bad = check_invariants(r);
    for (auto& b : bad) MESSAGE(b);
    REQUIRE(bad.empty());
}

}  // namespace warmline::test
