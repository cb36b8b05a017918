// argv(...): a Redis command's arguments as a vector of strings. Use it instead of a braced
// list inside coroutines: GCC 12 miscompiles (ICE) initializer lists of string literals in a
// co_await expression.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace warmline {

template <class... T>
std::vector<std::string> argv(T&&... xs) {
    std::vector<std::string> v;
    v.reserve(sizeof...(xs));
    (v.emplace_back(std::forward<T>(xs)), ...);
    return v;
}

}  // namespace warmline

namespace warmline {

// Several commands for a pipeline, each built with argv().
template <class... T>
std::vector<std::vector<std::string>> commands(T&&... cmds) {
    std::vector<std::vector<std::string>> v;
    v.reserve(sizeof...(cmds));
    (v.emplace_back(std::forward<T>(cmds)), ...);
    return v;
}

}  // namespace warmline
