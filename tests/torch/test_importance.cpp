// Importance criteria: the SDK's helpers (torch/importance.hpp) and the l1, l2, bn_scale, random and
// taylor providers loaded from the real importance_basic plugin. Expected scores are computed here
// element by element from the tensors' raw data, not with the helpers under test; Taylor's
// gradients are checked against autograd run by the test itself, on a small scripted model and on
// the Fashion-MNIST ResNet fixture, scripted and traced, with real Fashion-MNIST images.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/torch/importance.hpp"
#include "test_support.hpp"
#include "torch_doctest.hpp"
#include "torchvision_source.hpp"

namespace fs = std::filesystem;
using profagent::ErrorCode;
using profagent::Json;
using profagent::test::contains;
using profagent::torch_tk::GradientMap;
using profagent::torch_tk::GroupReduction;
using profagent::torch_tk::ImportanceCriterion;
using profagent::torch_tk::ImportanceGroup;
using profagent::torch_tk::ImportanceMember;

namespace {

const fs::path kPluginDir = fs::path(PROFAGENT_PLUGIN_OUTPUT_DIR);
const fs::path kFashionMnist = "/usr/share/datasets/fashion-mnist";
const fs::path kResnetFixture =
    fs::path(PROFAGENT_SOURCE_DIR) / "tests" / "fixtures" / "models" / "resnet_fmnist.pt";
const fs::path kModelCache = fs::path(PROFAGENT_TEST_BINARY_DIR) / "importance_models";

using Units = std::vector<std::vector<std::int64_t>>;

// The plugins this suite needs, loaded once through the kernel's plugin manager.
struct Plugins {
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager{registry};
  Plugins() {
    for (const char* name : {"libimportance_basic.so", "libdataset_idx.so"}) {
      const fs::path file = kPluginDir / name;
      REQUIRE_MESSAGE(fs::exists(file), ("build the plugin first: " + file.string()));
      const auto& record = manager.load_file(file.string());
      REQUIRE_MESSAGE(record.loaded, record.refusal);
    }
  }
};

Plugins& plugins() {
  static Plugins instance;
  return instance;
}

profagent::Result<std::unique_ptr<ImportanceCriterion>> try_criterion(const std::string& id,
                                                                      const Json& config) {
  const profagent::ProviderFactory* factory = plugins().registry.find_provider("importance", id);
  if (!factory) return profagent::Status(ErrorCode::kNotFound, "no importance provider '" + id + "'");
  auto resolved = factory->config.resolve(config);
  if (!resolved) return std::move(resolved).take_status();
  auto made = factory->make(resolved.value());
  if (!made) return std::move(made).take_status();
  auto* typed = dynamic_cast<ImportanceCriterion*>(made.value().get());
  REQUIRE_MESSAGE(typed != nullptr, "provider " << id << " is not an ImportanceCriterion");
  made.value().release();
  return std::unique_ptr<ImportanceCriterion>(typed);
}

std::unique_ptr<ImportanceCriterion> criterion(const std::string& id, Json config = Json::object()) {
  auto made = try_criterion(id, config);
  REQUIRE_MESSAGE(made.is_ok(), made.status().to_string());
  return std::move(made).value();
}

torch::Tensor score(ImportanceCriterion& criterion, const ImportanceGroup& group,
                    GroupReduction reduction = GroupReduction::kSum) {
  auto scores = criterion.score(group, reduction);
  REQUIRE_MESSAGE(scores.is_ok(), scores.status().to_string());
  return scores.value();
}

ImportanceMember member(std::string param, torch::Tensor weight, std::int64_t dim, Units units,
                        std::string role, std::string kind) {
  ImportanceMember out;
  out.param = std::move(param);
  out.weight = std::move(weight);
  out.dim = dim;
  out.unit_indices = std::move(units);
  out.role = std::move(role);
  out.module_kind = std::move(kind);
  return out;
}

// Unit u owns `width` consecutive indices starting at offset + u·width (one row when width is 1).
Units blocks(std::int64_t units, std::int64_t width = 1, std::int64_t offset = 0) {
  Units out(static_cast<std::size_t>(units));
  for (std::int64_t u = 0; u < units; ++u)
    for (std::int64_t i = 0; i < width; ++i)
      out[static_cast<std::size_t>(u)].push_back(offset + u * width + i);
  return out;
}

// Σ f(w, g) over the elements of `w` whose coordinate along `dim` is in `indices`, walking the raw
// float data with the strides of a contiguous copy (independent of torch's indexing and reductions).
template <class F>
double slice_sum(const torch::Tensor& weight, const torch::Tensor& grad, std::int64_t dim,
                 const std::vector<std::int64_t>& indices, F f) {
  torch::Tensor w = weight.detach().to(torch::kFloat64).contiguous();
  torch::Tensor g = grad.defined() ? grad.detach().to(torch::kFloat64).contiguous() : torch::zeros_like(w);
  const double* wd = w.data_ptr<double>();
  const double* gd = g.data_ptr<double>();
  const std::int64_t stride = w.stride(dim);
  const std::int64_t size = w.size(dim);
  double total = 0;
  for (std::int64_t flat = 0; flat < w.numel(); ++flat) {
    const std::int64_t coordinate = (flat / stride) % size;
    if (std::find(indices.begin(), indices.end(), coordinate) != indices.end())
      total += f(wd[flat], gd[flat]);
  }
  return total;
}

double l1_of(const ImportanceMember& m, std::size_t unit) {
  return slice_sum(m.weight, {}, m.dim, m.unit_indices[unit], [](double w, double) { return std::abs(w); });
}
double l2_of(const ImportanceMember& m, std::size_t unit) {
  return slice_sum(m.weight, {}, m.dim, m.unit_indices[unit], [](double w, double) { return w * w; });
}
double taylor_of(const ImportanceMember& m, std::size_t unit) {
  return std::abs(
      slice_sum(m.weight, m.grad, m.dim, m.unit_indices[unit], [](double w, double g) { return w * g; }));
}

std::vector<double> values_of(const torch::Tensor& scores) {
  torch::Tensor s = scores.to(torch::kFloat64).contiguous();
  return std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
}

void check_close(const torch::Tensor& scores, const std::vector<double>& expected, double rel = 1e-9) {
  std::vector<double> got = values_of(scores);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(expected[i]).epsilon(rel));
  }
}

