// What structured pruning costs and what it buys, on real torchvision models, in one run:
//   bench_prune [--threads 1] [--repeats 20] [--warmup 5] [--ratio 0.3] [--round-to 8] [--models a,b]
// For each model (default resnet101 and vit_b_16, scripted, 1x3x224x224):
// (a) the time to build the dependency graph and the time to prune (choose, apply, save/load check)
//     at `ratio` with `round_to` (goal ≤ 3 s each);
// (b) the latency of the pruned model and of the original measured side by side in the same process
//     (alternating forwards, same threads, warm-up, median) next to the MAC reduction (goal: latency
//     reduction ≥ 70% of the MAC reduction).
// torchvision models are exported once with /usr/bin/python3 (tools/export_torchvision.py) into the
// acquisition agent's cache (~/.cache/profagent/torchvision).
#include <torch/script.h>

#include <ATen/Parallel.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "profagent/prune/prune_apply.hpp"
#include "torchvision_source.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace tk = profagent::torch_tk;

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

double time_forward(torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs) {
  const auto start = Clock::now();
  auto output = module.forward(inputs);
  (void)output;
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  const std::size_t n = samples.size();
  return n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, repeats = 20, warmup = 5;
  double ratio = 0.3;
  std::int64_t round_to = 8;
  std::vector<std::string> models = {"resnet101", "vit_b_16"};
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 < argc && flag == "--threads") threads = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--repeats") repeats = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--warmup") warmup = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--ratio") ratio = std::atof(argv[++i]);
    else if (i + 1 < argc && flag == "--round-to") round_to = std::atoll(argv[++i]);
    else if (i + 1 < argc && flag == "--models") models = split(argv[++i]);
    else {
      std::fprintf(stderr,
                   "usage: %s [--threads N] [--repeats N] [--warmup N] [--ratio R] [--round-to N] [--models a,b]\n",
                   argv[0]);
      return 2;
    }
  }
  at::set_num_threads(threads);
  std::printf("LibTorch %s, %d thread(s), ratio %.2f, round_to %lld, %d warm-up + %d alternating repeats\n\n",
              TORCH_VERSION, threads, ratio, static_cast<long long>(round_to), warmup, repeats);
  std::printf("| model | groups (pruned) | graph s | prune s | params M before → after | GMACs before → after | "
              "MAC red. | latency ms orig | latency ms pruned | latency red. | latency/MAC red. |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  int failures = 0;
  for (const std::string& name : models) {
    const std::string path = torchvision_model(name);
    if (path.empty()) {
      ++failures;
      continue;
    }
    torch::jit::Module original = torch::jit::load(path);
    original.eval();
    torch::manual_seed(0);
    const std::vector<torch::jit::IValue> inputs = {torch::randn({1, 3, 224, 224})};

    tk::PruneOptions options;
    options.ratio = ratio;
    options.round_to = round_to;
    tk::DependencyOptions graph_options;
    graph_options.model_name = name;
    auto pruned = tk::prune(original, inputs, options, graph_options);
    if (!pruned) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), pruned.status().to_string().c_str());
      ++failures;
      continue;
    }
    for (const auto& warning : pruned->warnings) std::fprintf(stderr, "%s: warning: %s\n", name.c_str(), warning.c_str());

    torch::NoGradGuard no_grad;
    torch::jit::Module& small = pruned->module;
    std::vector<double> base_ms, small_ms;
    for (int i = 0; i < warmup; ++i) {
      time_forward(original, inputs);
      time_forward(small, inputs);
    }
    // Alternating, and swapping who goes first, so drift on a shared machine hits both alike.
    for (int i = 0; i < repeats; ++i) {
      if (i % 2 == 0) {
        base_ms.push_back(time_forward(original, inputs));
        small_ms.push_back(time_forward(small, inputs));
      } else {
        small_ms.push_back(time_forward(small, inputs));
        base_ms.push_back(time_forward(original, inputs));
      }
    }
    const double base = median(base_ms), after = median(small_ms);
    const double mac_reduction = 1.0 - static_cast<double>(pruned->macs_after) / static_cast<double>(pruned->macs_before);
    const double latency_reduction = 1.0 - after / base;
    std::printf("| %s | %lld (%lld) | %.2f | %.2f | %.2f → %.2f | %.2f → %.2f | %.1f%% | %.1f | %.1f | %.1f%% | %.2f |\n",
                name.c_str(), static_cast<long long>(pruned->groups), static_cast<long long>(pruned->pruned_groups),
                pruned->graph_seconds, pruned->prune_seconds, pruned->params_before / 1e6, pruned->params_after / 1e6,
                pruned->macs_before / 1e9, pruned->macs_after / 1e9, 100 * mac_reduction, base, after,
                100 * latency_reduction, mac_reduction > 0 ? latency_reduction / mac_reduction : 0.0);
    std::fflush(stdout);
  }
  return failures == 0 ? 0 : 1;
}
