// The dependency graph of structured pruning on small real modules: which parameter dims share units
// (residual add, concat offsets, depthwise groups, flatten blocks, squeeze-excitation broadcasts),
// what is frozen and why (model input and output, ops without a rule), and registry extension.
#include "torch_doctest.hpp"

#include <algorithm>

#include "prune_test_support.hpp"
#include "test_support.hpp"

using profagent::test::contains;
using profagent::test::graph_of;
using profagent::test::group_named;
using profagent::test::member_of;
using namespace profagent::torch_tk;

namespace {

std::vector<std::int64_t> flat_indices(const GroupMember& member) {
  std::vector<std::int64_t> all;
  for (const auto& unit : member.unit_indices) all.insert(all.end(), unit.begin(), unit.end());
  std::sort(all.begin(), all.end());
  return all;
}

std::vector<std::int64_t> range(std::int64_t begin, std::int64_t end) {
  std::vector<std::int64_t> values;
  for (std::int64_t i = begin; i < end; ++i) values.push_back(i);
  return values;
}

}  // namespace

TEST_CASE("prune graph: a residual add keeps both branches' channels and the classifier's inputs in one group") {
  auto graph = graph_of(profagent::test::residual_net(), {torch::randn({1, 3, 8, 8})});
  // Two groups: the residual stream (stem + second conv of the block) and the block's inner channels.
  REQUIRE(graph->groups().size() == 2);
  const PruneGroup& stream = group_named(*graph, "conv1");
  CHECK(stream.units == 8);
  CHECK(stream.reads_graph_input);
  CHECK(member_of(stream, "conv1.weight", 0)->role == "producer");
  CHECK(member_of(stream, "bn1.weight", 0)->role == "norm");
  CHECK(member_of(stream, "bn1.bias", 0)->role == "bias");
  CHECK(member_of(stream, "bn1.running_var", 0)->role == "buffer");
  CHECK(member_of(stream, "block.conv_b.weight", 0)->role == "producer");
  CHECK(member_of(stream, "block.bn_b.weight", 0) != nullptr);
  CHECK(member_of(stream, "block.conv_a.weight", 1)->role == "consumer");
  CHECK(member_of(stream, "fc.weight", 1)->role == "consumer");
  // Channel c of the stem is channel c of the block's output: identity mapping.
  for (std::int64_t u = 0; u < stream.units; ++u) {
    CHECK(member_of(stream, "conv1.weight", 0)->unit_indices[u] ==
          member_of(stream, "block.conv_b.weight", 0)->unit_indices[u]);
  }
  const PruneGroup& inner = group_named(*graph, "block.conv_a");
  CHECK(inner.units == 8);
  CHECK_FALSE(inner.reads_graph_input);
  CHECK(member_of(inner, "block.conv_b.weight", 1)->role == "consumer");
  CHECK(member_of(inner, "fc.weight", 1) == nullptr);
  // The classifier's outputs are the model's output: frozen, so fc is no group.
  CHECK(graph->find_group("fc") == nullptr);
}

TEST_CASE("prune graph: each input of a concat is its own group, offset in the consumer's input channels") {
  auto graph = graph_of(profagent::test::concat_net(), {torch::randn({1, 3, 8, 8})});
  const PruneGroup& a = group_named(*graph, "a");
  const PruneGroup& b = group_named(*graph, "b");
  CHECK(a.units == 5);
  CHECK(b.units == 6);
  CHECK(flat_indices(*member_of(a, "c.weight", 1)) == range(0, 5));
  CHECK(flat_indices(*member_of(b, "c.weight", 1)) == range(5, 11));
  // The stem feeds both branches: one group holding both consumers.
  const PruneGroup& stem = group_named(*graph, "stem");
  CHECK(member_of(stem, "a.weight", 1) != nullptr);
  CHECK(member_of(stem, "b.weight", 1) != nullptr);
}

TEST_CASE("prune graph: a depthwise conv ties its input channel to its output channel and rewrites groups") {
  auto graph = graph_of(profagent::test::depthwise_net(), {torch::randn({1, 3, 8, 8})});
  const PruneGroup& expand = group_named(*graph, "expand");
  CHECK(expand.units == 12);
  CHECK(member_of(expand, "dw.weight", 0)->role == "producer");
  CHECK(member_of(expand, "dw.bias", 0)->role == "bias");
  CHECK(member_of(expand, "project.weight", 1)->role == "consumer");
  CHECK(member_of(expand, "dw.weight", 1) == nullptr);  // width 1 per group
  CHECK(graph->find_group("dw") == nullptr);             // not a group of its own
}

TEST_CASE("prune graph: after a flatten, channel c owns H*W consecutive inputs of the linear layer") {
  auto graph = graph_of(profagent::test::flatten_net(), {torch::randn({2, 3, 4, 4})});
  const PruneGroup& group = group_named(*graph, "conv");
  REQUIRE(group.units == 4);
  const GroupMember* fc = member_of(group, "fc.weight", 1);
  REQUIRE(fc != nullptr);
  for (std::int64_t c = 0; c < 4; ++c) CHECK(fc->unit_indices[c] == range(c * 16, (c + 1) * 16));
}

