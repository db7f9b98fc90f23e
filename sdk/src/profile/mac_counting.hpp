#pragma once
// The built-in MAC-counting table and the shape arithmetic the static profiler shares with its
// counters (mac_builtin_rules.cpp). Private to profagent_profile.
#include <cstdint>

#include "profagent/profile/static_profile.hpp"

namespace profagent::torch_tk {

std::int64_t numel(const Shape& shape);
// NumPy broadcasting, used to size an elementwise result whose traced type lost its shape.
Shape broadcast(const Shape& a, const Shape& b);

// Every built-in rule (what OpRules::builtin() holds).
OpRules make_builtin_rules();
// Counts an op of no registered kind: its output elements, so that it is at least visible.
const OpRule& unrecognized_rule();

}  // namespace profagent::torch_tk