std::vector<std::int64_t> ascending_order(const torch::Tensor& scores) {
  torch::Tensor order = std::get<1>(scores.sort(/*stable=*/true, 0, false)).contiguous();
  return std::vector<std::int64_t>(order.data_ptr<std::int64_t>(),
                                   order.data_ptr<std::int64_t>() + order.numel());
}

// A conv's output channels with filters of chosen magnitudes (channel c scaled by scale[c]), its BN
// (γ, β as role "norm", as a graph may label them) and the next conv, whose input channels follow.
ImportanceGroup conv_group() {
  torch::manual_seed(1);
  const std::vector<double> scale{0.5, 3.0, 1.0, 2.0};
  torch::Tensor w1 = torch::randn({4, 3, 3, 3}) * torch::tensor(scale, torch::kFloat32).view({4, 1, 1, 1});
  ImportanceGroup group;
  group.name = "layer1.0.conv1";
  group.units = 4;
  group.members = {
      member("layer1.0.conv1.weight", w1, 0, blocks(4), "producer", "conv"),
      member("layer1.0.bn1.weight", torch::tensor({0.9f, -0.2f, 1.5f, 0.1f}), 0, blocks(4), "norm",
             "batch_norm"),
      member("layer1.0.bn1.bias", torch::tensor({5.0f, 5.0f, -5.0f, 5.0f}), 0, blocks(4), "norm",
             "batch_norm"),
      member("layer1.0.conv2.weight", torch::randn({5, 4, 3, 3}), 1, blocks(4), "consumer", "conv")};
  return group;
}

}  // namespace

TEST_CASE("the importance_basic plugin registers l1, l2, bn_scale, random and taylor with their defaults") {
  for (const char* id : {"l1", "l2", "bn_scale", "random", "taylor"}) {
    CAPTURE(id);
    const profagent::ProviderFactory* factory = plugins().registry.find_provider("importance", id);
    REQUIRE(factory != nullptr);
    CHECK(factory->interface == profagent::torch_tk::kImportanceInterface);
    CHECK(criterion(id)->needs_gradients() == (std::string(id) == "taylor"));
  }
  auto l1 = plugins().registry.find_provider("importance", "l1")->config.resolve(Json::object());
  REQUIRE(l1.is_ok());
  CHECK(l1->get_string("normalize") == "mean");
  CHECK(Json(l1->get_list("roles")) == Json::array({"producer", "consumer", "norm"}));
  CHECK(plugins()
            .registry.find_provider("importance", "taylor")
            ->config.resolve(Json::object())
            ->get_bool("multivariable"));
}

