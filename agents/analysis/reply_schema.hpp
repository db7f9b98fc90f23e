#pragma once
// What the analysis agent asks of a backend: the JSON Schema of the reply (OpenAI strict structured
// outputs: every object closed with additionalProperties false, every property required, nullable
// fields as type unions) and the default prompt templates, embedded so the plugin needs no files.
// docs/analysis.md shows both; each run also writes them to the stage's work directory.
#include <string>
#include <vector>

#include "profagent/json.hpp"

namespace profagent::agents {

// The plan's tasks and the actions each allows in a reply.
std::vector<std::string> actions_for_task(const std::string& task);  // prune: {prune}; quantize; both

// The quantization schemes a plan may name (issue 11's quantization agent): int8_dynamic,
// int8_weight_only, fp16, bf16, int8_static, none.
const std::vector<std::string>& quantization_schemes();

// {"layers": [{layer, action, ratio, scheme, reason}], "summary"}, with `action` limited to the task's.
Json reply_schema(const std::string& task);

// The embedded templates. Placeholders: {{task}}, {{budget}}, {{max_ratio}}, {{schema}}, {{evidence}}
// (the evidence as a JSON document: layer names from the model file only ever appear inside it).
const std::string& default_system_prompt();
const std::string& default_user_prompt();

// `text` with every {{name}} replaced by values[name]; an unknown placeholder is left as it is.
std::string fill_template(const std::string& text,
                          const std::vector<std::pair<std::string, std::string>>& values);

}  // namespace profagent::agents
