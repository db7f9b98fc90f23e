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
  endif()
  get_target_property(type ${target} TYPE)
  target_precompile_headers(${target} REUSE_FROM profagent_torch_pch)
endfunction()