TEST_CASE(
    "l1 ranks a conv's channels by their filters and sums, averages or maxes producer, BN γ and consumer") {
  ImportanceGroup group = conv_group();
  // The producer alone: the channels come out in the order of the chosen magnitudes.
  auto producer_only = criterion("l1", {{"normalize", "none"}, {"roles", {"producer"}}});
  CHECK(ascending_order(score(*producer_only, group)) == std::vector<std::int64_t>{0, 2, 3, 1});

  // Counted by default: producer, consumer and γ; β (bn1.bias, labelled "norm") is a bias and is not.
  const std::vector<std::size_t> counted{0, 1, 3};
  auto l1 = criterion("l1", {{"normalize", "none"}});
  std::vector<double> sum(4), mean(4), max(4);
  for (std::size_t u = 0; u < 4; ++u) {
    for (std::size_t m : counted) {
      const double local = l1_of(group.members[m], u);
      sum[u] += local;
      max[u] = std::max(max[u], local);
    }
    mean[u] = sum[u] / 3;
  }
  check_close(score(*l1, group, GroupReduction::kSum), sum);
  check_close(score(*l1, group, GroupReduction::kMean), mean);
  check_close(score(*l1, group, GroupReduction::kMax), max);
  CHECK(max[0] < sum[0]);  // the reductions really differ on this group

  // Normalisation scales the group, never reorders it: mean → scores average 1.
  torch::Tensor normalized = score(*criterion("l1"), group, GroupReduction::kSum);
  CHECK(normalized.mean().item<double>() == doctest::Approx(1.0));
  CHECK(ascending_order(normalized) == ascending_order(score(*l1, group, GroupReduction::kSum)));
  check_close(score(*criterion("l1", {{"normalize", "max"}}), group), [&] {
    std::vector<double> out = sum;
    const double top = *std::max_element(sum.begin(), sum.end());
    for (double& v : out) v /= top;
    return out;
  }());
}

TEST_CASE("l2 squares every weight of a head's block of rows and of a flattened channel's H·W features") {
  torch::manual_seed(2);
  // Attention with 2 heads of head_dim 3 over width 8: head h owns rows 3h..3h+2 of each third of the
  // fused q/k/v weight [18, 8] (three members, one per third) and columns 3h..3h+2 of the projection.
  torch::Tensor qkv = torch::randn({18, 8});
  ImportanceGroup heads;
  heads.name = "encoder.layers.0.self_attention";
  heads.units = 2;
  for (std::int64_t third = 0; third < 3; ++third)
    heads.members.push_back(member("encoder.layers.0.self_attention.in_proj_weight", qkv, 0,
                                   blocks(2, 3, 6 * third), "producer", "linear"));
  heads.members.push_back(member("encoder.layers.0.self_attention.out_proj.weight", torch::randn({8, 6}), 1,
                                 blocks(2, 3), "consumer", "linear"));
  std::vector<double> expected(2);
  for (std::size_t h = 0; h < 2; ++h)
    for (const ImportanceMember& m : heads.members) expected[h] += l2_of(m, h);
  check_close(score(*criterion("l2", {{"normalize", "none"}}), heads), expected);

  // A conv's 3 channels flattened from 3×2×2 into a linear: channel c owns input features 4c..4c+3.
  ImportanceGroup flattened;
  flattened.name = "features.conv";
  flattened.units = 3;
  flattened.members = {
      member("features.conv.weight", torch::randn({3, 2, 3, 3}), 0, blocks(3), "producer", "conv"),
      member("classifier.weight", torch::randn({5, 12}), 1, blocks(3, 4), "consumer", "linear")};
  std::vector<double> mean(3);
  for (std::size_t c = 0; c < 3; ++c)
    mean[c] = (l2_of(flattened.members[0], c) + l2_of(flattened.members[1], c)) / 2;
  check_close(score(*criterion("l2", {{"normalize", "none"}}), flattened, GroupReduction::kMean), mean);
}

TEST_CASE("a member with no indices for a unit is left out of that unit's mean and max") {
  ImportanceGroup group;
  group.name = "concat";
  group.units = 2;
  group.members = {member("a.weight", torch::full({2, 1}, 2.0), 0, blocks(2), "producer", "linear"),
                   member("b.weight", torch::full({1, 1}, 8.0), 0, Units{{}, {0}}, "producer", "linear")};
  auto l1 = criterion("l1", {{"normalize", "none"}});
  check_close(score(*l1, group, GroupReduction::kMean), {2.0, 5.0});
  check_close(score(*l1, group, GroupReduction::kMax), {2.0, 8.0});
  check_close(score(*l1, group, GroupReduction::kSum), {2.0, 10.0});
}

