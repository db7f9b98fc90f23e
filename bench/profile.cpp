// What the profiler costs and how well its per-layer figures add up, on real models, in one run:
//   bench_profile [--threads 1] [--repeats 20] [--warmup 3] [--skip-torchvision]
// (a) the time to produce the static profile of vit_b_16 and resnet101 (goal < 2 s each);
// (b) the sum of the per-layer p50 latencies / the bare forward's p50 for the fixture ResNet and ViT,
//     resnet50 and vit_b_16 (acceptance: within ±15%);
// (c) the dynamic profile's cost multiple (goal ≤ 3×): the wall time of one dynamic_profile() call
//     (its own warm-up, the attribution/memory/trace forward, the profiled forwards and, in the first
//     column, the interleaved bare forwards the profiler agent runs) / (bare forward p50 × repeats).
//     The model is warmed up first (the JIT's profiling runs and graph optimization happen on the first
//     calls of a freshly loaded model), so the call and the bare forwards run the same optimized plan.
// (d) the profile's attribution against layers timed alone: for the top layers of resnet50 (and the
//     fixture ResNet), each layer's profiled latency_ms next to its own forward timed alone on the
//     input it gets in the model (profagent/profile/isolated_layers.hpp); rounds alternate the two.
// All at the same intra-op thread count, set once at the start.
// torchvision models are exported once with /usr/bin/python3 (tools/export_torchvision.py) into the
// acquisition agent's cache (~/.cache/profagent/torchvision).
#include <torch/script.h>

#include <ATen/Parallel.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "profagent/profile/dynamic_profile.hpp"
#include "profagent/profile/isolated_layers.hpp"
#include "profagent/profile/static_profile.hpp"
#include "profagent/torch/threads.hpp"
#include "torchvision_source.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Model {
  std::string label;
  std::string path;
  std::vector<std::int64_t> shape;
};

