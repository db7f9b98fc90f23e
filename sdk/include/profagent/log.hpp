#pragma once
// Plugins log through the kernel's logger so that every line goes to the same sinks (stderr and the
// run's log file) with the same level. Never print to std::cout from library or plugin code.
#include <memory>
#include <spdlog/spdlog.h>

namespace profagent {

// The process-wide logger; the kernel installs its own at start-up, a default stderr logger
// is used before that (e.g. in unit tests of plugin code).
spdlog::logger& log();
std::shared_ptr<spdlog::logger> logger_ptr();
void set_logger(std::shared_ptr<spdlog::logger> logger);

}  // namespace profagent
