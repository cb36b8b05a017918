// The relay's Lua scripts (services/relay/lua/*.lua), embedded at build time.
#pragma once
#include <map>
#include <string>

namespace warmline::relay {
// Script name (file name without .lua) -> source.
const std::map<std::string, std::string>& lua_sources();
}  // namespace warmline::relay