TEST_CASE("random scores are reproducible per seed and group, whatever the order groups are scored in") {
  ImportanceGroup a = conv_group();
  ImportanceGroup b = conv_group();
  b.name = "layer2.0.conv1";
  auto first = criterion("random", {{"seed", 7}});
  torch::Tensor a1 = score(*first, a);
  torch::Tensor b1 = score(*first, b);
  auto second = criterion("random", {{"seed", 7}});
  torch::Tensor b2 = score(*second, b);  // the other order
  torch::Tensor a2 = score(*second, a);
  CHECK(torch::equal(a1, a2));
  CHECK(torch::equal(b1, b2));
  CHECK_FALSE(torch::equal(a1, b1));
  CHECK_FALSE(torch::equal(a1, score(*criterion("random", {{"seed", 8}}), a)));
  CHECK(a1.sizes() == torch::IntArrayRef({4}));
  CHECK(a1.min().item<double>() >= 0.0);
  CHECK(a1.max().item<double>() < 1.0);
  const std::vector<double> values = values_of(a1);
  CHECK(std::set<double>(values.begin(), values.end()).size() == 4);
}

TEST_CASE("bn_scale reads |γ| of the norm members and refuses a group without a norm, naming it") {
  ImportanceGroup group = conv_group();
  check_close(score(*criterion("bn_scale", {{"normalize", "none"}}), group), {0.9, 0.2, 1.5, 0.1}, 1e-6);

  // A LayerNorm over 2 heads of 2: each head sums the |γ| of its block.
  ImportanceGroup ln;
  ln.name = "blocks.0.norm";
  ln.units = 2;
  ln.members = {member("blocks.0.norm.weight", torch::tensor({1.0f, -2.0f, 0.5f, 0.25f}), 0, blocks(2, 2),
                       "norm", "layer_norm")};
  check_close(score(*criterion("bn_scale", {{"normalize", "none"}}), ln), {3.0, 0.75});

  ImportanceGroup hidden;
  hidden.name = "encoder.layers.1.mlp.0";
  hidden.units = 2;
  hidden.members = {
      member("encoder.layers.1.mlp.0.weight", torch::ones({2, 3}), 0, blocks(2), "producer", "linear")};
  auto refused = criterion("bn_scale")->score(hidden, GroupReduction::kMean);
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().code() == ErrorCode::kUnsupported);
  CHECK(contains(refused.status().message(), "group 'encoder.layers.1.mlp.0'"));
  CHECK(contains(refused.status().message(), "l1 or l2"));
}

TEST_CASE("malformed groups and configs are refused with the group, parameter and unit named") {
  auto l1 = criterion("l1");
  auto refusal = [&](const ImportanceGroup& group) {
    auto scored = l1->score(group, GroupReduction::kMean);
    REQUIRE_FALSE(scored.is_ok());
    CHECK(scored.status().code() == ErrorCode::kInvalidArgument);
    return scored.status().message();
  };
  ImportanceGroup group = conv_group();
  group.members[3].unit_indices.pop_back();
  CHECK(contains(refusal(group),
                 "group 'layer1.0.conv1': member 'layer1.0.conv2.weight' has indices for 3 units, "
                 "the group has 4"));
  group = conv_group();
  group.members[0].unit_indices[2] = {4};
  CHECK(contains(refusal(group),
                 "member 'layer1.0.conv1.weight': unit 2 has index 4, outside [0, 4) of dim 0"));
  group = conv_group();
  group.members[1].dim = 1;
  CHECK(contains(refusal(group), "member 'layer1.0.bn1.weight': dim 1 is out of range for shape [4]"));
  group = conv_group();
  group.members[0].grad = torch::zeros({4, 3});
  CHECK(contains(refusal(group), "gradient of shape [4, 3] for a tensor of shape [4, 3, 3, 3]"));
  group = conv_group();
  group.units = 0;
  CHECK(contains(refusal(group), "group 'layer1.0.conv1' has 0 units"));
  group.members.clear();
  group.units = 4;
  CHECK(contains(refusal(group), "group 'layer1.0.conv1' has no members"));

  CHECK(contains(profagent::torch_tk::parse_group_reduction("median").status().message(),
                 "group reduction must be one of mean, sum, max, not 'median'"));
  CHECK(profagent::torch_tk::parse_group_reduction("max").value() == GroupReduction::kMax);
  CHECK_FALSE(try_criterion("l1", {{"normalize", "median"}}).is_ok());
  CHECK_FALSE(try_criterion("l1", {{"roles", {"weights"}}}).is_ok());
  CHECK_FALSE(try_criterion("random", {{"seed", -1}}).is_ok());

  auto bad = profagent::torch_tk::validate_scores(conv_group(), torch::tensor({1.0, -1.0, 0.0, 2.0}));
  CHECK(contains(bad.message(), "scores of group 'layer1.0.conv1' have negative values"));
  CHECK(contains(profagent::torch_tk::validate_scores(conv_group(), torch::ones({3})).message(),
                 "expected [4]"));
}

