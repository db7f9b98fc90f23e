// The static profile: exact MACs and parameters of small modules built here (counted by hand), the
// layer each op is attributed to, missing shapes, errors, and real torchvision models (scripted and
// traced) against the figures torchvision publishes. Exports are cached under the build tree.
#include "torch_doctest.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "model_loader.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "profagent/profile/static_profile.hpp"
#include "torchvision_models.hpp"
#include "torchvision_source.hpp"

namespace fs = std::filesystem;
using profagent::ErrorCode;
using profagent::test::load_torchvision;
using profagent::Json;
using profagent::torch_tk::KindStats;
using profagent::torch_tk::LayerProfile;
using profagent::torch_tk::OpCategory;
using profagent::torch_tk::OpCount;
using profagent::torch_tk::OpRule;
using profagent::torch_tk::OpRules;
using profagent::torch_tk::OpView;
using profagent::torch_tk::StaticProfile;
using profagent::torch_tk::StaticProfileOptions;

namespace {

// Shared with test_torchvision_source.cpp: an export made once is reused by later runs.
const fs::path kModelCache = fs::path(PROFAGENT_TEST_BINARY_DIR) / "static_profile_models";

bool contains(const std::string& text, const std::string& piece) {
  return text.find(piece) != std::string::npos;
}

torch::jit::Module module_with(const std::string& name,
                               const std::vector<std::pair<std::string, torch::Tensor>>& params,
                               const std::string& source) {
  torch::jit::Module module(name);
  for (const auto& [param, tensor] : params) module.register_parameter(param, tensor, /*is_buffer=*/false);
  module.define(source);
  return module;
}

StaticProfile profile_ok(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                         const StaticProfileOptions& options = {}) {
  auto profile = profagent::torch_tk::static_profile(module, inputs, options);
  REQUIRE_MESSAGE(profile.is_ok(), profile.status().to_string());
  return std::move(profile).value();
}

const LayerProfile& layer(const StaticProfile& profile, const std::string& name) {
  const LayerProfile* found = profile.find(name);
  REQUIRE_MESSAGE(found != nullptr, "no layer " << name << " in " << profile.to_json()["layers"].dump());
  return *found;
}

std::int64_t kind_macs(const StaticProfile& profile, const std::string& kind) {
  auto found = profile.kinds.find(kind);
  return found == profile.kinds.end() ? 0 : found->second.macs;
}

std::int64_t sum_numel(const torch::jit::Module& module) {
  std::int64_t total = 0;
  for (const auto& parameter : module.parameters()) total += parameter.numel();
  return total;
}

// conv2d groups=4 stride 2, a depthwise conv with bias, a transposed conv: three submodules.
torch::jit::Module make_conv_net() {
  torch::manual_seed(0);
  torch::jit::Module net("ConvNet");
  net.register_module(
      "grouped", module_with("Grouped", {{"weight", torch::randn({8, 2, 3, 3})}},
                             "def forward(self, x):\n"
                             "    return torch.conv2d(x, self.weight, None, [2, 2], [1, 1], [1, 1], 4)\n"));
  net.register_module(
      "depthwise",
      module_with("Depthwise", {{"weight", torch::randn({8, 1, 3, 3})}, {"bias", torch::randn({8})}},
                  "def forward(self, x):\n"
                  "    return torch.conv2d(x, self.weight, self.bias, [1, 1], [1, 1], [1, 1], 8)\n"));
  net.register_module("up", module_with("Up", {{"weight", torch::randn({8, 4, 2, 2})}},
                                        "def forward(self, x):\n"
                                        "    return torch.conv_transpose2d(x, self.weight, None, [2, 2])\n"));
  net.define(
      "def forward(self, x):\n"
      "    return self.up.forward(torch.relu(self.depthwise.forward(self.grouped.forward(x))))\n");
  return net;
}

// A linear submodule, a hand-written x @ W with a root parameter, an addmm through W.t() of another
// submodule, and matmul / bmm / einsum between activations.
torch::jit::Module make_matmul_net() {
  torch::manual_seed(0);
  torch::jit::Module net("MatmulNet");
  net.register_parameter("w", torch::randn({32, 6}), false);
  net.register_module("proj",
                      module_with("Proj", {{"weight", torch::randn({10, 32})}, {"bias", torch::randn({10})}},
                                  "def forward(self, x):\n"
                                  "    return torch.linear(x, self.weight, self.bias)\n"));
  net.register_module("fc", module_with("Fc", {{"weight", torch::randn({3, 6})}, {"bias", torch::randn({3})}},
                                        "def forward(self, x):\n"
                                        "    return x\n"));
  net.define(
      "def forward(self, x, a, b, c, d, q, k):\n"
      "    y = self.proj.forward(x)\n"
      "    z = torch.matmul(x, self.w)\n"
      "    f = torch.addmm(self.fc.bias, z.reshape([20, 6]), self.fc.weight.t())\n"
      "    m = torch.matmul(a, b)\n"
      "    n = torch.bmm(c, d)\n"
      "    e = torch.einsum('bhqd,bhkd->bhqk', [q, k])\n"
      "    return y, f, m, n, e\n");
  return net;
}

std::vector<torch::jit::IValue> matmul_inputs() {
  return {torch::randn({4, 5, 32}),  torch::randn({2, 3, 7, 5}), torch::randn({3, 5, 4}),
          torch::randn({6, 7, 5}),   torch::randn({6, 5, 9}),    torch::randn({2, 4, 7, 8}),
          torch::randn({2, 4, 9, 8})};
}

// Exports torchvision's VisionTransformer class itself (the vit_* builders fix patch size and depth)
// in a tiny configuration, scripted and traced, once per build tree.
void export_tiny_vit() {
  const fs::path script = kModelCache / "vit_tiny-script.pt";
  const fs::path trace = kModelCache / "vit_tiny-trace.pt";
  if (fs::exists(script) && fs::exists(trace)) return;
  fs::create_directories(kModelCache);
  const fs::path program = kModelCache / "export_vit_tiny.py";
  std::ofstream(program)
      << "import os, sys, torch\n"
         "from torchvision.models.vision_transformer import VisionTransformer\n"
         "torch.manual_seed(0)\n"
         "m = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4,\n"
         "                      hidden_dim=64, mlp_dim=128).eval()\n"
         "out = sys.argv[1]\n"
         "torch.jit.script(m).save(out + '/vit_tiny-script.pt.tmp')\n"
         "with torch.no_grad():\n"
         "    torch.jit.trace(m, torch.randn(1, 3, 32, 32)).save(out + '/vit_tiny-trace.pt.tmp')\n"
         "for name in ('script', 'trace'):\n"
         "    os.replace(f'{out}/vit_tiny-{name}.pt.tmp', f'{out}/vit_tiny-{name}.pt')\n";
  const std::string command =
      profagent::agents::default_python().string() + " " + program.string() + " " + kModelCache.string();
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "exporting the tiny ViT failed: " << command);
}

