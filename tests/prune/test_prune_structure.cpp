// A pruned model keeps the original's module hierarchy: after pruning and a save/load round trip,
// Python's torch.jit.load lists the same module paths, every leaf's int attributes and class
// constants match its new weight shapes and its own forward runs on an input of those shapes; the
// root still calls its submodules (the static profile charges MACs to named layers, not to the root);
// and the result prunes again. Real torchvision models (resnet18, mobilenet_v2: depthwise `groups`)
// and the tiny transformers, scripted and traced.
#include "torch_doctest.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "model_loader.hpp"
#include "profagent/json.hpp"
#include "profagent/profile/static_profile.hpp"
#include "profagent/prune/prune_apply.hpp"
#include "test_support.hpp"
#include "tiny_transformers.hpp"
#include "torchvision_models.hpp"
#include "torchvision_source.hpp"

namespace fs = std::filesystem;
using namespace profagent::torch_tk;
using profagent::test::load_torchvision;

namespace {


// Compares the module trees of two saved models in Python and checks every pruned leaf: prints one
// JSON object (modules, leaves checked, leaves whose weight changed, problems).
const char* kStructureCheck = R"(import json, sys, torch
original = torch.jit.load(sys.argv[1]).eval()
pruned = torch.jit.load(sys.argv[2]).eval()
problems, checked, changed = [], 0, 0
before = dict(original.named_modules())
after = dict(pruned.named_modules())
if list(before) != list(after):
    problems.append("module paths differ: only before %s, only after %s" % (
        sorted(set(before) - set(after))[:5], sorted(set(after) - set(before))[:5]))
def expect(name, what, got, want):
    if got != want:
        problems.append("%s: %s is %s, its weight says %s" % (name, what, got, want))
def runs(name, module, x, dim, want):
    if not hasattr(before[name], "forward"):
        return  # never called as a module (traced Swin passes qkv's weight to a function)
    try:
        with torch.no_grad():
            y = module(x)
        expect(name, "forward's output dim %d" % dim, y.shape[dim], want)
    except Exception as e:
        problems.append("%s: its own forward fails: %s" % (name, str(e).splitlines()[0]))
for name, module in after.items():
    weight = dict(module.named_parameters(recurse=False)).get("weight")
    old = dict(before[name].named_parameters(recurse=False)).get("weight") if name in before else None
    if weight is None or old is None:
        continue
    kind = module.original_name
    changed += int(weight.shape != old.shape)
    if kind == "Conv2d":
        checked += 1
        # A traced conv has no attributes: its groups are read off the weight, which holds for the
        # models checked here (plain and depthwise convs only).
        scripted = hasattr(module, "groups")
        depthwise = old.shape[1] == 1 and old.shape[0] > 1
        groups = module.groups if scripted else (weight.shape[0] if depthwise else 1)
        if scripted:
            expect(name, "out_channels", module.out_channels, weight.shape[0])
            expect(name, "in_channels", module.in_channels, weight.shape[1] * groups)
        runs(name, module, torch.randn(1, weight.shape[1] * groups, 9, 9), 1, weight.shape[0])
    elif kind == "Linear":
        checked += 1
        if hasattr(module, "in_features"):
            expect(name, "in_features", module.in_features, weight.shape[1])
            expect(name, "out_features", module.out_features, weight.shape[0])
        runs(name, module, torch.randn(2, weight.shape[1]), -1, weight.shape[0])
    elif kind.startswith("BatchNorm"):
        checked += 1
        if hasattr(module, "num_features"):
            expect(name, "num_features", module.num_features, weight.shape[0])
        expect(name, "running_mean", module.running_mean.shape[0], weight.shape[0])
        runs(name, module, torch.randn(2, weight.shape[0], 3, 3), 1, weight.shape[0])
    elif kind == "LayerNorm":
        checked += 1
        if hasattr(module, "normalized_shape"):
            expect(name, "normalized_shape", list(module.normalized_shape), [weight.shape[0]])
        runs(name, module, torch.randn(2, 5, weight.shape[0]), -1, weight.shape[0])
print(json.dumps({"modules": len(after), "checked": checked, "changed": changed, "problems": problems}))
)";

