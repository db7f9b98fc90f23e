// Static int8 (profagent/quantize/static_int8.hpp) against fp32, side by side in one run:
//   bench_quantize_static [--threads 1] [--repeats 20] [--warmup 5] [--model resnet50] [--observer minmax]
//                         [--fmnist-limit 10000]
// (a) torchvision `model` (random weights, scripted, random BatchNorm statistics as the tests'
//     random_batch_norm.hpp sets them), 1x3x224x224: latency of the loaded fp32 module, of a frozen +
//     optimize_for_inference copy and of the static int8 model, forwards alternating, median; the
//     int8 speed-up over the faster fp32 variant (goal ≥ 1.5× at one thread); the int8 output's relative
//     L2 error against fp32; file sizes; MACs and params of both from the static profile.
// (b) the Fashion-MNIST fixture ResNet (tests/fixtures/models/resnet_fmnist.pt): calibrated on 512
//     training images (fixed seed), top-1 on the first `fmnist-limit` test images, fp32 and int8
//     (goal: drop ≤ 1 pt).
// (c) Python: the saved int8 model of (a) loaded with torch.jit.load (engine onednn) on the same input,
//     its output against LibTorch's.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "profagent/profile/static_profile.hpp"
#include "profagent/quantize/static_int8.hpp"
#include "profagent/torch/threads.hpp"
#include "random_batch_norm.hpp"
#include "torchvision_source.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string bench_torchvision_model(const std::string& name) {
  auto request = profagent::agents::parse_torchvision_source("torchvision:" + name);
  if (!request) return {};
  auto exported = profagent::agents::export_torchvision(request.value(), "torchvision:" + name, {});
  if (!exported) {
    std::fprintf(stderr, "cannot export %s: %s\n", name.c_str(), exported.status().to_string().c_str());
    return {};
  }
  return exported->path.string();
}

double bench_time_forward(torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs) {
  const auto start = Clock::now();
  auto output = module.forward(inputs);
  (void)output;
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double bench_median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  const std::size_t n = samples.size();
  return n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

double bench_rel_l2(const torch::Tensor& value, const torch::Tensor& reference) {
  return (value.to(torch::kDouble) - reference.to(torch::kDouble)).norm().item<double>() /
         reference.to(torch::kDouble).norm().item<double>();
}

std::int64_t bench_file_size(torch::jit::Module& module, const fs::path& file) {
  module.save(file.string());
  return static_cast<std::int64_t>(fs::file_size(file));
}

std::vector<unsigned char> bench_gunzip(const fs::path& file) {
  std::vector<unsigned char> bytes;
  std::FILE* pipe = ::popen(("gzip -dc '" + file.string() + "'").c_str(), "r");
  if (pipe == nullptr) return bytes;
  unsigned char buffer[65536];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;)
    bytes.insert(bytes.end(), buffer, buffer + n);
  ::pclose(pipe);
  return bytes;
}

// Fashion-MNIST as the fixture expects it (tests/fixtures/models/README.md): /255, mean 0.2860, std 0.3530.
std::pair<torch::Tensor, torch::Tensor> bench_fmnist(const std::string& prefix) {
  const fs::path dir = "/usr/share/datasets/fashion-mnist";
  auto images = bench_gunzip(dir / (prefix + "-images-idx3-ubyte.gz"));
  auto labels = bench_gunzip(dir / (prefix + "-labels-idx1-ubyte.gz"));
  const std::int64_t n = static_cast<std::int64_t>(labels.size()) - 8;
  if (n <= 0 || static_cast<std::int64_t>(images.size()) != 16 + n * 784) return {};
  torch::Tensor x =
      torch::from_blob(images.data() + 16, {n, 1, 28, 28}, torch::kUInt8).to(torch::kFloat32).div(255.0);
  return {(x - 0.2860) / 0.3530, torch::from_blob(labels.data() + 8, {n}, torch::kUInt8).to(torch::kLong)};
}

double bench_accuracy(torch::jit::Module& module, const torch::Tensor& images, const torch::Tensor& labels,
                      std::int64_t limit) {
  std::int64_t correct = 0;
  for (std::int64_t start = 0; start < limit; start += 500) {
    const std::int64_t n = std::min<std::int64_t>(500, limit - start);
    torch::Tensor logits = module.forward({images.narrow(0, start, n)}).toTensor();
    correct += logits.argmax(1).eq(labels.narrow(0, start, n)).sum().item<std::int64_t>();
  }
  return 100.0 * static_cast<double>(correct) / static_cast<double>(limit);
}

