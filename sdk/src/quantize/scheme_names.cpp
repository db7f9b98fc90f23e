// Scheme names and their parsing (scheme_names.hpp).
#include "profagent/quantize/scheme_names.hpp"

#include "profagent/text.hpp"

namespace profagent::quantize {

namespace {
const std::vector<std::pair<Scheme, std::string>>& scheme_table() {
  static const std::vector<std::pair<Scheme, std::string>> table = {
      {Scheme::kInt8Dynamic, "int8_dynamic"}, {Scheme::kInt8WeightOnly, "int8_weight_only"},
      {Scheme::kFp16, "fp16"},               {Scheme::kBf16, "bf16"},
      {Scheme::kInt8Static, "int8_static"},  {Scheme::kNone, "none"}};
  return table;
}
}  // namespace

std::string scheme_name(Scheme scheme) {
  for (const auto& [value, name] : scheme_table())
    if (value == scheme) return name;
  return "none";
}

const std::vector<std::string>& scheme_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& entry : scheme_table()) out.push_back(entry.second);
    return out;
  }();
  return names;
}

Result<Scheme> parse_scheme(const std::string& name, const std::string& where) {
  for (const auto& [value, known] : scheme_table())
    if (known == name) return value;
  std::string message = (where.empty() ? "" : where + ": ") + "unknown quantization scheme '" + name +
                        "' (known: " + join(scheme_names()) + ")";
  auto close = close_matches(name, scheme_names(), 1);
  if (!close.empty()) message += "; did you mean '" + close.front() + "'?";
  return Status(ErrorCode::kValidation, message);
}

}  // namespace profagent::quantize
