#pragma once
// torchvision models for the tests, exported through the acquisition agent's `torchvision:` source
// (the Debian Python) into one cache per build tree. Include after torch_doctest.hpp.
#include <filesystem>
#include <string>

#include "model_loader.hpp"
#include "torchvision_source.hpp"

namespace profagent::test {

inline const std::filesystem::path kTorchvisionCache = std::filesystem::path(PROFAGENT_TEST_BINARY_DIR) / "torchvision_cache";

// "torchvision:resnet18?export=script" → the loaded module; REQUIREs that it loads.
inline torch::jit::Module load_torchvision(const std::string& source) {
  profagent::agents::LoadOptions options;
  options.torchvision.cache_dir = kTorchvisionCache;
  auto loaded = profagent::agents::load_model(source, options);
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  return loaded.value()->module();
}

}  // namespace profagent::test
