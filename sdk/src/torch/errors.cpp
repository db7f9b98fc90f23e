#include "profagent/torch/errors.hpp"

#include <c10/util/Exception.h>

#include <vector>

#include "profagent/text.hpp"

namespace profagent::torch_tk {

std::string torch_error_reason(const std::string& message) {
  std::vector<std::string> lines = non_empty_lines(message);
  if (lines.empty()) return "no reason given";
  if (lines.front().find("TorchScript") != std::string::npos) {
    for (auto it = lines.rbegin(); it != lines.rend(); ++it)
      if (it->find("Error: ") != std::string::npos) return *it;
    return lines.back();
  }
  return lines.front();
}

std::string torch_error_reason(const std::exception& error) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
  return torch_error_reason(std::string(c10_error ? c10_error->what_without_backtrace() : error.what()));
}

}  // namespace profagent::torch_tk
