// MAC-counting rules that plugins add (add_mac_rule): an op no built-in rule knows is listed as
// unrecognized and adds no MACs; once a plugin's rule is registered, every static profile made without
// explicit rules (OpRules::registered()) counts it. The rule is added through a Registrar and committed
// to the process-wide extension table as the kernel does after accepting a plugin; it stays for the
// rest of the test binary (an op no other test uses).
#include "torch_doctest.hpp"

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "profagent/extension.hpp"
#include "profagent/plugin.hpp"
#include "profagent/profile/static_profile.hpp"

using profagent::torch_tk::add_mac_rule;
using profagent::torch_tk::OpCategory;
using profagent::torch_tk::OpCount;
using profagent::torch_tk::OpRule;
using profagent::torch_tk::OpRules;
using profagent::torch_tk::OpView;
using profagent::torch_tk::StaticProfile;
using profagent::torch_tk::StaticProfileOptions;

namespace {

// What the example plugin (examples/custom_op_plugin) registers: softshrink is x - λ·sign(x) where
// |x| > λ, one multiply-add per output element.
OpRule softshrink_rule() {
  return OpRule{"shrink", OpCategory::kCompute, [](const OpView& op) -> profagent::Result<OpCount> {
                  auto shape = op.output_shape(0);
                  if (!shape) return profagent::Status(profagent::ErrorCode::kUnsupported, "no output shape");
                  std::int64_t elements = 1;
                  for (std::int64_t d : *shape) elements *= d;
                  OpCount count;
                  count.macs.push_back({"shrink", elements, -1});
                  return count;
                }};
}

// conv 3→8 (3×3, padding 1) then softshrink, input [2, 3, 5, 5]: 2·8·25·27 conv MACs, 2·8·25 elements.
torch::jit::Module shrink_net() {
  torch::manual_seed(0);
  torch::jit::Module conv("Conv");
  conv.register_parameter("weight", torch::randn({8, 3, 3, 3}), false);
  conv.define(
      "def forward(self, x):\n"
      "    return torch.conv2d(x, self.weight, None, [1, 1], [1, 1])\n");
  torch::jit::Module net("ShrinkNet");
  net.register_module("conv", conv);
  net.define(
      "def forward(self, x):\n"
      "    return torch.softshrink(self.conv.forward(x), 0.5)\n");
  return net;
}

StaticProfile profile_ok(const torch::jit::Module& module, const StaticProfileOptions& options = {}) {
  auto profile = profagent::torch_tk::static_profile(module, {torch::randn({2, 3, 5, 5})}, options);
  REQUIRE_MESSAGE(profile.is_ok(), profile.status().to_string());
  return std::move(profile).value();
}

}  // namespace

TEST_CASE("mac rules: an op no built-in rule knows adds no MACs, and a plugin's rule counts it in every profile") {
  torch::jit::Module net = shrink_net();
  constexpr std::int64_t kConvMacs = 2 * 8 * 25 * 27;
  constexpr std::int64_t kElements = 2 * 8 * 25;
  REQUIRE(OpRules::builtin().find("aten::softshrink") == nullptr);

  StaticProfileOptions builtin_only;
  builtin_only.rules = &OpRules::builtin();
  StaticProfile before = profile_ok(net, builtin_only);
  CHECK(before.macs == kConvMacs);
  CHECK(before.unrecognized_ops == std::map<std::string, std::int64_t>{{"aten::softshrink", 1}});
  CHECK(before.kinds.count("shrink") == 0);

  profagent::Registrar registrar;
  add_mac_rule(registrar, "aten::softshrink", softshrink_rule());
  REQUIRE(registrar.extensions().size() == 1);
  CHECK(registrar.extensions().front().point == profagent::torch_tk::kMacRulePoint);
  profagent::Status added = profagent::add_extensions(registrar.extensions(), "tests/profile/test_plugin_mac_rules.cpp");
  REQUIRE_MESSAGE(added.is_ok(), added.to_string());
  CHECK(OpRules::registered().find("aten::softshrink")->kind == "shrink");
  CHECK(OpRules::registered().find("aten::conv2d")->kind == "conv");  // the built-ins stay
  CHECK(OpRules::registered().size() == OpRules::builtin().size() + 1);

  StaticProfile after = profile_ok(net);  // no rules given: registered()
  CHECK(after.macs == kConvMacs + kElements);
  CHECK(after.kinds.at("shrink").macs == kElements);
  CHECK(after.unrecognized_ops.empty());
  CHECK(after.find("(root)")->kinds.at("shrink").macs == kElements);  // the module whose forward ran it
}

TEST_CASE("mac rules: a plugin may not replace a built-in rule, and gives its rule a kind and a count") {
  profagent::Registrar registrar;
  CHECK_THROWS_WITH_AS(add_mac_rule(registrar, "aten::conv2d", softshrink_rule()),
                       doctest::Contains("add_mac_rule(aten::conv2d): the op has a built-in counting rule"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(add_mac_rule(registrar, "aten::relu_", softshrink_rule()),
                       doctest::Contains("built-in counting rule"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(add_mac_rule(registrar, "logit", softshrink_rule()),
                       doctest::Contains("not a qualified op symbol"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(add_mac_rule(registrar, "aten::logit", OpRule{"", OpCategory::kOther, nullptr, false}),
                       doctest::Contains("no kind"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(add_mac_rule(registrar, "aten::logit", OpRule{"logit", OpCategory::kCompute, nullptr, false}),
                       doctest::Contains("needs a count function"), std::invalid_argument);
  CHECK(registrar.extensions().empty());
}