torch::Tensor bench_python_forward(const fs::path& dir, const torch::Tensor& input) {
  const fs::path model = dir / "model.pt", in = dir / "input.pt", out = dir / "output.pt",
                 program = dir / "run.py";
  auto bytes = torch::pickle_save(input);
  std::ofstream(in, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::ofstream(program) << "import sys, torch\n"
                            "torch.backends.quantized.engine = 'onednn'\n"
                            "m = torch.jit.load(sys.argv[1]).eval()\n"
                            "with torch.no_grad():\n"
                            "    torch.save(m(torch.load(sys.argv[2])), sys.argv[3])\n";
  const std::string command =
      "/usr/bin/python3 " + program.string() + " " + model.string() + " " + in.string() + " " + out.string();
  if (std::system(command.c_str()) != 0) return {};
  std::ifstream stream(out, std::ios::binary);
  std::vector<char> loaded((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  return torch::pickle_load(loaded).toTensor();
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, repeats = 20, warmup = 5;
  std::int64_t fmnist_limit = 10000;
  std::string model_name = "resnet50", observer = "minmax";
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 < argc && flag == "--threads")
      threads = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--repeats")
      repeats = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--warmup")
      warmup = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--model")
      model_name = argv[++i];
    else if (i + 1 < argc && flag == "--observer")
      observer = argv[++i];
    else if (i + 1 < argc && flag == "--fmnist-limit")
      fmnist_limit = std::atoll(argv[++i]);
    else {
      std::fprintf(
          stderr,
          "usage: %s [--threads N] [--repeats N] [--warmup N] [--model NAME] [--observer minmax|percentile] "
          "[--fmnist-limit N]\n",
          argv[0]);
      return 2;
    }
  }
  profagent::torch_tk::ThreadsGuard one_thread(threads);
  at::globalContext().setQEngine(c10::QEngine::ONEDNN);
  torch::NoGradGuard no_grad;
  std::printf(
      "LibTorch %s, %d thread(s), engine onednn, observer %s, %d warm-up + %d alternating repeats\n\n",
      TORCH_VERSION, threads, observer.c_str(), warmup, repeats);
  profagent::quantize::StaticInt8Options options;
  options.observer = observer;
  const fs::path dir = fs::temp_directory_path() / ("bench_quantize_static-" + std::to_string(::getpid()));
  fs::create_directories(dir);

  // (a) torchvision model, random weights and BatchNorm statistics.
  const std::string path = bench_torchvision_model(model_name + "?export=script");
  if (path.empty()) return 1;
  torch::jit::Module fp32 = torch::jit::load(path);
  fp32.eval();
  auto generator = at::detail::createCPUGenerator(0);
  const torch::Tensor input = torch::randn({1, 3, 224, 224}, generator);
  const std::int64_t norms =
      profagent::test::randomize_batch_norms(fp32, {torch::randn({8, 3, 224, 224}, generator)});
  torch::jit::Module fp32_copy = fp32.clone();
  torch::jit::Module optimized = torch::jit::optimize_for_inference(fp32_copy);
  std::vector<std::vector<c10::IValue>> calibration;
  for (int b = 0; b < 4; ++b) calibration.push_back({torch::randn({8, 3, 224, 224}, generator)});
  torch::jit::Module int8 = fp32.clone();
  const auto start = Clock::now();
  auto report = profagent::quantize::quantize_static_int8(int8, calibration, options);
  if (!report.is_ok()) {
    std::fprintf(stderr, "static int8 failed: %s\n", report.status().to_string().c_str());
    return 1;
  }
  const double quantize_s = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> t_fp32, t_opt, t_int8;
  const std::vector<torch::jit::IValue> inputs{input};
  for (int i = 0; i < warmup; ++i) {
    bench_time_forward(fp32, inputs);
    bench_time_forward(optimized, inputs);
    bench_time_forward(int8, inputs);
  }
  for (int i = 0; i < repeats; ++i) {
    t_fp32.push_back(bench_time_forward(fp32, inputs));
    t_opt.push_back(bench_time_forward(optimized, inputs));
    t_int8.push_back(bench_time_forward(int8, inputs));
  }
  const double fp32_ms = bench_median(t_fp32), opt_ms = bench_median(t_opt), int8_ms = bench_median(t_int8);
  const double best = std::min(fp32_ms, opt_ms);
  const torch::Tensor reference = fp32.forward(inputs).toTensor();
  const torch::Tensor ours = int8.forward(inputs).toTensor();
  const std::int64_t fp32_bytes = bench_file_size(fp32, dir / "fp32.pt");
  const std::int64_t int8_bytes = bench_file_size(int8, dir / "model.pt");
  auto profile_fp32 = profagent::torch_tk::static_profile(fp32, inputs);
  auto profile_int8 = profagent::torch_tk::static_profile(int8, inputs);
  if (!profile_fp32.is_ok() || !profile_int8.is_ok()) {
    std::fprintf(stderr, "profile failed: %s %s\n", profile_fp32.status().to_string().c_str(),
                 profile_int8.status().to_string().c_str());
    return 1;
  }
  std::int64_t convs = 0, folded = 0, adds = 0;
  double worst = 0;
  for (const auto& layer : report->layers) {
    convs += layer.kind == "conv2d";
    folded += layer.fused_bn;
    adds += layer.kind == "add";
    worst = std::max(worst, layer.error);
  }
  std::printf(
      "(a) %s (%lld BatchNorms randomized), static int8 in %.1f s: %lld convs (%lld with BN folded), %lld "
      "adds, "
      "%zu ops in all; %lld quantize / %lld dequantize nodes; worst layer error %.4f\n",
      model_name.c_str(), static_cast<long long>(norms), quantize_s, static_cast<long long>(convs),
      static_cast<long long>(folded), static_cast<long long>(adds), report->layers.size(),
      static_cast<long long>(report->quantize_nodes), static_cast<long long>(report->dequantize_nodes),
      worst);
  std::printf("| variant | latency ms (median) | vs best fp32 |\n|---|---|---|\n");
  std::printf("| fp32 loaded | %.1f | %.2fx |\n", fp32_ms, best / fp32_ms);
  std::printf("| fp32 frozen + optimize_for_inference | %.1f | %.2fx |\n", opt_ms, best / opt_ms);
  std::printf("| static int8 | %.1f | **%.2fx** |\n\n", int8_ms, best / int8_ms);
  std::printf("int8 output vs fp32: rel L2 %.4f, top-1 %s; file %.1f MB -> %.1f MB (%.1f%%)\n",
              bench_rel_l2(ours, reference), ours.argmax(1).equal(reference.argmax(1)) ? "same" : "differs",
              fp32_bytes / 1e6, int8_bytes / 1e6, 100.0 * (int8_bytes - fp32_bytes) / fp32_bytes);
  std::printf(
      "static profile: GMACs %.3f -> %.3f (%+.2f%%), params %lld -> %lld, param_bytes %lld -> %lld (%s)\n\n",
      profile_fp32->macs / 1e9, profile_int8->macs / 1e9,
      100.0 * (static_cast<double>(profile_int8->macs) / static_cast<double>(profile_fp32->macs) - 1.0),
      static_cast<long long>(profile_fp32->params), static_cast<long long>(profile_int8->params),
      static_cast<long long>(profile_fp32->param_bytes), static_cast<long long>(profile_int8->param_bytes),
      profile_int8->param_counting.c_str());

  // (c) Python on the saved int8 model.
  const torch::Tensor python = bench_python_forward(dir, input);
  if (python.defined()) {
    std::printf("(c) python3-torch torch.jit.load (onednn) vs LibTorch: max|diff| %.3g over max|y| %.3g\n\n",
                (python - ours).abs().max().item<double>(), ours.abs().max().item<double>());
  } else {
    std::printf("(c) python3-torch failed to run the saved int8 model\n\n");
  }

  // (b) the Fashion-MNIST fixture ResNet on the real data.
  auto [train_x, train_y] = bench_fmnist("train");
  auto [test_x, test_y] = bench_fmnist("t10k");
  if (!train_x.defined() || !test_x.defined()) {
    std::fprintf(stderr, "Fashion-MNIST not found (Debian package dataset-fashion-mnist)\n");
    return 1;
  }
  torch::jit::Module fixture =
      torch::jit::load(std::string(PROFAGENT_SOURCE_DIR) + "/tests/fixtures/models/resnet_fmnist.pt");
  fixture.eval();
  torch::jit::Module fixture_int8 = fixture.clone();
  auto order = torch::randperm(train_x.size(0), at::detail::createCPUGenerator(7), torch::kLong);
  std::vector<std::vector<c10::IValue>> fixture_calibration;
  for (int b = 0; b < 8; ++b)
    fixture_calibration.push_back({train_x.index_select(0, order.narrow(0, b * 64, 64))});
  auto fixture_report = profagent::quantize::quantize_static_int8(fixture_int8, fixture_calibration, options);
  if (!fixture_report.is_ok()) {
    std::fprintf(stderr, "fixture static int8 failed: %s\n", fixture_report.status().to_string().c_str());
    return 1;
  }
  fmnist_limit = std::min<std::int64_t>(fmnist_limit, test_x.size(0));
  const double acc_fp32 = bench_accuracy(fixture, test_x, test_y, fmnist_limit);
  const double acc_int8 = bench_accuracy(fixture_int8, test_x, test_y, fmnist_limit);
  std::printf(
      "(b) resnet_fmnist on %lld test images, calibrated on 512 train images (seed 7): top-1 fp32 %.2f%%, "
      "int8 %.2f%%, drop %.2f pt\n",
      static_cast<long long>(fmnist_limit), acc_fp32, acc_int8, acc_fp32 - acc_int8);
  std::error_code ignored;
  fs::remove_all(dir, ignored);
  return 0;
}
