# LibTorch headers cost about 20 s per translation unit here. Targets that include them reuse one
# precompiled header: profagent_use_torch_pch(<target>) after the target is defined.
set(PROFAGENT_TORCH_PCH_HEADERS <torch/torch.h> <torch/script.h>)

function(profagent_use_torch_pch target)
  if(NOT TARGET profagent_torch_pch)
    # An object library that owns the PCH; others reuse it (same flags required: all are PIC C++17).
    file(WRITE "${CMAKE_BINARY_DIR}/profagent_torch_pch.cpp" "// anchors the LibTorch precompiled header\n")
    add_library(profagent_torch_pch OBJECT "${CMAKE_BINARY_DIR}/profagent_torch_pch.cpp")
    target_link_libraries(profagent_torch_pch PUBLIC torch)
    target_precompile_headers(profagent_torch_pch PRIVATE ${PROFAGENT_TORCH_PCH_HEADERS})
    # GCC uses a PCH only when the flags that define macros match: -Wpedantic (which every first-party
    # target has) undefines __cpp_runtime_arrays, so the PCH is built with the same warning flags.
    if(COMMAND profagent_target_warnings)
      profagent_target_warnings(profagent_torch_pch)
    endif()
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    # The PCH is compiled -fPIC (for the libraries and plugins); GCC refuses it in a -fPIE compile,
    # so executables that reuse it compile -fPIC too (still linked as PIE).
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
  target_precompile_headers(${target} REUSE_FROM profagent_torch_pch)
endfunction()
