#pragma once
// Versions of the SDK and of the plugin ABI. A plugin built against another ABI major is refused by
// the kernel before any of its code runs; a newer ABI minor than the kernel's is refused too.
#define PROFAGENT_SDK_VERSION "0.1.0"
#define PROFAGENT_ABI_MAJOR 1
#define PROFAGENT_ABI_MINOR 0

namespace profagent {
constexpr const char* kSdkVersion = PROFAGENT_SDK_VERSION;
constexpr unsigned kAbiMajor = PROFAGENT_ABI_MAJOR;
constexpr unsigned kAbiMinor = PROFAGENT_ABI_MINOR;
}  // namespace profagent
