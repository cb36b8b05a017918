// The matchmaker's Lua scripts (services/matchmaker/lua/*.lua), embedded at build time.
#pragma once
#include <map>
#include <string>

namespace warmline::matchmaker {
// Script name (file name without .lua) -> source.
const std::map<std::string, std::string>& lua_sources();
}  // namespace warmline::matchmaker