profagent::Json python_structure_check(const fs::path& original, const fs::path& pruned, const fs::path& dir) {
  const fs::path program = dir / "structure.py";
  const fs::path report = dir / "structure.json";
  std::ofstream(program) << kStructureCheck;
  const std::string command = profagent::agents::default_python().string() + " " + program.string() + " " +
                              original.string() + " " + pruned.string() + " > " + report.string();
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "python failed: " << command);
  std::ifstream stream(report);
  return profagent::Json::parse(stream);
}

std::size_t method_calls(const torch::jit::Module& module) {
  return torch::jit::findAllNodes(*module.get_method("forward").graph(), c10::prim::CallMethod, true).size();
}

// Share of the MACs the static profile charges to the root rather than to a named layer.
double root_mac_share(const torch::jit::Module& module, const torch::Tensor& input) {
  auto profile = static_profile(module, {input}, StaticProfileOptions{});
  REQUIRE_MESSAGE(profile.is_ok(), profile.status().to_string());
  std::int64_t root = 0;
  for (const LayerProfile& layer : profile->layers) {
    if (layer.name == kRootLayer) root += layer.macs;
  }
  return static_cast<double>(root) / static_cast<double>(std::max<std::int64_t>(profile->macs, 1));
}

PruneResult prune_ok(const torch::jit::Module& module, const torch::Tensor& input, double ratio) {
  PruneOptions options;
  options.ratio = ratio;
  auto result = prune(module, {input}, options);
  REQUIRE_MESSAGE(result.is_ok(), result.status().to_string());
  return std::move(result).value();
}

// Prunes `model` at 0.3 and checks the result's structure (the root still calls its submodules; Python
// sees the same module paths and consistent leaves, at least `min_changed` of them resized), then
// prunes the result again.
void check_keeps_structure(const torch::jit::Module& model, const torch::Tensor& input, int min_changed) {
  PruneResult result = prune_ok(model, input, 0.3);
  REQUIRE(result.macs_after < result.macs_before);
  CHECK(method_calls(result.module) == method_calls(model));

  profagent::test::TempDir dir("prune_structure");
  model.save((dir.path() / "original.pt").string());
  result.module.save((dir.path() / "pruned.pt").string());
  const profagent::Json check = python_structure_check(dir.path() / "original.pt", dir.path() / "pruned.pt", dir.path());
  MESSAGE(check.dump());
  CHECK(check.at("problems").empty());
  CHECK(check.at("changed").get<int>() >= min_changed);
  CHECK(check.at("checked").get<int>() >= check.at("changed").get<int>());

  PruneResult again = prune_ok(result.module, input, 0.3);
  CHECK(again.macs_after < result.macs_after);
  CHECK(method_calls(again.module) == method_calls(model));
}

}  // namespace

TEST_CASE("pruned structure: torchvision CNNs keep their modules, attributes and per-layer profile") {
  torch::manual_seed(0);
  const torch::Tensor input = torch::randn({1, 3, 64, 64});
  for (const std::string name : {"resnet18", "mobilenet_v2"}) {
    for (const std::string export_kind : {"script", "trace"}) {
      CAPTURE(name);
      CAPTURE(export_kind);
      torch::jit::Module model = load_torchvision("torchvision:" + name + "?export=" + export_kind);
      check_keeps_structure(model, input, 10);
      CHECK(root_mac_share(prune_ok(model, input, 0.3).module, input) < 0.05);
    }
  }
}

TEST_CASE("pruned structure: the tiny ViT and Swin keep their modules and prune again") {
  for (const std::string name : {"vit", "swin"}) {
    for (const std::string export_kind : {"script", "trace"}) {
      CAPTURE(name);
      CAPTURE(export_kind);
      const torch::Tensor input = name == "vit" ? profagent::test::vit_input() : profagent::test::swin_input();
      check_keeps_structure(profagent::test::tiny_model(name, export_kind), input, 4);
    }
  }
}
