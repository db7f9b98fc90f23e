#pragma once
#include <nlohmann/json.hpp>

#include "profagent/version.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN
// Ordered so that summaries, reports and saved workflows keep the order a person wrote or built.
using Json = nlohmann::ordered_json;
PROFAGENT_ABI_NAMESPACE_END
