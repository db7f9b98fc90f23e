// Evaluation throughput (images/s) of profagent's evaluator against python3-torch on the same model
// file and data, in the same run:
//   bench_eval_throughput MODEL.pt [--channels 3] [--batch 256] [--threads 2] [--repeats 3]
// Both sides read the Fashion-MNIST test set into memory first, then time a full pass of
// preprocessing + forward + top-1 counting; each side's best of `repeats` passes is compared.
#include <torch/script.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "evaluator.hpp"
#include "profagent/torch/model_io.hpp"
#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/torch/dataset.hpp"

namespace {

const char* kImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
const char* kLabels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
constexpr double kMean = 0.2860, kStd = 0.3530;

std::string run_python(const std::string& model, int batch, int threads, int channels, int repeats) {
  std::string command = "/usr/bin/python3 " + std::string(PROFAGENT_BENCH_DIR) + "/eval_throughput.py '" + model +
                        "' " + kImages + " " + kLabels + " " + std::to_string(batch) + " " +
                        std::to_string(threads) + " " + std::to_string(channels) + " " + std::to_string(repeats) +
                        " " + std::to_string(kMean) + " " + std::to_string(kStd);
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return out;
  char buffer[4096];
  while (std::fgets(buffer, sizeof(buffer), pipe)) out += buffer;
  ::pclose(pipe);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.pt [--channels 3] [--batch 256] [--threads 2] [--repeats 3]\n", argv[0]);
    return 2;
  }
  std::string model_path = argv[1];
  int channels = 1, batch = 256, threads = 2, repeats = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    int value = std::atoi(argv[i + 1]);
    if (flag == "--channels") channels = value;
    else if (flag == "--batch") batch = value;
    else if (flag == "--threads") threads = value;
    else if (flag == "--repeats") repeats = value;
  }

  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager(registry);
  const auto& record = manager.load_file(std::string(PROFAGENT_PLUGIN_OUTPUT_DIR) + "/libdataset_idx.so");
  if (!record.loaded) {
    std::fprintf(stderr, "cannot load the idx dataset plugin: %s\n", record.refusal.c_str());
    return 1;
  }
  profagent::Json config = {{"images", kImages}, {"labels", kLabels}, {"mean", {kMean}}, {"std", {kStd}}};
  if (channels == 3) config["channels"] = 3, config["mean"] = {kMean, kMean, kMean}, config["std"] = {kStd, kStd, kStd};
  const auto* factory = registry.find_provider("dataset", "idx");
  auto resolved = factory->config.resolve(config);
  if (!resolved) {
    std::fprintf(stderr, "%s\n", resolved.status().to_string().c_str());
    return 1;
  }
  auto provider = factory->make(resolved.value());
  if (!provider) {
    std::fprintf(stderr, "%s\n", provider.status().to_string().c_str());
    return 1;
  }
  auto* dataset = dynamic_cast<profagent::torch_tk::Dataset*>(provider.value().get());

  torch::jit::Module model = torch::jit::load(model_path);
  model.eval();
  profagent::agents::EvaluationInputs inputs;
  inputs.model = &model;
  inputs.model_summary = {{"path", model_path}};  // the size is the file's, not a fresh save
  inputs.dataset = dataset;
  profagent::agents::EvaluationOptions options;
  options.batch_size = batch;
  options.threads = threads;
  options.measure_latency = false;

  double best = 0, accuracy = 0;
  for (int r = 0; r < repeats; ++r) {
    auto start = std::chrono::steady_clock::now();
    auto metrics = profagent::agents::evaluate(inputs, options);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!metrics) {
      std::fprintf(stderr, "%s\n", metrics.status().to_string().c_str());
      return 1;
    }
    accuracy = metrics.value()["accuracy"].get<double>();
    if (r == 0 || seconds < best) best = seconds;
  }
  double ours = dataset->info().size / best;

  std::string python_line = run_python(model_path, batch, threads, channels, repeats);
  profagent::Json python;
  try {
    python = profagent::Json::parse(python_line);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "the PyTorch side failed: %s\n%s\n", e.what(), python_line.c_str());
    return 1;
  }
  double theirs = python["images_per_s"].get<double>();
  std::printf("model %s, %lld images, batch %d, threads %d (best of %d)\n", model_path.c_str(),
              static_cast<long long>(dataset->info().size), batch, threads, repeats);
  std::printf("profagent evaluator : %9.1f images/s  (%.3f s, accuracy %.4f, includes metrics other than latency)\n",
              ours, best, accuracy);
  std::printf("python3-torch %-6s: %9.1f images/s  (%.3f s, accuracy %.4f)\n",
              python["torch"].get<std::string>().c_str(), theirs, python["seconds"].get<double>(),
              python["accuracy"].get<double>());
  std::printf("ratio profagent / PyTorch: %.2fx (goal >= 1.0x)\n", ours / theirs);
  return 0;
}
