# profagent_add_plugin(<target> SOURCES <files...> [LIBRARIES <libs...>] [OUTPUT_DIRECTORY <dir>] [NO_INSTALL])
#
# Builds a plugin: a shared library linked to profagent::sdk whose only exported symbol that matters
# is the descriptor written by PROFAGENT_PLUGIN. Used by first-party plugins and, through the
# installed CMake package, by third parties (examples/out_of_tree_plugin).
function(profagent_add_plugin target)
  cmake_parse_arguments(ARG "NO_INSTALL" "OUTPUT_DIRECTORY" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "profagent_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  if(TARGET profagent::sdk)
    target_link_libraries(${target} PRIVATE profagent::sdk ${ARG_LIBRARIES})
  else()
    target_link_libraries(${target} PRIVATE profagent_sdk ${ARG_LIBRARIES})
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(COMMAND profagent_target_warnings)  # first-party builds only
    profagent_target_warnings(${target})
  endif()
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  elseif(DEFINED PROFAGENT_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${PROFAGENT_PLUGIN_OUTPUT_DIR}")
  endif()
  if(NOT ARG_NO_INSTALL)
    set_property(GLOBAL APPEND PROPERTY PROFAGENT_RUNTIME_PLUGINS ${target})
  endif()
  if(NOT ARG_NO_INSTALL AND DEFINED PROFAGENT_PLUGIN_INSTALL_DIR)
    install(TARGETS ${target} LIBRARY DESTINATION "${PROFAGENT_PLUGIN_INSTALL_DIR}")
  endif()
endfunction()
