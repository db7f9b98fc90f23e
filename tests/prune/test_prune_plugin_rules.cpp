// Rules that plugins add (add_prune_rule, add_module_attribute_rule): what a graph does with an op no
// built-in rule knows, what it does once a plugin's rule is registered (PruneRules::registered(), used
// when DependencyOptions::rules is null), and what a plugin may not register. The rules are added
// through a Registrar and committed to the process-wide extension table as the kernel does after
// accepting a plugin; they stay for the rest of the test binary (ops and classes no other test uses).
#include "torch_doctest.hpp"

#include <stdexcept>

#include "profagent/extension.hpp"
#include "profagent/plugin.hpp"
#include "prune_test_support.hpp"
#include "test_support.hpp"

using profagent::test::contains;
using profagent::test::graph_of;
using profagent::test::group_named;
using profagent::test::member_of;
using namespace profagent::torch_tk;

namespace {

// The kernel's part: commit what a register function added. One origin for every test case, so that
// adding the same rule again (another test case, a rerun) is not a duplicate.
void commit(profagent::Registrar& registrar) {
  profagent::Status added = profagent::add_extensions(registrar.extensions(), "tests/prune/test_prune_plugin_rules.cpp");
  REQUIRE_MESSAGE(added.is_ok(), added.to_string());
}

// What the example plugin (examples/custom_op_plugin) registers: softshrink keeps every dim.
void register_softshrink_rule() {
  profagent::Registrar registrar;
  add_prune_rule(registrar, "aten::softshrink",
                 [](RuleContext& c) { c.identity_all_dims(c.input(0), c.output(0)); });
  REQUIRE(registrar.extensions().size() == 1);
  commit(registrar);
}

// stem conv 3→8 + relu, mid conv 8→8, softshrink, head conv 8→4. Input [1, 3, 8, 8].
torch::jit::Module shrink_net() {
  torch::manual_seed(11);
  torch::jit::Module net("ShrinkNet");
  net.register_module("stem", profagent::test::conv(8, 3, 3));
  net.register_module("mid", profagent::test::conv(8, 8, 3));
  net.register_module("head", profagent::test::conv(4, 8, 1));
  net.define(
      "def forward(self, x):\n"
      "    x = torch.relu(self.stem.forward(x))\n"
      "    x = torch.softshrink(self.mid.forward(x), 0.1)\n"
      "    return self.head.forward(x)\n");
  return net;
}

// stem conv 3→8 + relu, mid conv 8→8, a ScaleChannels module (x * scale, scale [8, 1, 1], an int
// attribute `channels` = 8 that no forward reads), head conv 8→4.
torch::jit::Module scaled_net() {
  torch::manual_seed(12);
  torch::jit::Module net("ScaledNet");
  net.register_module("stem", profagent::test::conv(8, 3, 3));
  net.register_module("mid", profagent::test::conv(8, 8, 3));
  torch::jit::Module scale = profagent::test::leaf("ScaleChannels", {{"scale", torch::rand({8, 1, 1}) + 0.5}},
                                                   "def forward(self, x):\n"
                                                   "    return x * self.scale\n");
  scale.register_attribute("channels", c10::IntType::get(), std::int64_t{8});
  net.register_module("scale", scale);
  net.register_module("head", profagent::test::conv(4, 8, 1));
  net.define(
      "def forward(self, x):\n"
      "    x = torch.relu(self.stem.forward(x))\n"
      "    x = self.scale.forward(self.mid.forward(x))\n"
      "    return self.head.forward(x)\n");
  return net;
}

PruneResult prune_ok(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs, double ratio) {
  PruneOptions options;
  options.ratio = ratio;
  auto result = prune(module, inputs, options);
  REQUIRE_MESSAGE(result.is_ok(), result.status().to_string());
  return std::move(result).value();
}

}  // namespace