// ---- Taylor and compute_gradients ----

namespace {

using Batches = std::vector<std::pair<torch::Tensor, torch::Tensor>>;

torch::jit::Module with_training(const std::string& name) {
  torch::jit::Module module(name);
  module.register_attribute("training", c10::BoolType::get(), true);
  return module;
}

// conv(1→4, 3×3) → BN → ReLU → 2×2 average pool → flatten (channel c → features 4c..4c+3) → linear(16→3),
// scripted from source with define(), left in training mode with non-trivial BN statistics.
torch::jit::Module small_net() {
  torch::manual_seed(3);
  torch::jit::Module conv = with_training("Conv");
  conv.register_parameter("weight", torch::randn({4, 1, 3, 3}) * 0.5, false);
  conv.register_parameter("bias", torch::randn({4}) * 0.1, false);
  conv.define("def forward(self, x):\n  return torch.conv2d(x, self.weight, self.bias)\n");
  torch::jit::Module bn = with_training("Bn");
  bn.register_parameter("weight", torch::rand({4}) + 0.5, false);
  bn.register_parameter("bias", torch::randn({4}) * 0.1, false);
  bn.register_buffer("running_mean", torch::randn({4}) * 0.2);
  bn.register_buffer("running_var", torch::rand({4}) + 0.5);
  bn.define(
      "def forward(self, x):\n"
      "  return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, "
      "self.training, "
      "0.1, 1e-5, False)\n");
  torch::jit::Module fc = with_training("Fc");
  fc.register_parameter("weight", torch::randn({3, 16}) * 0.3, false);
  fc.register_parameter("bias", torch::zeros({3}), false);
  fc.define("def forward(self, x):\n  return torch.linear(x, self.weight, self.bias)\n");
  torch::jit::Module net = with_training("SmallNet");
  net.register_module("conv", conv);
  net.register_module("bn", bn);
  net.register_module("fc", fc);
  net.define(
      "def forward(self, x):\n"
      "  x = torch.relu(self.bn.forward(self.conv.forward(x)))\n"
      "  x = torch.adaptive_avg_pool2d(x, [2, 2])\n"
      "  return self.fc.forward(torch.flatten(x, 1))\n");
  return net;
}

std::map<std::string, torch::Tensor> parameters_of(const torch::jit::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& named : module.named_parameters(true)) out[named.name] = named.value;
  return out;
}

// The small net's gradients written out by hand in eval mode (BN on its running statistics): the mean
// over batches of each batch's mean cross-entropy, differentiated by autograd.
GradientMap small_net_reference(const torch::jit::Module& net, const Batches& batches) {
  std::map<std::string, torch::Tensor> p;
  for (auto& [name, value] : parameters_of(net)) p[name] = value.detach().clone().requires_grad_(true);
  torch::Tensor mean = net.attr("bn").toModule().attr("running_mean").toTensor();
  torch::Tensor var = net.attr("bn").toModule().attr("running_var").toTensor();
  torch::Tensor loss = torch::zeros({});
  for (const auto& [x, labels] : batches) {
    torch::Tensor y = torch::conv2d(x, p["conv.weight"], p["conv.bias"]);
    y = torch::relu(torch::batch_norm(y, p["bn.weight"], p["bn.bias"], mean, var, false, 0.1, 1e-5, false));
    y = torch::linear(torch::flatten(torch::adaptive_avg_pool2d(y, {2, 2}), 1), p["fc.weight"], p["fc.bias"]);
    loss = loss + torch::nn::functional::cross_entropy(y, labels) / static_cast<double>(batches.size());
  }
  loss.backward();
  GradientMap out;
  for (auto& [name, value] : p) out[name] = value.grad();
  return out;
}

Batches small_batches() {
  torch::manual_seed(4);
  return {{torch::randn({5, 1, 6, 6}), torch::tensor({0, 2, 1, 1, 0}, torch::kInt64)},
          {torch::randn({3, 1, 6, 6}), torch::tensor({2, 2, 0}, torch::kInt64)}};
}

// |got - expected| within `rel` of the largest expected score: Taylor scores are small and some
// units nearly cancel, so a per-element relative tolerance would be meaningless for those.
void check_close_scaled(const torch::Tensor& scores, const std::vector<double>& expected, double rel) {
  std::vector<double> got = values_of(scores);
  REQUIRE(got.size() == expected.size());
  const double top = *std::max_element(expected.begin(), expected.end());
  REQUIRE(top > 0);
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(std::abs(got[i] - expected[i]) <= rel * top);
  }
}

