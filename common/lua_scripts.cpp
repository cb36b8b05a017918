// Assembling scripts from the shared and the service's preludes, for common/lua_scripts.hpp.
#include "common/lua_scripts.hpp"

#include "common/lua_sources.hpp"

#include <stdexcept>

namespace warmline {

script_set::script_set(const std::map<std::string, std::string>& own) {
    const auto& shared = lua::lua_sources();
    // The order matters: each prelude uses the names the ones before it define.
    std::string prelude = shared.at("keys") + "\n" + shared.at("base") + "\n" + shared.at("chat") + "\n";
    if (auto lib = own.find("lib"); lib != own.end()) prelude += lib->second + "\n";
    for (const auto& [name, body] : own)
        if (name != "lib") scripts_.emplace(name, redis::script(prelude + body));
}

const redis::script& script_set::at(const std::string& name) const {
    auto it = scripts_.find(name);
    if (it == scripts_.end()) throw std::out_of_range("there is no Lua script called '" + name + "'");
    return it->second;
}

}  // namespace warmline
