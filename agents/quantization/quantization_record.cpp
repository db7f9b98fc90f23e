// The quantization record artifact and its Markdown table (quantization_record.hpp).
#include "quantization_record.hpp"

#include <cstdio>

#include "profagent/fs.hpp"

namespace profagent::agents {

Status QuantizationRecord::save(const std::filesystem::path& dir) const {
  PROFAGENT_RETURN_IF_ERROR(write_json_atomic(dir / "data.json", document_));
  return write_file_atomic(dir / "report.md", markdown_);
}

std::string quantization_markdown(const Json& document) {
  auto number = [](const char* format, double value) {
    char text[64];
    std::snprintf(text, sizeof text, format, value);
    return std::string(text);
  };
  std::string out = "Quantized " + document.value("model", std::string("the model")) + " (engine " +
                    document.value("engine", std::string("?")) + "): weights " +
                    std::to_string(document.value("bytes_before", 0LL)) + " → " +
                    std::to_string(document.value("bytes_after", 0LL)) + " bytes";
  if (document.contains("accuracy_aware")) {
    const Json& aware = document["accuracy_aware"];
    out += "; accuracy-aware: " + std::to_string(aware.value("reverted", Json::array()).size()) +
           " layers reverted to fp32, output error " + number("%.4g", aware.value("output_error", 0.0));
    if (aware.value("accuracy", -1.0) >= 0)
      out += ", calibration accuracy " + number("%.2f", aware.value("fp32_accuracy", 0.0)) + "% → " +
             number("%.2f", aware.value("accuracy", 0.0)) + "%";
  }
  out += "\n\n| layer | ops | scheme | bytes before | bytes after | weight error | output error | reverted |\n";
  out += "|---|---|---|---:|---:|---:|---:|---|\n";
  for (const Json& layer : document.value("layers", Json::array())) {
    std::string ops;
    for (const Json& op : layer.value("ops", Json::array())) ops += (ops.empty() ? "" : ", ") + op.get<std::string>();
    out += "| " + layer.value("layer", std::string()) + " | " + ops + " | " + layer.value("scheme", std::string()) +
           " | " + std::to_string(layer.value("bytes_before", 0LL)) + " | " +
           std::to_string(layer.value("bytes_after", 0LL)) + " | " +
           number("%.2e", layer.value("weight_rel_error", 0.0)) + " | " +
           (layer.contains("output_error") ? number("%.2e", layer["output_error"].get<double>()) : std::string("—")) +
           " | " + (layer.value("reverted", false) ? "yes" : "") + " |\n";
  }
  return out;
}

}  // namespace profagent::agents