void check_gradients_match(const GradientMap& got, const GradientMap& expected) {
  CHECK(got.size() == expected.size());
  for (const auto& [name, grad] : expected) {
    CAPTURE(name);
    REQUIRE(got.count(name) == 1);
    CHECK(torch::allclose(got.at(name), grad, 1e-4, 1e-6));
  }
}

}  // namespace

TEST_CASE(
    "compute_gradients on a scripted model equals autograd in eval mode and leaves the model as it was") {
  torch::jit::Module net = small_net();
  const Batches batches = small_batches();
  const torch::Tensor mean_before = net.attr("bn").toModule().attr("running_mean").toTensor().clone();
  const GradientMap expected = small_net_reference(net, batches);

  auto gradients = profagent::torch_tk::compute_gradients(net, batches);
  REQUIRE_MESSAGE(gradients.is_ok(), gradients.status().to_string());
  check_gradients_match(gradients.value(), expected);
  // The BN's γ gradient in training mode (batch statistics) differs: the check above would catch it.
  CHECK(net.is_training());
  CHECK(net.attr("bn").toModule().is_training());
  CHECK(torch::equal(net.attr("bn").toModule().attr("running_mean").toTensor(), mean_before));
  for (const auto& [name, value] : parameters_of(net)) {
    CAPTURE(name);
    CHECK_FALSE(value.requires_grad());
    CHECK_FALSE(value.grad().defined());
  }

  // Taylor on the conv's channels: producer, γ, and the linear's 4 flattened features per channel.
  ImportanceGroup group;
  group.name = "conv";
  group.units = 4;
  std::map<std::string, torch::Tensor> p = parameters_of(net);
  group.members = {member("conv.weight", p["conv.weight"], 0, blocks(4), "producer", "conv"),
                   member("conv.bias", p["conv.bias"], 0, blocks(4), "bias", "conv"),
                   member("bn.weight", p["bn.weight"], 0, blocks(4), "norm", "batch_norm"),
                   member("bn.bias", p["bn.bias"], 0, blocks(4), "norm", "batch_norm"),
                   member("bn.running_mean", net.attr("bn").toModule().attr("running_mean").toTensor(), 0,
                          blocks(4), "buffer", "batch_norm"),
                   member("fc.weight", p["fc.weight"], 1, blocks(4, 4), "consumer", "linear")};
  auto taylor = criterion("taylor", {{"normalize", "none"}});
  auto missing = taylor->score(group, GroupReduction::kSum);
  REQUIRE_FALSE(missing.is_ok());
  CHECK(contains(missing.status().message(), "group 'conv': member 'conv.weight' has no gradient"));

  REQUIRE(profagent::torch_tk::attach_gradients(group, gradients.value()).is_ok());
  ImportanceGroup reference = group;  // the same members with autograd's gradients
  for (ImportanceMember& m : reference.members)
    if (m.role != "buffer") m.grad = expected.at(m.param);
  std::vector<double> by_default(4), with_bias(4), elementwise(4);
  for (std::size_t u = 0; u < 4; ++u) {
    for (std::size_t m : {0, 2, 5}) {
      by_default[u] += taylor_of(reference.members[m], u);
      elementwise[u] +=
          slice_sum(reference.members[m].weight, reference.members[m].grad, reference.members[m].dim,
                    reference.members[m].unit_indices[u], [](double w, double g) { return std::abs(w * g); });
    }
    with_bias[u] = by_default[u] + taylor_of(reference.members[1], u) + taylor_of(reference.members[3], u);
  }
  check_close_scaled(score(*taylor, group), by_default, 1e-5);
  check_close_scaled(score(*criterion("taylor", {{"normalize", "none"},
                                                 {"roles", {"producer", "consumer", "norm", "bias"}}}),
                           group),
                     with_bias, 1e-5);
  check_close_scaled(score(*criterion("taylor", {{"normalize", "none"}, {"multivariable", false}}), group),
                     elementwise, 1e-5);
}

