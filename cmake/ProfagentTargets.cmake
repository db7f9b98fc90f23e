# Build rules of first-party targets.
#
# Warnings on every first-party target: profagent_target_warnings(<target>). LibTorch's headers come
# from a system include directory, so their own warnings stay out. PROFAGENT_WERROR (on in CI) turns
# every warning into an error.
option(PROFAGENT_WERROR "Treat warnings as errors in first-party targets" OFF)

# PROFAGENT_SANITIZE builds every target with AddressSanitizer and UndefinedBehaviorSanitizer
# (scripts/test.sh --sanitize).
option(PROFAGENT_SANITIZE "Build with -fsanitize=address,undefined" OFF)
if(PROFAGENT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

function(profagent_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(PROFAGENT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# profagent_add_agent_library(<target> SOURCES <files...> LIBRARIES <libs...>): the library behind a
# first-party agent, static so that its unit tests link it directly while the plugin stays a thin
# adapter. PIC for linking into the plugin; hidden so that the plugin exports none of its symbols.
function(profagent_add_agent_library target)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  add_library(${target} STATIC ${ARG_SOURCES})
  target_include_directories(${target} PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}")
  target_link_libraries(${target} PUBLIC ${ARG_LIBRARIES})
  set_target_properties(${target} PROPERTIES
    POSITION_INDEPENDENT_CODE ON
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  profagent_target_warnings(${target})
  profagent_use_torch_pch(${target})
endfunction()
