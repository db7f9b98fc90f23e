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

# Unity builds: LibTorch's precompiled header costs about 15 s to load in every translation unit, even a
# 20-line one, so the torch libraries compile their sources in batches of up to 8 per translation unit
# (clean runtime build on 2 cores: see README). OFF gives one translation unit per file, for quick
# rebuilds of a single file while developing the engines.
option(PROFAGENT_UNITY_BUILD "Compile the LibTorch libraries as unity batches" ON)
function(profagent_unity_build target)
  if(PROFAGENT_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE BATCH UNITY_BUILD_BATCH_SIZE 8)
  endif()
endfunction()

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
  profagent_unity_build(${target})
endfunction()
