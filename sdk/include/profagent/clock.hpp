#pragma once
// The one monotonic clock for stage and phase timings.
#include <chrono>

#include "profagent/version.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

using SteadyClock = std::chrono::steady_clock;

// Seconds elapsed since `start` on the steady clock.
inline double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

PROFAGENT_ABI_NAMESPACE_END