TEST_CASE("prune graph: a squeeze-excitation multiply ties the gate's channels to the features it scales") {
  auto graph = graph_of(profagent::test::se_net(), {torch::randn({1, 3, 8, 8})});
  const PruneGroup& body = group_named(*graph, "body");
  CHECK(member_of(body, "fc2.weight", 0)->role == "producer");
  CHECK(member_of(body, "fc2.bias", 0) != nullptr);
  CHECK(member_of(body, "fc1.weight", 1)->role == "consumer");
  CHECK(member_of(body, "head.weight", 1)->role == "consumer");
  const PruneGroup& squeeze = group_named(*graph, "fc1");
  CHECK(squeeze.units == 2);
  CHECK(member_of(squeeze, "fc2.weight", 1) != nullptr);
}

TEST_CASE("prune graph: an op without a rule freezes its tensors with a warning naming op and layer") {
  torch::manual_seed(7);
  torch::jit::Module net("Odd");
  net.register_module("stem", profagent::test::conv(8, 3, 3));
  net.register_module("mid", profagent::test::conv(8, 8, 3));
  net.register_module("head", profagent::test::conv(4, 8, 1));
  net.define(
      "def forward(self, x):\n"
      "    x = torch.relu(self.stem.forward(x))\n"
      "    x = torch.cumsum(self.mid.forward(x), 1)\n"
      "    return self.head.forward(x)\n");
  auto graph = graph_of(net, {torch::randn({1, 3, 8, 8})});
  CHECK(graph->find_group("mid") == nullptr);
  CHECK(graph->find_group("stem") != nullptr);
  bool warned = false;
  for (const auto& warning : graph->warnings()) warned = warned || contains(warning, "no pruning rule for aten::cumsum");
  CHECK(warned);
  bool noted = false;
  for (const auto& note : graph->frozen_notes()) noted = noted || contains(note.reason, "aten::cumsum");
  CHECK(noted);

  SUBCASE("a plugin rule makes it prunable") {
    PruneRules rules = PruneRules::builtin();
    rules.set("aten::cumsum", [](RuleContext& c) {
      // cumsum along dim 1 mixes channels: only the other dims map.
      for (std::int64_t d : {0, 2, 3}) c.identity({c.input(0), d}, {c.output(0), d});
      c.freeze({c.input(0), 1}, "cumsum over channels");
    });
    DependencyOptions options;
    options.rules = &rules;
    auto with_rule = graph_of(net, {torch::randn({1, 3, 8, 8})}, options);
    CHECK(with_rule->warnings().empty());
    CHECK(with_rule->find_group("mid") == nullptr);  // the rule itself freezes the channels
  }
}

TEST_CASE("prune graph: branches on module attributes are specialised, branches on training are kept and analysed") {
  torch::manual_seed(8);
  torch::jit::Module net("Branchy");
  net.register_module("stem", profagent::test::conv(8, 3, 3));
  net.register_module("mid", profagent::test::conv(8, 8, 3));
  net.register_module("tail", profagent::test::conv(6, 8, 3));
  net.register_module("tail2", profagent::test::conv(5, 6, 3));
  net.register_module("head", profagent::test::conv(4, 5, 1));
  net.register_attribute("use_residual", c10::BoolType::get(), true);
  net.register_attribute("training", c10::BoolType::get(), false);
  net.define(
      "def forward(self, x):\n"
      "    x = torch.relu(self.stem.forward(x))\n"
      "    if self.use_residual:\n"
      "        y = x + self.mid.forward(x)\n"
      "    else:\n"
      "        y = self.mid.forward(x)\n"
      "    t = torch.relu(self.tail.forward(y))\n"
      "    if self.training:\n"
      "        t = t * 0.5\n"
      "    u = torch.relu(self.tail2.forward(t))\n"
      "    if bool(u.sum() > 1e30):\n"
      "        u = torch.cumsum(u, 1)\n"
      "    return self.head.forward(u)\n");
  auto graph = graph_of(net, {torch::randn({1, 3, 8, 8})});
  // The residual branch ran and its alternative is gone: stem and mid share one group.
  const PruneGroup& stem = group_named(*graph, "stem");
  CHECK(member_of(stem, "mid.weight", 0) != nullptr);
  int ifs = 0;
  for (const auto* node : graph->graph()->nodes()) ifs += node->kind() == c10::prim::If ? 1 : 0;
  CHECK(ifs == 2);  // the training branch and the data-dependent one stay
  // The training branch ran in the training-mode recording: its mul is mapped, tail stays prunable.
  CHECK(graph->find_group("tail") != nullptr);
  // The data-dependent branch ran in no recording but reads u: tail2's channels are frozen, not guessed.
  CHECK(graph->find_group("tail2") == nullptr);
  bool frozen_by_branch = false;
  for (const auto& note : graph->frozen_notes()) frozen_by_branch = frozen_by_branch || contains(note.reason, "did not run");
  CHECK(frozen_by_branch);
}

TEST_CASE("prune graph: the rule registry falls back from in-place ops and holds every built-in family") {
  const PruneRules& rules = PruneRules::builtin();
  CHECK(rules.find("aten::relu_") != nullptr);
  CHECK(rules.find("aten::conv2d") != nullptr);
  CHECK(rules.find("aten::view") != nullptr);
  CHECK(rules.find("aten::cumsum") == nullptr);
}
