#pragma once
// Plugins log through the kernel's logger so that every line goes to the same sinks (stderr and the
// run's log file) with the same level. Never print to std::cout from library or plugin code.
#include <memory>
#include <spdlog/spdlog.h>

#include "profagent/version.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

// The process-wide logger; the kernel installs its own at start-up, a default stderr logger
// is used before that (e.g. in unit tests of plugin code).
PROFAGENT_SDK_API spdlog::logger& log();
PROFAGENT_SDK_API std::shared_ptr<spdlog::logger> logger_ptr();
PROFAGENT_SDK_API void set_logger(std::shared_ptr<spdlog::logger> logger);

PROFAGENT_ABI_NAMESPACE_END
