#pragma once
// The per-layer record of a quantization stage (kind "quantization_record", like prune_history):
// data.json holds the document, report.md its table (scheme, bytes before/after, error, reverted),
// which the run's report.md includes.
#include <filesystem>
#include <string>

#include "profagent/artifact.hpp"

namespace profagent::agents {

constexpr const char* kQuantizationRecordKind = "quantization_record";

class QuantizationRecord : public Artifact {
 public:
  QuantizationRecord(Json document, std::string markdown) : document_(std::move(document)), markdown_(std::move(markdown)) {}
  std::string kind() const override { return kQuantizationRecordKind; }
  Json summary() const override { return document_; }
  Status save(const std::filesystem::path& dir) const override;

 private:
  Json document_;
  std::string markdown_;
};

// The Markdown table of a record document (its "layers").
std::string quantization_markdown(const Json& document);

}  // namespace profagent::agents