TEST_CASE("prune rules: an op no built-in rule knows freezes its channels, and a plugin's rule makes them prunable") {
  const std::vector<torch::jit::IValue> inputs = {torch::randn({1, 3, 8, 8})};
  torch::jit::Module net = shrink_net();
  REQUIRE(PruneRules::builtin().find("aten::softshrink") == nullptr);

  // The built-ins alone: mid's channels go through softshrink, which has no rule.
  DependencyOptions builtin_only;
  builtin_only.rules = &PruneRules::builtin();
  auto frozen = graph_of(net, inputs, builtin_only);
  CHECK(frozen->find_group("mid") == nullptr);
  CHECK(frozen->find_group("stem") != nullptr);
  bool warned = false;
  for (const auto& warning : frozen->warnings()) warned = warned || contains(warning, "no pruning rule for aten::softshrink");
  CHECK(warned);

  register_softshrink_rule();
  CHECK(PruneRules::registered().find("aten::softshrink") != nullptr);
  CHECK(PruneRules::registered().find("aten::softshrink_") != nullptr);  // in place alike
  CHECK(PruneRules::registered().find("aten::conv2d") != nullptr);      // the built-ins stay
  CHECK(PruneRules::builtin().find("aten::softshrink") == nullptr);

  // No rules given: the graph uses registered(), so mid's channels are one group with head's inputs.
  auto graph = graph_of(net, inputs);
  CHECK(graph->warnings().empty());
  const PruneGroup& mid = group_named(*graph, "mid");
  CHECK(mid.units == 8);
  CHECK(member_of(mid, "mid.weight", 0)->role == "producer");
  CHECK(member_of(mid, "head.weight", 1)->role == "consumer");

  PruneResult pruned = prune_ok(net, inputs, 0.5);
  CHECK(pruned.module.attr("mid").toModule().attr("weight").toTensor().size(0) == 4);
  CHECK(pruned.module.attr("head").toModule().attr("weight").toTensor().size(1) == 4);
  CHECK(pruned.module.forward(inputs).toTensor().sizes() == torch::IntArrayRef({1, 4, 8, 8}));
  bool mid_pruned = false;
  for (const auto& decision : pruned.history.groups) mid_pruned = mid_pruned || (decision.name == "mid" && decision.removed.size() == 4);
  CHECK(mid_pruned);
}

TEST_CASE("prune rules: registered rules are rebuilt when a plugin adds one, and earlier references stay valid") {
  register_softshrink_rule();
  const PruneRules& before = PruneRules::registered();
  CHECK(&PruneRules::registered() == &before);  // nothing added: the same table
  profagent::Registrar registrar;
  add_prune_rule(registrar, "aten::hardshrink", [](RuleContext& c) { c.identity_all_dims(c.input(0), c.output(0)); });
  commit(registrar);
  const PruneRules& after = PruneRules::registered();
  CHECK(after.find("aten::hardshrink") != nullptr);
  CHECK(after.find("aten::softshrink") != nullptr);
  CHECK(before.find("aten::softshrink") != nullptr);  // still readable
  CHECK(before.size() + 1 == after.size());
}

TEST_CASE("prune rules: a plugin may not replace a built-in rule, and names its op with a namespace") {
  profagent::Registrar registrar;
  PruneRule rule = [](RuleContext&) {};
  CHECK_THROWS_WITH_AS(add_prune_rule(registrar, "aten::conv2d", rule),
                       doctest::Contains("add_prune_rule(aten::conv2d): the op has a built-in pruning rule"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(add_prune_rule(registrar, "aten::relu_", rule), doctest::Contains("built-in pruning rule"),
                       std::invalid_argument);  // in-place form of a built-in
  CHECK_THROWS_WITH_AS(add_prune_rule(registrar, "softshrink", rule), doctest::Contains("not a qualified op symbol"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(add_prune_rule(registrar, "aten::logit", PruneRule()), doctest::Contains("the rule is empty"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(add_module_attribute_rule(registrar, "Conv2d", [](const ModuleEdit&) {}),
                       doctest::Contains("built-in module-attribute rule"), std::invalid_argument);
  CHECK(registrar.extensions().empty());
}

TEST_CASE("prune rules: a plugin's module-attribute rule updates an attribute of a class the built-ins lack") {
  const std::vector<torch::jit::IValue> inputs = {torch::randn({1, 3, 8, 8})};
  torch::jit::Module net = scaled_net();
  auto channels_after = [&](double ratio) {
    PruneResult pruned = prune_ok(net, inputs, ratio);
    torch::jit::Module scale = pruned.module.attr("scale").toModule();
    CHECK(scale.attr("scale").toTensor().size(0) == 4);
    return scale.attr("channels").toInt();
  };
  REQUIRE(ModuleRules::builtin().find("ScaleChannels") == nullptr);
  CHECK(channels_after(0.5) == 8);  // sliced, but nothing knows the attribute follows it

  profagent::Registrar registrar;
  add_module_attribute_rule(registrar, "ScaleChannels", [](const ModuleEdit& edit) {
    auto found = edit.new_shapes.find("scale");
    if (found != edit.new_shapes.end()) edit.set_int("channels", found->second.at(0));
  });
  commit(registrar);
  CHECK(ModuleRules::registered().find("ScaleChannels") != nullptr);
  CHECK(channels_after(0.5) == 4);
}