void check_near(std::int64_t macs, double published_gmacs) {
  const double gmacs = static_cast<double>(macs) / 1e9;
  CAPTURE(gmacs);
  CAPTURE(published_gmacs);
  CHECK(std::abs(gmacs - published_gmacs) <= 0.01 * published_gmacs);
}

}  // namespace

TEST_CASE(
    "a convolution counts (Cin / groups) x kernel MACs per output element, grouped, depthwise or "
    "transposed") {
  torch::jit::Module net = make_conv_net();
  StaticProfile profile = profile_ok(net, {torch::randn({1, 8, 16, 16})});
  // grouped: out [1, 8, 8, 8] = 512 elements × (8 / 4 input channels × 3 × 3)
  CHECK(layer(profile, "grouped").macs == 512 * 2 * 9);
  CHECK(layer(profile, "grouped").params == 8 * 2 * 9);
  CHECK(layer(profile, "grouped").param_bytes == 8 * 2 * 9 * 4);
  CHECK(layer(profile, "grouped").activation_bytes == 512 * 4);
  CHECK(layer(profile, "grouped").kind == "conv");
  // depthwise: out [1, 8, 8, 8] × (1 × 3 × 3); the bias is a parameter, not a MAC
  CHECK(layer(profile, "depthwise").macs == 512 * 9);
  CHECK(layer(profile, "depthwise").params == 8 * 9 + 8);
  // transposed: each of the 512 input elements spreads over (4 / 1 groups) × 2 × 2 outputs
  CHECK(layer(profile, "up").macs == 512 * 4 * 4);
  CHECK(profile.macs == 512 * 18 + 512 * 9 + 512 * 16);
  CHECK(profile.params == sum_numel(net));
  CHECK(profile.kinds.at("conv").ops == 3);
  // The relu ran in the root's forward and holds no parameter: an other op of the root.
  CHECK(layer(profile, profagent::torch_tk::kRootLayer).other_ops == 1);
  CHECK(layer(profile, profagent::torch_tk::kRootLayer).other_elements == 512);
  CHECK(profile.kinds.at("activation").elements == 512);
  CHECK(profile.attribution == "module scopes");
}

