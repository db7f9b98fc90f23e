#pragma once
// The plugin boundary. Each plugin library exports one plain C object, `profagent_plugin_descriptor`,
// which the kernel reads *before* it runs any of the plugin's code: ABI version, plugin id and
// version, SDK version and a build fingerprint (compiler, C++ ABI, LibTorch version). Only when these
// match does the kernel call the registration function, which adds the plugin's factories to a
// Registrar; if it fails or throws, nothing of it is registered.
//
//   static void register_my_plugin(profagent::Registrar& r) { r.add_agent(make_my_agent_factory()); }
//   PROFAGENT_PLUGIN("my_plugin", "1.0.0", register_my_plugin)
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "profagent/agent.hpp"
#include "profagent/artifact.hpp"
#include "profagent/extension.hpp"
#include "profagent/provider.hpp"
#include "profagent/version.hpp"

#if __has_include(<torch/version.h>)
#include <torch/version.h>
#endif
#ifndef TORCH_VERSION
#define TORCH_VERSION "none"
#endif

#define PROFAGENT_STR_INNER_(x) #x
#define PROFAGENT_STR_(x) PROFAGENT_STR_INNER_(x)

#if defined(__clang__)
#define PROFAGENT_COMPILER_ID "clang-" PROFAGENT_STR_(__clang_major__) "." PROFAGENT_STR_(__clang_minor__)
#elif defined(__GNUC__)
#define PROFAGENT_COMPILER_ID "gcc-" PROFAGENT_STR_(__GNUC__) "." PROFAGENT_STR_(__GNUC_MINOR__)
#else
#define PROFAGENT_COMPILER_ID "unknown"
#endif

#if defined(_GLIBCXX_USE_CXX11_ABI)
#define PROFAGENT_CXX_ABI "libstdc++-cxx11abi-" PROFAGENT_STR_(_GLIBCXX_USE_CXX11_ABI)
#elif defined(_LIBCPP_VERSION)
#define PROFAGENT_CXX_ABI "libc++-" PROFAGENT_STR_(_LIBCPP_ABI_VERSION)
#else
#define PROFAGENT_CXX_ABI "unknown"
#endif

// "compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1;torch=1.13.0". The kernel compares the compiler
// family and major version, the C++ ABI and the LibTorch major.minor; it shows both strings on a
// mismatch.
#define PROFAGENT_BUILD_FINGERPRINT \
  "compiler=" PROFAGENT_COMPILER_ID ";cxxabi=" PROFAGENT_CXX_ABI ";torch=" TORCH_VERSION

extern "C" {
typedef int (*profagent_register_fn)(void* registrar, char* error_buffer, unsigned long error_buffer_size);

typedef struct profagent_plugin_descriptor_t {
  unsigned abi_major;
  unsigned abi_minor;
  const char* plugin_id;
  const char* plugin_version;
  const char* sdk_version;
  const char* build_fingerprint;
  profagent_register_fn register_plugin;  // returns 0 on success, else writes a message
} profagent_plugin_descriptor_t;
}

#define PROFAGENT_DESCRIPTOR_SYMBOL "profagent_plugin_descriptor"

PROFAGENT_ABI_NAMESPACE_BEGIN

// Collects what one plugin registers. The kernel commits it only when registration succeeded.
class PROFAGENT_SDK_API Registrar {
 public:
  void add_agent(AgentFactory factory);
  void add_provider(ProviderFactory factory);
  void add_artifact_loader(const std::string& kind, ArtifactLoader loader);
  // An entry of an extension point (extension.hpp): through the typed wrapper of the library that
  // owns the point (profagent::torch_tk::add_prune_rule, add_mac_rule), not directly.
  void add_extension(const std::string& point, const std::string& name, std::shared_ptr<const void> value);

  std::vector<AgentFactory>& agents() { return agents_; }
  std::vector<ProviderFactory>& providers() { return providers_; }
  std::vector<std::pair<std::string, ArtifactLoader>>& artifact_loaders() { return loaders_; }
  std::vector<Extension>& extensions() { return extensions_; }

 private:
  std::vector<AgentFactory> agents_;
  std::vector<ProviderFactory> providers_;
  std::vector<std::pair<std::string, ArtifactLoader>> loaders_;
  std::vector<Extension> extensions_;
};

namespace detail {
inline void copy_error(const std::string& text, char* buffer, unsigned long size) {
  if (!buffer || size == 0) return;
  std::size_t n = text.size() < size - 1 ? text.size() : size - 1;
  text.copy(buffer, n);
  buffer[n] = '\0';
}
// Compiled into the plugin, so exceptions from its register function never leave its library.
template <class Fn>
int call_register(Fn fn, void* registrar, char* error_buffer, unsigned long error_size) {
  try {
    fn(*static_cast<Registrar*>(registrar));
    return 0;
  } catch (const std::exception& e) {
    copy_error(std::string("register function threw: ") + e.what(), error_buffer, error_size);
  } catch (...) {
    copy_error("register function threw a non-standard exception", error_buffer, error_size);
  }
  return 1;
}
}  // namespace detail

PROFAGENT_ABI_NAMESPACE_END

#define PROFAGENT_PLUGIN(PLUGIN_ID, PLUGIN_VERSION, REGISTER_FUNCTION)                              \
  static int profagent_register_trampoline_(void* registrar, char* error_buffer,                   \
                                            unsigned long error_size) {                             \
    return ::profagent::detail::call_register(REGISTER_FUNCTION, registrar, error_buffer, error_size); \
  }                                                                                                 \
  extern "C" __attribute__((visibility("default")))                                                 \
  const profagent_plugin_descriptor_t profagent_plugin_descriptor = {                               \
      PROFAGENT_ABI_MAJOR, PROFAGENT_ABI_MINOR, PLUGIN_ID, PLUGIN_VERSION,                          \
      PROFAGENT_SDK_VERSION, PROFAGENT_BUILD_FINGERPRINT, &profagent_register_trampoline_}
