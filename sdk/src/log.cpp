#include "profagent/log.hpp"

#include <mutex>
#include <spdlog/sinks/stdout_color_sinks.h>

PROFAGENT_ABI_NAMESPACE_BEGIN

namespace {
std::mutex g_logger_mutex;
std::shared_ptr<spdlog::logger>& logger_slot() {
  static std::shared_ptr<spdlog::logger> logger;
  return logger;
}
}  // namespace

std::shared_ptr<spdlog::logger> logger_ptr() {
  std::lock_guard<std::mutex> lock(g_logger_mutex);
  auto& slot = logger_slot();
  if (!slot) {
    slot = std::make_shared<spdlog::logger>("profagent", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    slot->set_level(spdlog::level::info);
  }
  return slot;
}

spdlog::logger& log() {
  // The shared_ptr in the slot keeps the logger alive; callers use it for the length of one call.
  return *logger_ptr();
}

void set_logger(std::shared_ptr<spdlog::logger> logger) {
  std::lock_guard<std::mutex> lock(g_logger_mutex);
  logger_slot() = std::move(logger);
}

PROFAGENT_ABI_NAMESPACE_END
