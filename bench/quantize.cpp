// Dynamic int8 of a TorchScript model against its best fp32 variant and python3-torch's
// quantize_dynamic, at one thread (every pool), in one run:
//   bench_quantize MODEL.pt TORCHVISION_NAME [--shape C,H,W] [--repeats 20]
// Prints the file sizes (fp32, ours), the output error against fp32, and p50 latencies of the loaded
// fp32 module, a frozen + optimize_for_inference copy, and the int8 model, timed alternately in
// rounds; then runs bench/quantize.py (PyTorch's quantize_dynamic on the same weights, one thread).
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "profagent/quantize/linear_quantize.hpp"
#include "profagent/torch/quantized_engine.hpp"
#include "profagent/torch/threads.hpp"

namespace {

double time_ms(torch::jit::Module& module, const torch::Tensor& input) {
  auto start = std::chrono::steady_clock::now();
  module.forward({input});
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_quantize MODEL.pt TORCHVISION_NAME [--shape C,H,W] [--repeats N]\n");
    return 2;
  }
  std::string path = argv[1];
  const std::string name = argv[2];
  std::vector<std::int64_t> shape{3, 224, 224};
  int repeats = 20;
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    if (key == "--repeats") repeats = std::stoi(argv[i + 1]);
    if (key == "--shape") {
      shape.clear();
      std::stringstream in(argv[i + 1]);
      for (std::string part; std::getline(in, part, ',');) shape.push_back(std::stoll(part));
    }
  }
  profagent::torch_tk::ThreadsGuard threads(1);
  torch::NoGradGuard no_grad;
  torch::jit::Module fp32 = torch::jit::load(path);
  fp32.eval();
  // torchvision zero-initializes some weights (vit_b_16's heads.head): with random weights elsewhere
  // its output is identically 0 and no error against fp32 can be measured. Such parameters get
  // N(0, 0.02) values (fixed seed) and the model is saved again; every side (ours, Python) uses that file.
  torch::manual_seed(0);
  bool filled = false;
  for (const auto& parameter : fp32.named_parameters()) {
    if (parameter.value.dim() < 2 || parameter.value.count_nonzero().item<std::int64_t>() != 0) continue;
    parameter.value.normal_(0.0, 0.02);
    std::printf("%s was all zero: filled with N(0, 0.02)\n", parameter.name.c_str());
    filled = true;
  }
  if (filled) {
    path = (std::filesystem::temp_directory_path() / ("bench_quantize_" + name + "_fp32.pt")).string();
    fp32.save(path);
  }
  torch::jit::Module frozen = torch::jit::freeze(fp32.clone());
  frozen = torch::jit::optimize_for_inference(frozen);
  std::map<std::string, profagent::quantize::Scheme> schemes;
  auto layers = profagent::quantize::find_linear_layers(fp32);
  if (!layers) {
    std::fprintf(stderr, "%s\n", layers.status().to_string().c_str());
    return 1;
  }
  for (const auto& layer : layers.value()) schemes[layer.path] = profagent::quantize::Scheme::kInt8Dynamic;
  auto started = std::chrono::steady_clock::now();
  auto quantized = profagent::quantize::quantize_linear_layers(fp32, schemes);
  if (!quantized) {
    std::fprintf(stderr, "%s\n", quantized.status().to_string().c_str());
    return 1;
  }
  const double quantize_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  profagent::torch_tk::QuantizedEngineGuard engine(quantized->engine);
  const std::string saved = (std::filesystem::temp_directory_path() / ("bench_quantize_" + name + ".pt")).string();
  quantized->module->save(saved);
  torch::jit::Module int8 = torch::jit::load(saved);
  int8.eval();
  const auto fp32_size = std::filesystem::file_size(path), int8_size = std::filesystem::file_size(saved);

  std::vector<std::int64_t> input_shape{1};
  input_shape.insert(input_shape.end(), shape.begin(), shape.end());
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn(input_shape);
  const torch::Tensor ref = fp32.forward({x}).toTensor();
  const torch::Tensor out = int8.forward({x}).toTensor();
  const double error = ((out - ref).norm() / ref.norm()).item<double>();
  for (int i = 0; i < 2; ++i) {  // warm-up
    time_ms(fp32, x);
    time_ms(frozen, x);
    time_ms(int8, x);
  }
  std::vector<double> t_fp32, t_frozen, t_int8;
  for (int i = 0; i < repeats; ++i) {  // alternating: each round times the three once
    t_fp32.push_back(time_ms(fp32, x));
    t_frozen.push_back(time_ms(frozen, x));
    t_int8.push_back(time_ms(int8, x));
  }
  const double best_fp32 = std::min(median(t_fp32), median(t_frozen));
  std::printf("%s: %zu layers, quantized in %.1f s, engine %s\n", name.c_str(), layers->size(), quantize_s,
              quantized->engine.c_str());
  std::printf("file: fp32 %.1f MB -> int8 %.1f MB (%+.1f%%)\n", fp32_size / 1e6, int8_size / 1e6,
              100.0 * (static_cast<double>(int8_size) / static_cast<double>(fp32_size) - 1.0));
  std::printf("output rel L2 vs fp32: %.4g\n", error);
  std::printf("p50 ms (1 thread): fp32 loaded %.1f, fp32 frozen+optimized %.1f, int8 %.1f -> %.2fx vs best fp32\n",
              median(t_fp32), median(t_frozen), median(t_int8), best_fp32 / median(t_int8));
  std::fflush(stdout);
  std::string command = "/usr/bin/python3 " + std::string(PROFAGENT_BENCH_DIR) + "/quantize.py '" + path + "' " +
                        name + " " + std::to_string(shape[0]) + " " + std::to_string(shape[1]) + " " +
                        std::to_string(shape[2]) + " " + std::to_string(repeats);
  std::printf("python quantize_dynamic: ");
  std::fflush(stdout);
  return std::system(command.c_str()) == 0 ? 0 : 1;
}