TEST_CASE("linear, matmul, bmm and einsum count M x K x N per product, broadcast batch dimensions included") {
  torch::jit::Module net = make_matmul_net();
  StaticProfile profile = profile_ok(net, matmul_inputs());
  CHECK(layer(profile, "proj").macs == 4 * 5 * 32 * 10);
  CHECK(layer(profile, "proj").kind == "linear");
  // addmm(bias, z [20, 6], fc.weight.t() [6, 3]): read through t(), so it is fc's
  CHECK(layer(profile, "fc").macs == 20 * 6 * 3);
  CHECK(layer(profile, "fc").kind == "linear");
  // x @ w with the root's own parameter is a linear layer; the products of activations are matmuls
  const std::int64_t by_hand_linear = 4 * 5 * 32 * 6;
  const std::int64_t matmuls = 2 * 3 * 7 * 5 * 4 + 6 * 7 * 5 * 9 + 2 * 4 * 7 * 9 * 8;
  CHECK(layer(profile, profagent::torch_tk::kRootLayer).macs == by_hand_linear + matmuls);
  CHECK(kind_macs(profile, "linear") == 4 * 5 * 32 * 10 + by_hand_linear + 20 * 6 * 3);
  CHECK(kind_macs(profile, "matmul") == matmuls);
  CHECK(profile.macs == kind_macs(profile, "linear") + kind_macs(profile, "matmul"));
  CHECK(profile.params == sum_numel(net));
  CHECK(profile.unrecognized_ops.empty());

  Json json = profile.to_json();
  CHECK(json["total"]["params"] == profile.params);
  CHECK(json["total"]["macs"] == profile.macs);
  CHECK(json["kinds"]["matmul"]["macs"] == matmuls);
  REQUIRE(json["layers"].is_array());
  for (const char* key : {"name", "kind", "params", "param_bytes", "macs", "activation_bytes", "kinds"}) {
    CAPTURE(key);
    CHECK(json["layers"][0].contains(key));
  }
}

TEST_CASE(
    "an op belongs to the module owning the parameters it reads, else to the module whose forward ran it") {
  torch::manual_seed(0);
  torch::jit::Module block("Block");
  block.register_module("conv",
                        module_with("Conv", {{"weight", torch::randn({4, 4, 3, 3})}},
                                    "def forward(self, x):\n"
                                    "    return torch.conv2d(x, self.weight, None, [1, 1], [1, 1])\n"));
  block.register_module("qkv",
                        module_with("Qkv", {{"weight", torch::randn({12, 4})}, {"bias", torch::randn({12})}},
                                    "def forward(self, x):\n"
                                    "    return x\n"));
  // Like torchvision's Swin: the block calls linear with its child's weights, and owns the residual.
  block.define(
      "def forward(self, x):\n"
      "    y = torch.relu(self.conv.forward(x)) + x\n"
      "    t = y.flatten(2).transpose(1, 2)\n"
      "    return torch.softmax(torch.linear(t, self.qkv.weight, self.qkv.bias), -1)\n");
  torch::jit::Module net("Net");
  net.register_module("block", block);
  net.define(
      "def forward(self, x):\n"
      "    return self.block.forward(x).sum()\n");
  StaticProfile profile = profile_ok(net, {torch::randn({1, 4, 6, 6})});

  CHECK(layer(profile, "block.conv").macs == 144 * 36);
  CHECK(layer(profile, "block.qkv").macs == 36 * 4 * 12);
  CHECK(layer(profile, "block.qkv").kind == "linear");
  const LayerProfile& owner = layer(profile, "block");
  CHECK(owner.macs == 0);
  CHECK(owner.kinds.at("activation").ops == 1);
  CHECK(owner.kinds.at("elementwise").ops == 1);
  CHECK(owner.kinds.at("softmax").elements == 36 * 12);
  CHECK(layer(profile, profagent::torch_tk::kRootLayer).kinds.at("reduction").ops == 1);
  // Layers come in execution order.
  std::vector<std::string> names;
  for (const LayerProfile& entry : profile.layers) names.push_back(entry.name);
  CHECK(names ==
        std::vector<std::string>{"block.conv", "block", "block.qkv", profagent::torch_tk::kRootLayer});
}

TEST_CASE("a parameter shared by two modules is counted once, its MACs at every use") {
  torch::Tensor shared = torch::randn({8, 8});
  const std::string source = "def forward(self, x):\n    return torch.linear(x, self.weight)\n";
  torch::jit::Module net("Tied");
  net.register_module("a", module_with("A", {{"weight", shared}}, source));
  net.register_module("b", module_with("B", {{"weight", shared}}, source));
  net.define("def forward(self, x):\n    return self.b.forward(self.a.forward(x))\n");
  StaticProfile profile = profile_ok(net, {torch::randn({2, 8})});
  CHECK(profile.params == 64);
  CHECK(profile.param_bytes == 64 * 4);
  CHECK(profile.macs == 2 * 2 * 8 * 8);
}

