#pragma once
#include <nlohmann/json.hpp>

namespace profagent {
// Ordered so that summaries, reports and saved workflows keep the order a person wrote or built.
using Json = nlohmann::ordered_json;
}  // namespace profagent