TEST_CASE(
    "compute_gradients refuses outputs that are not logits, labels out of range and empty calibration") {
  torch::jit::Module net = small_net();
  Batches batches = small_batches();
  batches[1].second = torch::tensor({0, 3, 1}, torch::kInt64);
  auto out_of_range = profagent::torch_tk::compute_gradients(net, batches);
  REQUIRE_FALSE(out_of_range.is_ok());
  CHECK(contains(out_of_range.status().message(),
                 "calibration batch 1: label 3 is out of range for the model's 3 classes"));
  CHECK(net.is_training());  // restored on the error path too

  batches = small_batches();
  batches[0].second = torch::tensor({0, 1}, torch::kInt64);
  CHECK(contains(profagent::torch_tk::compute_gradients(net, batches).status().message(),
                 "calibration batch 0: labels must be [5] (one per input), not [2]"));
  batches = small_batches();
  batches[0].second = torch::tensor({0, 1, -1, 0, 0}, torch::kInt64);
  CHECK(contains(profagent::torch_tk::compute_gradients(net, batches).status().message(),
                 "label -1 is negative"));
  CHECK(contains(profagent::torch_tk::compute_gradients(net, {}).status().message(), "no calibration batch"));

  torch::jit::Module features = with_training("Features");
  features.register_parameter("weight", torch::randn({2, 1, 3, 3}), false);
  features.define("def forward(self, x):\n  return torch.conv2d(x, self.weight)\n");
  auto not_logits = profagent::torch_tk::compute_gradients(features, small_batches());
  REQUIRE_FALSE(not_logits.is_ok());
  CHECK(contains(not_logits.status().message(),
                 "the model's output is [5, 2, 4, 4] Float, expected floating-point logits [5, classes]"));
}

namespace {

// The ResNet fixture traced (in eval and in training mode) from its Python class with the scripted
// file's weights, once per build tree: tracing bakes BN's mode into the graph, unlike scripting.
void export_traced_resnet() {
  const fs::path eval = kModelCache / "resnet_fmnist-trace.pt";
  const fs::path train = kModelCache / "resnet_fmnist-trace-train.pt";
  if (fs::exists(eval) && fs::exists(train)) return;
  fs::create_directories(kModelCache);
  // ctest runs test cases as parallel processes: each writes its own script and temporary files, and
  // os.replace makes whichever finishes last win with an identical file.
  const std::string pid = std::to_string(::getpid());
  const fs::path program = kModelCache / ("trace_resnet_fmnist." + pid + ".py");
  std::ofstream(program)
      << "import os, sys, torch\n"
         "src, fixture, out = sys.argv[1:4]\n"
         "sys.path.insert(0, os.path.join(src, 'examples', 'models'))\n"
         "from make_fmnist_fixtures import CifarResNet\n"
         "m = CifarResNet(depth=14)\n"
         "m.load_state_dict(torch.jit.load(fixture).state_dict())\n"
         "x = torch.randn(2, 1, 28, 28)\n"
         "tmp = f'{os.getpid()}.tmp'\n"
         "torch.jit.trace(m.eval(), x).save(f'{out}/resnet_fmnist-trace.pt.{tmp}')\n"
         "torch.jit.trace(m.train(), x).save(f'{out}/resnet_fmnist-trace-train.pt.{tmp}')\n"
         "for name in ('trace', 'trace-train'):\n"
         "    os.replace(f'{out}/resnet_fmnist-{name}.pt.{tmp}', f'{out}/resnet_fmnist-{name}.pt')\n";
  const std::string command = profagent::agents::default_python().string() + " " + program.string() + " " +
                              std::string(PROFAGENT_SOURCE_DIR) + " " + kResnetFixture.string() + " " +
                              kModelCache.string();
  const int status = std::system(command.c_str());
  fs::remove(program);
  REQUIRE_MESSAGE(status == 0, "tracing the ResNet fixture failed: " << command);
}

// Two batches of 8 real Fashion-MNIST test images, read by the idx dataset plugin.
Batches fashion_batches() {
  REQUIRE_MESSAGE(fs::exists(kFashionMnist), "install the Debian package dataset-fashion-mnist");
  const profagent::ProviderFactory* factory = plugins().registry.find_provider("dataset", "idx");
  REQUIRE(factory != nullptr);
  auto config =
      factory->config.resolve(Json{{"images", (kFashionMnist / "t10k-images-idx3-ubyte.gz").string()},
                                   {"labels", (kFashionMnist / "t10k-labels-idx1-ubyte.gz").string()},
                                   {"limit", 16},
                                   {"mean", {0.2860}},
                                   {"std", {0.3530}}});
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  auto made = factory->make(config.value());
  REQUIRE_MESSAGE(made.is_ok(), made.status().to_string());
  auto* dataset = dynamic_cast<profagent::torch_tk::Dataset*>(made.value().get());
  REQUIRE(dataset != nullptr);
  Batches batches;
  for (std::int64_t start : {0, 8}) {
    std::vector<std::int64_t> indices(8);
    for (std::int64_t i = 0; i < 8; ++i) indices[static_cast<std::size_t>(i)] = start + i;
    profagent::torch_tk::Batch batch;
    REQUIRE(dataset->read_batch(indices, batch).is_ok());
    batches.emplace_back(batch.images.clone(), batch.labels.clone());
  }
  return batches;
}

// Autograd on a clone of `module` (eval mode, mean over batches of the mean cross-entropy).
GradientMap module_reference(const torch::jit::Module& module, const Batches& batches) {
  torch::jit::Module copy = module.clone();
  copy.eval();
  std::vector<std::string> names;
  std::vector<torch::Tensor> params;
  for (const auto& named : copy.named_parameters(true)) {
    names.push_back(named.name);
    params.push_back(named.value.requires_grad_(true));
  }
  torch::Tensor loss = torch::zeros({});
  for (const auto& [x, labels] : batches)
    loss = loss + torch::nn::functional::cross_entropy(copy.forward({x}).toTensor(), labels) /
                      static_cast<double>(batches.size());
  std::vector<torch::Tensor> grads =
      torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
  GradientMap out;
  for (std::size_t i = 0; i < names.size(); ++i)
    out[names[i]] = grads[i].defined() ? grads[i] : torch::zeros_like(params[i]);
  return out;
}

}  // namespace