TEST_CASE("an op whose traced output shape is missing is counted from its inputs' shapes") {
  torch::jit::Module net = make_conv_net();
  const std::vector<torch::jit::IValue> inputs{torch::randn({1, 8, 16, 16})};
  StaticProfile reference = profile_ok(net, inputs);
  auto traced = profagent::torch_tk::trace_for_profile(net, inputs, "ConvNet");
  REQUIRE_MESSAGE(traced.is_ok(), traced.status().to_string());
  for (torch::jit::Node* node : traced->graph->nodes()) {
    if (node->kind().is_prim()) continue;
    for (torch::jit::Value* output : node->outputs()) {
      if (output->type()->cast<c10::TensorType>()) output->setType(c10::TensorType::get());
    }
  }
  auto profile = profagent::torch_tk::profile_traced(*traced);
  REQUIRE_MESSAGE(profile.is_ok(), profile.status().to_string());
  CHECK(profile->inferred_shapes == 4);  // three convolutions and the relu
  CHECK(profile->macs == reference.macs);
  CHECK(layer(*profile, "grouped").activation_bytes == layer(reference, "grouped").activation_bytes);
  CHECK(profile->other_elements == reference.other_elements);

  // Without the input's shape either, the first convolution cannot be counted: the error says where.
  traced->graph->inputs()[1]->setType(c10::TensorType::get());
  auto failed = profagent::torch_tk::profile_traced(*traced);
  REQUIRE_FALSE(failed.is_ok());
  CHECK(failed.status().code() == ErrorCode::kUnsupported);
  CHECK(contains(failed.status().message(), "static profile: cannot count aten::"));
  CHECK(contains(failed.status().message(), "in layer 'grouped' of ConvNet: the shape of input 0"));
}

TEST_CASE(
    "without module scopes (a debug build), a parameter-free op goes to the layer of its input's producer") {
  torch::jit::Module net = make_conv_net();
  auto traced = profagent::torch_tk::trace_for_profile(net, {torch::randn({1, 8, 16, 16})}, "ConvNet");
  REQUIRE_MESSAGE(traced.is_ok(), traced.status().to_string());
  REQUIRE(traced->has_scopes);
  traced->has_scopes = false;
  auto profile = profagent::torch_tk::profile_traced(*traced);
  REQUIRE_MESSAGE(profile.is_ok(), profile.status().to_string());
  CHECK(profile->attribution == "producer (no module scopes recorded)");
  CHECK(layer(*profile, "depthwise").other_ops == 1);  // the relu that ran in the root's forward
  CHECK(profile->find(profagent::torch_tk::kRootLayer) == nullptr);
  CHECK(profile->macs == 512 * 18 + 512 * 9 + 512 * 16);
}

TEST_CASE("a forward that fails while tracing is reported with the model's name and the reason") {
  torch::jit::Module net = make_conv_net();
  auto profile = profagent::torch_tk::static_profile(net, {torch::randn({1, 3, 16, 16})});
  REQUIRE_FALSE(profile.is_ok());
  CHECK(profile.status().code() == ErrorCode::kRuntime);
  CHECK(contains(profile.status().message(),
                 "static profile of ConvNet: the forward pass failed while tracing: "));
  CHECK(contains(profile.status().message(), "channels"));
}

TEST_CASE("a rule added to the registry counts its op, and an op without a rule is listed as unrecognized") {
  torch::jit::Module net("Custom");
  net.define(
      "def forward(self, x):\n"
      "    return torch.cumprod(torch.relu(x), 0)\n");
  OpRules rules = OpRules::builtin();
  rules.set("aten::relu",
            OpRule{"custom", OpCategory::kCompute, [](const OpView& op) -> profagent::Result<OpCount> {
                     OpCount count;
                     count.macs.push_back({"custom", op.input_shape(0)->at(0) * 100, -1});
                     return count;
                   }});
  StaticProfileOptions options;
  options.rules = &rules;
  StaticProfile profile = profile_ok(net, {torch::randn({3, 5})}, options);
  CHECK(kind_macs(profile, "custom") == 300);
  CHECK(profile.unrecognized_ops == std::map<std::string, std::int64_t>{{"aten::cumprod", 1}});
  CHECK(profile.kinds.at("other").elements == 15);
  CHECK(OpRules::builtin().find("aten::relu")->kind == "activation");
  CHECK(OpRules::builtin().find("aten::relu_") == OpRules::builtin().find("aten::relu"));  // in place alike
  CHECK(OpRules::builtin().find("aten::no_such_op") == nullptr);
}

