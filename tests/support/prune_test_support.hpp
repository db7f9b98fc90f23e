#pragma once
// Small real models for the pruning tests (built with Module::define, weights from a fixed seed), and
// helpers shared by test_prune_graph.cpp and test_prune_apply.cpp. Include after torch_doctest.hpp.
#include <string>
#include <utility>
#include <vector>

#include "profagent/prune/prune_apply.hpp"
#include "profagent/prune/prune_graph.hpp"

namespace profagent::test {

inline torch::jit::Module leaf(const std::string& name, const std::vector<std::pair<std::string, torch::Tensor>>& params,
                               const std::string& source,
                               const std::vector<std::pair<std::string, torch::Tensor>>& buffers = {}) {
  torch::jit::Module module(name);
  for (const auto& [param, tensor] : params) module.register_parameter(param, tensor, /*is_buffer=*/false);
  for (const auto& [buffer, tensor] : buffers) module.register_buffer(buffer, tensor);
  module.define(source);
  return module;
}

inline torch::jit::Module conv(int out, int in, int k, int groups = 1, bool bias = false, int padding = -1) {
  if (padding < 0) padding = k / 2;
  std::vector<std::pair<std::string, torch::Tensor>> params = {{"weight", torch::randn({out, in / groups, k, k}) * 0.3}};
  if (bias) params.emplace_back("bias", torch::randn({out}) * 0.1);
  const std::string bias_arg = bias ? "self.bias" : "None";
  return leaf("Conv2d", params,
              "def forward(self, x):\n"
              "    return torch.conv2d(x, self.weight, " + bias_arg + ", [1, 1], [" + std::to_string(padding) + ", " +
                  std::to_string(padding) + "], [1, 1], " + std::to_string(groups) + ")\n");
}

inline torch::jit::Module batch_norm(int channels) {
  return leaf("BatchNorm2d",
              {{"weight", torch::rand({channels}) + 0.5}, {"bias", torch::randn({channels}) * 0.1}},
              "def forward(self, x):\n"
              "    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, False, "
              "0.1, 1e-5, False)\n",
              {{"running_mean", torch::randn({channels}) * 0.1}, {"running_var", torch::rand({channels}) + 0.5}});
}

inline torch::jit::Module linear(int out, int in) {
  return leaf("Linear", {{"weight", torch::randn({out, in}) * 0.3}, {"bias", torch::randn({out}) * 0.1}},
              "def forward(self, x):\n"
              "    return torch.linear(x, self.weight, self.bias)\n");
}

// stem conv 3→8 + bn + relu; one basic block (two 3×3 convs + bns) added to its input; relu; global
// pool; flatten; fc 8→4. Input [N, 3, 8, 8].
inline torch::jit::Module residual_net() {
  torch::manual_seed(1);
  torch::jit::Module net("ResidualNet");
  net.register_module("conv1", conv(8, 3, 3));
  net.register_module("bn1", batch_norm(8));
  torch::jit::Module block("Block");
  block.register_module("conv_a", conv(8, 8, 3));
  block.register_module("bn_a", batch_norm(8));
  block.register_module("conv_b", conv(8, 8, 3));
  block.register_module("bn_b", batch_norm(8));
  block.define(
      "def forward(self, x):\n"
      "    y = torch.relu(self.bn_a.forward(self.conv_a.forward(x)))\n"
      "    y = self.bn_b.forward(self.conv_b.forward(y))\n"
      "    return torch.relu(y + x)\n");
  net.register_module("block", block);
  net.register_module("fc", linear(4, 8));
  net.define(
      "def forward(self, x):\n"
      "    x = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
      "    x = self.block.forward(x)\n"
      "    x = torch.adaptive_avg_pool2d(x, [1, 1])\n"
      "    x = torch.flatten(x, 1)\n"
      "    return self.fc.forward(x)\n");
  return net;
}

// Two branches from the stem (conv a 8→5, conv b 8→6) concatenated, then conv c 11→4.
inline torch::jit::Module concat_net() {
  torch::manual_seed(2);
  torch::jit::Module net("ConcatNet");
  net.register_module("stem", conv(8, 3, 3));
  net.register_module("a", conv(5, 8, 1));
  net.register_module("b", conv(6, 8, 3));
  net.register_module("c", conv(4, 11, 1));
  net.define(
      "def forward(self, x):\n"
      "    x = torch.relu(self.stem.forward(x))\n"
      "    y = torch.cat([torch.relu(self.a.forward(x)), torch.relu(self.b.forward(x))], 1)\n"
      "    return self.c.forward(y)\n");
  return net;
}

// stem 3→8, pointwise 8→12 + relu6, depthwise 3×3 (groups 12) with bias + relu6, pointwise 12→4.
inline torch::jit::Module depthwise_net() {
  torch::manual_seed(3);
  torch::jit::Module net("DepthwiseNet");
  net.register_module("stem", conv(8, 3, 3));
  net.register_module("expand", conv(12, 8, 1));
  net.register_module("dw", conv(12, 12, 3, /*groups=*/12, /*bias=*/true));
  net.register_module("project", conv(4, 12, 1));
  net.define(
      "def forward(self, x):\n"
      "    x = self.expand.forward(torch.relu(self.stem.forward(x)))\n"
      "    x = torch.relu6(self.dw.forward(torch.relu6(x)))\n"
      "    return self.project.forward(x)\n");
  return net;
}

// conv 3→4 on a 4×4 input, flatten (channel c owns 16 consecutive features), linear 64→5.
inline torch::jit::Module flatten_net() {
  torch::manual_seed(4);
  torch::jit::Module net("FlattenNet");
  net.register_module("stem", conv(6, 3, 3));
  net.register_module("conv", conv(4, 6, 3));
  net.register_module("fc", linear(5, 64));
  net.define(
      "def forward(self, x):\n"
      "    x = torch.relu(self.conv.forward(torch.relu(self.stem.forward(x))))\n"
      "    x = x.view(x.size(0), -1)\n"
      "    return self.fc.forward(x)\n");
  return net;
}

// Squeeze-and-excitation: conv 8→8, then x * sigmoid(fc2(relu(fc1(pool(x))))) with 1×1 convs
// (8→2→8), then conv 8→4.
inline torch::jit::Module se_net() {
  torch::manual_seed(5);
  torch::jit::Module net("SENet");
  net.register_module("stem", conv(8, 3, 3));
  net.register_module("body", conv(8, 8, 3));
  net.register_module("fc1", conv(2, 8, 1, 1, true));
  net.register_module("fc2", conv(8, 2, 1, 1, true));
  net.register_module("head", conv(4, 8, 1));
  net.define(
      "def forward(self, x):\n"
      "    x = torch.relu(self.body.forward(torch.relu(self.stem.forward(x))))\n"
      "    s = torch.adaptive_avg_pool2d(x, [1, 1])\n"
      "    s = torch.sigmoid(self.fc2.forward(torch.relu(self.fc1.forward(s))))\n"
      "    return self.head.forward(x * s)\n");
  return net;
}

// An MLP whose scripted code reads its hidden width from an int attribute: fc1 6→8, relu,
// x.view(N, self.hidden, 1), flatten, fc2 8→3.
inline torch::jit::Module mlp_with_attribute() {
  torch::manual_seed(6);
  torch::jit::Module net("AttrMLP");
  net.register_module("fc1", linear(8, 6));
  net.register_module("fc2", linear(3, 8));
  net.register_attribute("hidden", c10::IntType::get(), 8);
  net.define(
      "def forward(self, x):\n"
      "    h = torch.relu(self.fc1.forward(x))\n"
      "    h = h.view(h.size(0), self.hidden, 1)\n"
      "    return self.fc2.forward(torch.flatten(h, 1))\n");
  return net;
}

inline std::unique_ptr<torch_tk::DependencyGraph> graph_of(const torch::jit::Module& module,
                                                           const std::vector<torch::jit::IValue>& inputs,
                                                           const torch_tk::DependencyOptions& options = {}) {
  auto graph = torch_tk::build_dependency_graph(module, inputs, options);
  REQUIRE_MESSAGE(graph.is_ok(), graph.status().to_string());
  return std::move(graph).value();
}

inline const torch_tk::PruneGroup& group_named(const torch_tk::DependencyGraph& graph, const std::string& name) {
  const torch_tk::PruneGroup* group = graph.find_group(name);
  std::string names;
  for (const auto& g : graph.groups()) names += g.name + " ";
  REQUIRE_MESSAGE(group != nullptr, "no group " << name << "; groups: " << names);
  return *group;
}

inline const torch_tk::GroupMember* member_of(const torch_tk::PruneGroup& group, const std::string& param,
                                              std::int64_t dim) {
  for (const auto& member : group.members) {
    if (member.param == param && member.dim == dim) return &member;
  }
  return nullptr;
}

inline torch::Tensor forward_tensor(torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs) {
  torch::NoGradGuard no_grad;
  module.eval();
  return module.forward(inputs).toTensor();
}

}  // namespace profagent::test