std::string torchvision_model(const std::string& name) {
  auto request = profagent::agents::parse_torchvision_source("torchvision:" + name);
  if (!request) return {};
  auto exported = profagent::agents::export_torchvision(request.value(), "torchvision:" + name, {});
  if (!exported) {
    std::fprintf(stderr, "cannot export %s: %s\n", name.c_str(), exported.status().to_string().c_str());
    return {};
  }
  return exported->path.string();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n == 0 ? 0.0 : n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

torch::jit::Module load(const Model& model) {
  auto module = torch::jit::load(model.path);
  module.eval();
  return module;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, repeats = 20, warmup = 3;
  bool torchvision = true;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--skip-torchvision") torchvision = false;
    else if (i + 1 < argc && flag == "--threads") threads = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--repeats") repeats = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--warmup") warmup = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--repeats N] [--warmup N] [--skip-torchvision]\n", argv[0]);
      return 2;
    }
  }
  profagent::torch_tk::ThreadsGuard pools(threads);  // every pool (OpenBLAS's too), for the whole run
  torch::NoGradGuard no_grad;
  const std::string fixtures = std::string(PROFAGENT_SOURCE_DIR) + "/tests/fixtures/models/";
  std::vector<Model> dynamic_models = {{"fixture ResNet", fixtures + "resnet_fmnist.pt", {1, 1, 28, 28}},
                                       {"fixture ViT", fixtures + "vit_fmnist.pt", {1, 3, 28, 28}}};
  std::vector<Model> static_models;
  if (torchvision) {
    const std::vector<std::int64_t> imagenet = {1, 3, 224, 224};
    static_models = {{"vit_b_16", torchvision_model("vit_b_16"), imagenet},
                     {"resnet101", torchvision_model("resnet101"), imagenet}};
    dynamic_models.push_back({"resnet50", torchvision_model("resnet50"), imagenet});
    dynamic_models.push_back({"vit_b_16", static_models[0].path, imagenet});
  }
  std::printf("threads %d, warmup %d, repeats %d, LibTorch %s\n\n", at::get_num_threads(), warmup, repeats,
              TORCH_VERSION);

  std::printf("(a) static profile time (goal < 2 s)\n\n| model | MACs | first s | second s |\n|---|---:|---:|---:|\n");
  for (const Model& model : static_models) {
    if (model.path.empty()) continue;
    auto module = load(model);
    std::vector<torch::jit::IValue> inputs{torch::randn(model.shape)};
    double seconds[2] = {0, 0};
    std::int64_t macs = 0;
    for (double& s : seconds) {
      const auto start = Clock::now();
      auto profile = profagent::torch_tk::static_profile(module, inputs);
      s = std::chrono::duration<double>(Clock::now() - start).count();
      if (!profile) {
        std::fprintf(stderr, "%s: %s\n", model.label.c_str(), profile.status().to_string().c_str());
        return 1;
      }
      macs = profile->macs;
    }
    std::printf("| %s | %.3f G | %.2f | %.2f |\n", model.label.c_str(), macs / 1e9, seconds[0], seconds[1]);
  }

  std::printf(
      "\n(b) per-layer sum vs whole model, (c) cost of the dynamic profile\n\n"
      "| model | bare p50 ms | profiled p50 ms | sum of layers ms | sum ratio | gap ms | layers | method | "
      "cost × (bare+profiled) | cost × (profiled only) |\n|---|---:|---:|---:|---:|---:|---:|---|---:|---:|\n");
  for (const Model& model : dynamic_models) {
    if (model.path.empty()) continue;
    auto module = load(model);
    std::vector<torch::jit::IValue> inputs{torch::randn(model.shape)};
    // Warm the freshly loaded model up: the profiling executor's first calls profile and optimize.
    for (int i = 0; i < std::max(warmup, 2); ++i) (void)module.forward(inputs);
    profagent::torch_tk::DynamicProfileOptions options;
    options.model_name = model.label;
    options.warmup = warmup;
    options.repeats = repeats;
    auto profile = profagent::torch_tk::dynamic_profile(module, inputs, options);
    if (!profile) {
      std::fprintf(stderr, "%s: %s\n", model.label.c_str(), profile.status().to_string().c_str());
      return 1;
    }
    const double budget_s = profile->bare.p50_ms * repeats / 1000.0;
    // The same without the bare forwards: what the per-layer profile alone costs.
    options.bare = false;
    auto alone = profagent::torch_tk::dynamic_profile(module, inputs, options);
    if (!alone) return 1;
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %zu | %s | %.2f | %.2f |\n", model.label.c_str(),
                profile->bare.p50_ms, profile->profiled.p50_ms, profile->sum_of_layers_ms, profile->sum_ratio,
                profile->gap_ms, profile->layers.size(), profile->method.c_str(), profile->seconds / budget_s,
                alone->seconds / budget_s);
    std::fflush(stdout);
  }

  std::printf(
      "\n(d) profiled vs isolated: the top layers by profiled latency, each also timed alone on its input in the "
      "model (median of 3 alternating rounds)\n\n| model | layer | profiled ms | alone ms | profiled / alone |\n"
      "|---|---|---:|---:|---:|\n");
  for (const Model& model : dynamic_models) {
    if (model.path.empty() || (model.label != "resnet50" && model.label != "fixture ResNet")) continue;
    auto module = load(model);
    std::vector<torch::jit::IValue> inputs{torch::randn(model.shape)};
    profagent::torch_tk::DynamicProfileOptions options;
    options.warmup = warmup;
    options.repeats = repeats;
    options.trace = false;
    options.memory = false;
    auto first = profagent::torch_tk::dynamic_profile(module, inputs, options);
    if (!first) return 1;
    std::vector<profagent::torch_tk::LayerTiming> ranked = first->layers;
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.ms > b.ms; });
    std::vector<std::string> top;
    for (const auto& layer : ranked)
      if (layer.name != "(root)" && top.size() < 8) top.push_back(layer.name);
    std::vector<std::vector<double>> profiled(top.size()), alone(top.size());
    profagent::torch_tk::IsolatedTimingOptions alone_options;
    alone_options.warmup = warmup;
    alone_options.repeats = repeats;
    for (int round = 0; round < 3; ++round) {
      auto profile = profagent::torch_tk::dynamic_profile(module, inputs, options);
      auto times = profagent::torch_tk::time_layers_alone(module, inputs, top, alone_options);
      if (!profile || !times) {
        std::fprintf(stderr, "%s: %s\n", model.label.c_str(),
                     (!profile ? profile.status() : times.status()).to_string().c_str());
        return 1;
      }
      for (std::size_t i = 0; i < top.size(); ++i) {
        profiled[i].push_back(profile->find(top[i]) ? profile->find(top[i])->ms : 0.0);
        alone[i].push_back((*times)[i].p50_ms);
      }
    }
    for (std::size_t i = 0; i < top.size(); ++i)
      std::printf("| %s | `%s` | %.3f | %.3f | %.3f |\n", model.label.c_str(), top[i].c_str(), median(profiled[i]),
                  median(alone[i]), median(profiled[i]) / median(alone[i]));
    std::fflush(stdout);
  }
  return 0;
}