TEST_CASE("profiling leaves the module as it was: still in training mode, still running its own plan") {
  torch::jit::Module net = make_conv_net();
  net.train();
  torch::Tensor input = torch::randn({1, 8, 16, 16});
  torch::Tensor before = net.forward({input}).toTensor();
  profile_ok(net, {input});
  CHECK(net.is_training());
  CHECK(torch::allclose(net.forward({input}).toTensor(), before));
}

TEST_CASE(
    "a tiny torchvision VisionTransformer, scripted and traced, counts projections, attention and MLP "
    "exactly") {
  export_tiny_vit();
  // 32x32 image, 8x8 patches: 16 patches + the class token = 17 tokens of width 64; 2 layers, MLP 128.
  const std::int64_t tokens = 17, width = 64, mlp = 128, layers = 2;
  const std::int64_t patchify = 16 * width * (3 * 8 * 8);
  const std::int64_t in_proj = tokens * width * 3 * width;
  const std::int64_t attention = 2 * tokens * tokens * width;  // QK^T and AV over all heads
  const std::int64_t out_proj = tokens * width * width;
  const std::int64_t mlps = 2 * tokens * width * mlp;
  const std::int64_t head = width * 1000;
  const std::int64_t expected = patchify + layers * (in_proj + attention + out_proj + mlps) + head;
  for (const std::string mode : {"script", "trace"}) {
    CAPTURE(mode);
    torch::jit::Module vit = torch::jit::load((kModelCache / ("vit_tiny-" + mode + ".pt")).string());
    StaticProfile profile = profile_ok(vit, {torch::randn({1, 3, 32, 32})});
    CHECK(profile.macs == expected);
    CHECK(profile.params == sum_numel(vit));
    CHECK(kind_macs(profile, "attention") + kind_macs(profile, "matmul") == layers * attention);
    CHECK(layer(profile, "encoder.layers.encoder_layer_1.mlp.0").macs == tokens * width * mlp);
    CHECK(layer(profile, "encoder.layers.encoder_layer_1.self_attention.out_proj").macs == out_proj);
    CHECK(layer(profile, "encoder.layers.encoder_layer_0.self_attention").macs == in_proj + attention);
    CHECK(layer(profile, "encoder.layers.encoder_layer_0").kinds.at("elementwise").ops == 2);  // residuals
    CHECK(layer(profile, "conv_proj").macs == patchify);
    CHECK(layer(profile, "encoder").params == tokens * width);  // the position embedding
  }
}

TEST_CASE(
    "resnet50, vit_b_16 and swin_t scripted and traced match torchvision's published GFLOPS within 1%") {
  struct Expected {
    const char* name;
    double gmacs;
  };
  for (const Expected& model :
       {Expected{"resnet50", 4.09}, Expected{"vit_b_16", 17.56}, Expected{"swin_t", 4.49}}) {
    for (const std::string mode : {"script", "trace"}) {
      const std::string source = std::string("torchvision:") + model.name + "?export=" + mode;
      CAPTURE(source);
      torch::jit::Module module = load_torchvision(source);
      StaticProfile profile = profile_ok(module, {torch::randn({1, 3, 224, 224})});
      check_near(profile.macs, model.gmacs);
      CHECK(profile.params == sum_numel(module));
      CHECK(profile.unrecognized_ops.empty());
      CHECK(profile.attribution == "module scopes");
      if (std::string(model.name) == "vit_b_16") {
        // The fused attention of eval + no_grad: 16.85 G in projections and MLPs, 0.715 G in QK^T and AV.
        check_near(kind_macs(profile, "linear") + kind_macs(profile, "conv"), 16.85);
        check_near(kind_macs(profile, "attention"), 0.715);
        CHECK(layer(profile, "encoder.layers.encoder_layer_7.mlp.0").kind == "linear");
      }
      if (std::string(model.name) == "swin_t") {
        // Relative position bias tables are parameters of the attention modules, outside any Linear.
        CHECK(layer(profile, "features.1.0.attn").params == 169 * 3);
        CHECK(layer(profile, "features.1.0.attn").kinds.at("matmul").macs > 0);
      }
      if (std::string(model.name) == "resnet50") CHECK(layer(profile, "layer3.4.conv2").kind == "conv");
    }
  }
}
