# wl_embed_lua(<out var> <lua dir> <namespace> <header> [more .lua files]): generate a .cpp that
# defines `const std::map<std::string, std::string>& <namespace>::lua_sources()` (declared in
# <header>) from every <lua dir>/*.lua and the files after <header> (e.g. generated ones), name =
# file name without .lua. Embedded at configure time, so a
# service binary needs no files at run time; CMake re-runs when a script changes.
function(wl_embed_lua out_var dir ns header)
  file(GLOB scripts CONFIGURE_DEPENDS ${dir}/*.lua)
  list(APPEND scripts ${ARGN})
  string(REPLACE "::" "_" tag "${ns}")
  set(cpp ${CMAKE_CURRENT_BINARY_DIR}/${tag}_lua_sources.cpp)
  set(body "// Generated from ${dir}/*.lua by CMake. Do not edit.\n#include \"${header}\"\nnamespace ${ns} {\nconst std::map<std::string, std::string>& lua_sources() {\n    static const std::map<std::string, std::string> m = {\n")
  foreach(f ${scripts})
    get_filename_component(n ${f} NAME_WE)
    file(READ ${f} src)
    string(APPEND body "        {\"${n}\", R\"wl_lua(${src})wl_lua\"},\n")
  endforeach()
  string(APPEND body "    };\n    return m;\n}\n}  // namespace ${ns}\n")
  file(CONFIGURE OUTPUT ${cpp} CONTENT "${body}" @ONLY)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${scripts})
  set(${out_var} ${cpp} PARENT_SCOPE)
endfunction()
