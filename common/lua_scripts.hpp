// Warmline's Lua scripts as a service loads them. Each script's source is the shared preludes
// (common/lua/base.lua: arguments, helpers, key names, events; common/lua/chat.lua: the end of
// a chat and the indexes it touches), then the service's own prelude (its lua/lib.lua), then the
// script: one atomic step with every rule it needs. Built once at start from sources embedded
// at build time (cmake/EmbedLua.cmake), so a binary needs no files at run time.
#pragma once

#include "common/redis.hpp"

#include <map>
#include <string>

namespace warmline {

class script_set {
public:
    // `own`: a service's lua_sources(); its "lib" is the service's prelude, every other entry a
    // script named by its file.
    explicit script_set(const std::map<std::string, std::string>& own);
    // Throws std::out_of_range naming the script when there is none by that name.
    const redis::script& at(const std::string& name) const;

private:
    std::map<std::string, redis::script> scripts_;
};

}  // namespace warmline