TEST_CASE(
    "taylor on the Fashion-MNIST ResNet, scripted and traced, equals an autograd reference on real images") {
  export_traced_resnet();
  const Batches batches = fashion_batches();
  torch::jit::Module scripted = torch::jit::load(kResnetFixture.string());
  torch::jit::Module traced = torch::jit::load((kModelCache / "resnet_fmnist-trace.pt").string());
  // A trace has no `if self.training` left in its BatchNorms: the two files really are the two forms.
  auto bn_graph = [](const torch::jit::Module& module) {
    return module.attr("layer1")
        .toModule()
        .attr("0")
        .toModule()
        .attr("bn1")
        .toModule()
        .get_method("forward")
        .graph()
        ->toString();
  };
  CHECK(contains(bn_graph(scripted), "prim::If"));
  CHECK_FALSE(contains(bn_graph(traced), "prim::If"));

  GradientMap from_scripted;
  for (torch::jit::Module* module : {&scripted, &traced}) {
    CAPTURE(module == &scripted ? "scripted" : "traced");
    const GradientMap expected = module_reference(*module, batches);
    auto gradients = profagent::torch_tk::compute_gradients(*module, batches);
    REQUIRE_MESSAGE(gradients.is_ok(), gradients.status().to_string());
    check_gradients_match(gradients.value(), expected);
    if (module == &scripted)
      from_scripted = gradients.value();
    else  // same weights, same images: the two forms agree
      CHECK(torch::allclose(gradients->at("layer1.0.conv1.weight"), from_scripted.at("layer1.0.conv1.weight"),
                            1e-3, 1e-6));

    std::map<std::string, torch::Tensor> p = parameters_of(*module);
    ImportanceGroup group;
    group.name = "layer1.0.conv1";
    group.units = 16;
    group.members = {
        member("layer1.0.conv1.weight", p["layer1.0.conv1.weight"], 0, blocks(16), "producer", "conv"),
        member("layer1.0.bn1.weight", p["layer1.0.bn1.weight"], 0, blocks(16), "norm", "batch_norm"),
        member("layer1.0.conv2.weight", p["layer1.0.conv2.weight"], 1, blocks(16), "consumer", "conv")};
    REQUIRE(profagent::torch_tk::attach_gradients(group, gradients.value()).is_ok());
    std::vector<double> mean(16);
    for (std::size_t u = 0; u < 16; ++u) {
      for (ImportanceMember m : group.members) {
        m.grad = expected.at(m.param);
        mean[u] += taylor_of(m, u) / 3;
      }
    }
    check_close_scaled(score(*criterion("taylor", {{"normalize", "none"}}), group, GroupReduction::kMean),
                       mean, 1e-4);
  }
}

TEST_CASE("compute_gradients restores the BN statistics of a model traced in training mode") {
  export_traced_resnet();
  torch::jit::Module traced = torch::jit::load((kModelCache / "resnet_fmnist-trace-train.pt").string());
  const torch::Tensor before = traced.attr("layer1")
                                   .toModule()
                                   .attr("0")
                                   .toModule()
                                   .attr("bn1")
                                   .toModule()
                                   .attr("running_mean")
                                   .toTensor()
                                   .clone();
  auto gradients = profagent::torch_tk::compute_gradients(traced, fashion_batches());
  REQUIRE_MESSAGE(gradients.is_ok(), gradients.status().to_string());
  CHECK(gradients->at("layer1.0.bn1.weight").abs().sum().item<double>() > 0);
  CHECK(torch::equal(traced.attr("layer1")
                         .toModule()
                         .attr("0")
                         .toModule()
                         .attr("bn1")
                         .toModule()
                         .attr("running_mean")
                         .toTensor(),
                     before));
}
