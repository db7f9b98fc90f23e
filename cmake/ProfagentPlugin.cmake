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
    install(TARGETS ${target} LIBRARY DESTINATION "${PROFAGENT_PLUGIN_INSTALL_DIR}" COMPONENT plugins)
  endif()
endfunction()

# profagent_add_plugin_test(<target> SOURCES <files...> [LIBRARIES <libs...>])
#
# A doctest executable for a plugin's unit tests (doctest's main is provided), linked to
# profagent::sdk, whose header profagent/testing/fake_agent_context.hpp gives the kernel's stand-in; it
# is registered with CTest under <target>. Needs doctest (Debian: doctest-dev) and include(CTest).
function(profagent_add_plugin_test target)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "profagent_add_plugin_test(${target}): SOURCES is required")
  endif()
  find_package(doctest REQUIRED)
  set(main "${CMAKE_CURRENT_BINARY_DIR}/${target}_doctest_main.cpp")
  file(WRITE "${main}" "#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN\n#include <doctest/doctest.h>\n")
  add_executable(${target} "${main}" ${ARG_SOURCES})
  if(TARGET profagent::sdk)
    target_link_libraries(${target} PRIVATE profagent::sdk doctest::doctest ${ARG_LIBRARIES})
  else()
    target_link_libraries(${target} PRIVATE profagent_sdk doctest::doctest ${ARG_LIBRARIES})
  endif()
  add_test(NAME ${target} COMMAND ${target})
endfunction()

# profagent_precompile_torch(<target> [<other targets>...])
#
# One precompiled header of <torch/script.h> and <torch/torch.h> for a plugin's LibTorch sources: built
# for <target>, reused by the others (same compile flags needed; executables among them compile -fPIC
# to match a plugin's). Each of those sources then loads the precompiled image instead of parsing
# LibTorch's headers again; a source that includes only light headers (profagent/torch/importance.hpp)
# compiles faster without it (examples/tutorial_plugin: 5.5 s to rebuild after a one-line edit): set_source_files_properties(<file> PROPERTIES SKIP_PRECOMPILE_HEADERS ON).
function(profagent_precompile_torch target)
  target_precompile_headers(${target} PRIVATE <torch/script.h> <torch/torch.h>)
  foreach(other ${ARGN})
    get_target_property(type ${other} TYPE)
    if(type STREQUAL "EXECUTABLE")
      set_target_properties(${other} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
      target_compile_options(${other} PRIVATE -fPIC)
    endif()
    target_precompile_headers(${other} REUSE_FROM ${target})
  endforeach()
endfunction()
