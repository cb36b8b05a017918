# wl_generate_keys(<list> <hpp> <lua>): from <list> (common/keys.list: "<name> <pattern>" lines,
# # comments), write <hpp>, a C++ header with one function warmline::keys::<name>(params...) per
# key, and <lua>, the Lua table K with the same names (a string for a key without parameters, a
# function otherwise). Configure time, as wl_embed_lua; CMake re-runs when the list changes.
function(wl_generate_keys list hpp lua)
  file(STRINGS ${list} lines)
  set(cpp_body "")
  set(lua_body "")
  foreach(line IN LISTS lines)
    string(STRIP "${line}" line)
    if(line STREQUAL "" OR line MATCHES "^#")
      continue()
    endif()
    if(NOT line MATCHES "^([a-z_]+)[ \t]+([^ \t]+)$")
      message(FATAL_ERROR "${list}: cannot read the line '${line}'")
    endif()
    set(name ${CMAKE_MATCH_1})
    set(pattern ${CMAKE_MATCH_2})
    # split the pattern into literal text and <placeholders>
    set(params "")
    set(cpp_parts "")
    set(lua_parts "")
    set(rest "${pattern}")
    while(rest MATCHES "^([^<]*)<([a-z_]+)>(.*)$")
      set(lit "${CMAKE_MATCH_1}")
      set(param "${CMAKE_MATCH_2}")
      set(rest "${CMAKE_MATCH_3}")
      if(NOT lit STREQUAL "")
        string(APPEND cpp_parts "    k += \"${lit}\";\n")
        list(APPEND lua_parts "'${lit}'")
      endif()
      string(APPEND cpp_parts "    k += ${param};\n")
      list(APPEND lua_parts "${param}")
      list(APPEND params ${param})
    endwhile()
    if(params STREQUAL "")
      string(APPEND cpp_body "inline std::string ${name}() { return \"${pattern}\"; }\n")
      string(APPEND lua_body "  ${name} = '${pattern}',\n")
    else()
      if(NOT rest STREQUAL "")
        string(APPEND cpp_parts "    k += \"${rest}\";\n")
        list(APPEND lua_parts "'${rest}'")
      endif()
      list(TRANSFORM params PREPEND "std::string_view " OUTPUT_VARIABLE cpp_params)
      list(JOIN cpp_params ", " cpp_params)
      list(JOIN params ", " lua_params)
      list(JOIN lua_parts " .. " lua_expr)
      string(APPEND cpp_body "inline std::string ${name}(${cpp_params}) {\n    std::string k;\n${cpp_parts}    return k;\n}\n")
      string(APPEND lua_body "  ${name} = function(${lua_params}) return ${lua_expr} end,\n")
    endif()
  endforeach()
  file(CONFIGURE OUTPUT ${hpp} CONTENT "// Generated from common/keys.list by CMake (cmake/Keys.cmake). Do not edit.
// Every Redis key and channel name; docs/redis-keys.md says who owns each and when it expires.
#pragma once

#include <string>
#include <string_view>

namespace warmline::keys {

${cpp_body}
}  // namespace warmline::keys
" @ONLY)
  file(CONFIGURE OUTPUT ${lua} CONTENT "-- Generated from common/keys.list by CMake (cmake/Keys.cmake). Do not edit.
-- Every key name, once (docs/redis-keys.md says who owns each and when it expires).
local K = {
${lua_body}}
" @ONLY)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${list})
endfunction()
