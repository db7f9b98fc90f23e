#pragma once
// Versions of the SDK and of the plugin ABI. A plugin built against another ABI major is refused by
// the kernel before any of its code runs; a newer ABI minor than the kernel's is refused too.
//
// ABI rules (the contract between profagent-run, libprofagent_sdk and every plugin):
//
// * What bumps PROFAGENT_ABI_MAJOR (plugins must be rebuilt; the kernel refuses the old ones): any
//   change to the layout or meaning of a type of the profagent_sdk headers (profagent/*.hpp) that
//   crosses a library boundary — adding, removing or reordering a data member or a virtual function of
//   Agent, AgentContext, Artifact, JsonArtifact, Provider, AgentFactory, ProviderFactory, Registrar,
//   Config, ConfigSchema, ConfigField, Status, Result or Extension; changing a signature or a
//   std::function type (AgentMaker, ProviderMaker, ArtifactLoader); changing the descriptor
//   (profagent_plugin_descriptor_t) past its two version fields, which every major keeps first; or a
//   change of the behaviour plugins rely on (e.g. who catches exceptions).
// * What bumps PROFAGENT_ABI_MINOR (old plugins keep working, newer plugins are refused by an older
//   kernel): additions only — a new non-virtual, non-inline function or a new class of the SDK, a new
//   artifact kind or ErrorCode value that old code never sees from new code it did not ask for.
//   Reset to 0 when the major changes.
// * Every polymorphic SDK type that crosses libraries has its key function (its first non-inline,
//   non-pure virtual function: the destructor) defined out of line in sdk/src, so that its vtable and
//   typeinfo live in libprofagent_sdk alone, and dynamic_cast / catch work across the kernel, the
//   SDK libraries and the plugins.
// * libprofagent_sdk is built with hidden visibility (-fvisibility=hidden -fvisibility-inlines-hidden):
//   only what is marked PROFAGENT_SDK_API is exported — the classes and free functions of the
//   profagent/*.hpp headers. A class that is dynamic_cast or thrown across libraries is marked as a
//   whole, so its typeinfo is exported. Plugins are built hidden too (profagent_add_plugin); their one
//   export is the descriptor.
// * The SDK contract lives in an ABI-tagged inline namespace, profagent::abi_v<major>
//   (PROFAGENT_ABI_NAMESPACE_BEGIN / _END), so a plugin built against another major fails to link or
//   load with an undefined symbol instead of calling into a layout it does not know; source code keeps
//   writing profagent::Agent. A forward declaration of an SDK type outside these headers must be
//   inside the same namespace: PROFAGENT_ABI_NAMESPACE_BEGIN class AgentContext; PROFAGENT_ABI_NAMESPACE_END
//   (or `inline namespace PROFAGENT_ABI_NAMESPACE { class Registrar; }` inside namespace profagent).
// * Exceptions never cross the boundary: the kernel calls plugin code only through the SDK's
//   non-virtual wrappers (Agent::execute, make_agent, make_provider, save_artifact), which turn
//   anything thrown into a Status, and PROFAGENT_PLUGIN does the same for the register function.
#define PROFAGENT_SDK_VERSION "0.1.0"
#define PROFAGENT_ABI_MAJOR 2
#define PROFAGENT_ABI_MINOR 1

// The ABI namespace's name follows the major: abi_v2.
#define PROFAGENT_ABI_NAMESPACE_NAME_INNER_(major) abi_v##major
#define PROFAGENT_ABI_NAMESPACE_NAME_(major) PROFAGENT_ABI_NAMESPACE_NAME_INNER_(major)
#define PROFAGENT_ABI_NAMESPACE PROFAGENT_ABI_NAMESPACE_NAME_(PROFAGENT_ABI_MAJOR)
#define PROFAGENT_ABI_NAMESPACE_BEGIN \
  namespace profagent {               \
  inline namespace PROFAGENT_ABI_NAMESPACE {
#define PROFAGENT_ABI_NAMESPACE_END \
  }                                 \
  }

// Exported from libprofagent_sdk (built with hidden visibility); see the rules above.
#if defined(_WIN32)
#define PROFAGENT_SDK_API
#else
#define PROFAGENT_SDK_API [[gnu::visibility("default")]]
#endif

PROFAGENT_ABI_NAMESPACE_BEGIN
constexpr const char* kSdkVersion = PROFAGENT_SDK_VERSION;
constexpr unsigned kAbiMajor = PROFAGENT_ABI_MAJOR;
constexpr unsigned kAbiMinor = PROFAGENT_ABI_MINOR;
PROFAGENT_ABI_NAMESPACE_END
