// The shared Lua preludes (common/lua/*.lua), embedded at build time.
#pragma once
#include <map>
#include <string>

namespace warmline::lua {
// Prelude name (file name without .lua) -> source.
const std::map<std::string, std::string>& lua_sources();
}  // namespace warmline::lua
