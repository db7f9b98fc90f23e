// An LLM backend in a third-party plugin (docs/llm_backends.md, "Writing a backend"): provider
// "fixed_policy" of interface "llm", a local planner that answers every request with the same
// policy — each prunable group named in the request's evidence (`groups[].name`) pruned at `ratio`,
// in the reply format the analysis agent asks for ({layers: [{layer, action, ratio, scheme, reason}],
// summary}). A backend for another vendor's HTTP API has the same shape: read its key in
// check_ready()/complete() (never at construction), fill the LlmReply's tokens, ms and finish reason.
#include <chrono>
#include <memory>
#include <string>

#include "profagent/llm.hpp"
#include "profagent/options.hpp"
#include "profagent/plugin.hpp"

namespace {

struct FixedPolicyOptions {
  double ratio = 0.2;
  std::string model = "fixed-policy-1";
};

class FixedPolicyBackend : public profagent::LlmBackend {
 public:
  explicit FixedPolicyBackend(FixedPolicyOptions options) : options_(std::move(options)) {}
  std::string backend_id() const override { return "fixed_policy"; }
  std::string model_name() const override { return options_.model; }

  profagent::Result<profagent::LlmReply> complete(const profagent::LlmRequest& request) override {
    const auto start = std::chrono::steady_clock::now();
    if (request.cancelled && request.cancelled())
      return profagent::Status(profagent::ErrorCode::kCancelled, "fixed_policy: cancelled");
    profagent::Json layers = profagent::Json::array();
    const auto groups = request.evidence.is_object() ? request.evidence.value("groups", profagent::Json::array())
                                                     : profagent::Json::array();
    for (const auto& group : groups)
      if (group.is_object() && group.contains("name") && group["name"].is_string())
        layers.push_back({{"layer", group["name"]}, {"action", "prune"}, {"ratio", options_.ratio},
                          {"scheme", "none"}, {"reason", "fixed policy"}});
    profagent::LlmReply reply;
    reply.text = profagent::Json{{"layers", layers}, {"summary", "every group at the same ratio"}}.dump();
    reply.finish_reason = reply.raw_finish_reason = "stop";
    reply.model = options_.model;
    reply.milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return reply;
  }

 private:
  FixedPolicyOptions options_;
};

void register_fixed_policy(profagent::Registrar& registrar) {
  static const profagent::OptionsSchema<FixedPolicyOptions> schema = [] {
    profagent::OptionsSchema<FixedPolicyOptions> s;
    s.field("ratio", &FixedPolicyOptions::ratio).range(0.0, 0.9).describe("the ratio of every group");
    s.field("model", &FixedPolicyOptions::model).describe("the name the reply gives as its model");
    return s;
  }();
  profagent::ProviderFactory factory;
  factory.id = "fixed_policy";
  factory.interface = profagent::kLlmInterface;
  factory.summary = "a local planner: every prunable group of the evidence at one ratio (example backend)";
  profagent::bind_provider_options<FixedPolicyOptions>(factory, schema, [](FixedPolicyOptions options) {
    return profagent::Result<std::unique_ptr<profagent::Provider>>(
        std::unique_ptr<profagent::Provider>(std::make_unique<FixedPolicyBackend>(std::move(options))));
  });
  registrar.add_provider(std::move(factory));
}

}  // namespace

PROFAGENT_PLUGIN("fixed_policy", "1.0.0", register_fixed_policy);
