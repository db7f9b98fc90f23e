// Static int8 (profagent/quantize/static_int8.hpp) on the Fashion-MNIST fixture ResNet with the real
// data: accuracy, the graph it makes (one entry into int8, one exit), Python's torch.jit.load agreeing,
// the profile's counts of the quantized model, and the errors it gives.
#include "torch_doctest.hpp"  // first: the helpers below use doctest

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "evaluator.hpp"
#include "model_loader.hpp"
#include "profagent/profile/static_profile.hpp"
#include "profagent/quantize/static_int8.hpp"
#include "relative_difference.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using profagent::Json;
using profagent::quantize::quantize_static_int8;
using profagent::quantize::StaticInt8Options;
using profagent::quantize::StaticInt8Report;
using profagent::test::TempDir;

namespace {

const fs::path kStaticFashionMnist = "/usr/share/datasets/fashion-mnist";
const fs::path kStaticResnet = fs::path(PROFAGENT_TEST_FIXTURES_DIR) / "models" / "resnet_fmnist.pt";

std::vector<unsigned char> static_gunzip(const fs::path& file) {
  REQUIRE_MESSAGE(fs::exists(file), "install the Debian package dataset-fashion-mnist: " << file);
  std::FILE* pipe = ::popen(("gzip -dc '" + file.string() + "'").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::vector<unsigned char> bytes;
  unsigned char buffer[65536];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;)
    bytes.insert(bytes.end(), buffer, buffer + n);
  REQUIRE(::pclose(pipe) == 0);
  return bytes;
}

// A Fashion-MNIST split as the fixture expects it: [N, 1, 28, 28], pixels / 255 normalized with the
// fixture's mean 0.2860 and std 0.3530 (tests/fixtures/models/README.md); labels [N].
struct StaticSplit {
  torch::Tensor images;
  torch::Tensor labels;
};

StaticSplit static_split(const std::string& prefix) {
  auto images = static_gunzip(kStaticFashionMnist / (prefix + "-images-idx3-ubyte.gz"));
  auto labels = static_gunzip(kStaticFashionMnist / (prefix + "-labels-idx1-ubyte.gz"));
  const std::int64_t n = static_cast<std::int64_t>(labels.size()) - 8;
  REQUIRE(static_cast<std::int64_t>(images.size()) == 16 + n * 28 * 28);
  StaticSplit split;
  split.images =
      torch::from_blob(images.data() + 16, {n, 1, 28, 28}, torch::kUInt8).to(torch::kFloat32).div(255.0);
  split.images = (split.images - 0.2860) / 0.3530;
  split.labels = torch::from_blob(labels.data() + 8, {n}, torch::kUInt8).to(torch::kLong);
  return split;
}

// `batches` batches of `size` training images drawn with a fixed seed (no image twice).
std::vector<std::vector<c10::IValue>> static_calibration(const StaticSplit& train, std::int64_t batches,
                                                         std::int64_t size) {
  auto generator = at::detail::createCPUGenerator(7);
  torch::Tensor order = torch::randperm(train.images.size(0), generator, torch::kLong);
  std::vector<std::vector<c10::IValue>> inputs;
  for (std::int64_t b = 0; b < batches; ++b)
    inputs.push_back({train.images.index_select(0, order.narrow(0, b * size, size))});
  return inputs;
}

torch::Tensor static_forward(torch::jit::Module& module, const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  return module.forward({input}).toTensor();
}

double static_accuracy(torch::jit::Module& module, const StaticSplit& test, std::int64_t limit) {
  std::int64_t correct = 0;
  for (std::int64_t start = 0; start < limit; start += 500) {
    const std::int64_t n = std::min<std::int64_t>(500, limit - start);
    torch::Tensor logits = static_forward(module, test.images.narrow(0, start, n));
    correct += logits.argmax(1).eq(test.labels.narrow(0, start, n)).sum().item<std::int64_t>();
  }
  return 100.0 * static_cast<double>(correct) / static_cast<double>(limit);
}

torch::jit::Module static_load_resnet() {
  REQUIRE(fs::exists(kStaticResnet));
  torch::jit::Module module = torch::jit::load(kStaticResnet.string());
  module.eval();
  return module;
}

std::int64_t static_count_nodes(torch::jit::Module& module, const std::string& kind) {
  std::int64_t count = 0;
  for (const auto* node : module.get_method("forward").graph()->nodes())
    count += node->kind().toQualString() == kind;
  return count;
}

// The saved module's output in Python (/usr/bin/python3, torch.jit.load with the oneDNN engine set first).
torch::Tensor static_python_forward(torch::jit::Module& module, const torch::Tensor& input,
                                    const TempDir& dir) {
  const fs::path model = dir.path() / "model.pt", in = dir.path() / "input.pt",
                 out = dir.path() / "output.pt";
  const fs::path program = dir.path() / "run.py";
  module.save(model.string());
  auto bytes = torch::pickle_save(input);
  std::ofstream(in, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::ofstream(program) << "import sys, torch\n"
                            "torch.backends.quantized.engine = 'onednn'\n"
                            "torch.set_num_threads(1)\n"
                            "m = torch.jit.load(sys.argv[1]).eval()\n"
                            "with torch.no_grad():\n"
                            "    torch.save(m(torch.load(sys.argv[2])), sys.argv[3])\n";
  const std::string command = profagent::agents::default_python().string() + " " + program.string() + " " +
                              model.string() + " " + in.string() + " " + out.string();
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "python failed: " << command);
  std::ifstream stream(out, std::ios::binary);
  std::vector<char> loaded((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  return torch::pickle_load(loaded).toTensor();
}

// The engine the quantized model was packed for, for the scope of a test (the process default may differ).
struct StaticOnednn {
  c10::QEngine previous = at::globalContext().qEngine();
  StaticOnednn() { at::globalContext().setQEngine(c10::QEngine::ONEDNN); }
  ~StaticOnednn() { at::globalContext().setQEngine(previous); }
};

}  // namespace

TEST_CASE(
    "static int8 of the Fashion-MNIST ResNet loses at most 1 point and keeps int8 from its first conv to its "
    "fc") {
  StaticOnednn engine;
  const StaticSplit train = static_split("train");
  const StaticSplit test = static_split("t10k");
  torch::jit::Module fp32 = static_load_resnet();
  torch::jit::Module quantized = static_load_resnet();
  auto report = quantize_static_int8(quantized, static_calibration(train, 8, 64));
  REQUIRE_MESSAGE(report.is_ok(), report.status().to_string());

  const std::int64_t limit = 2000;
  const double before = static_accuracy(fp32, test, limit);
  const double after = static_accuracy(quantized, test, limit);
  MESSAGE("accuracy fp32 " << before << "%, static int8 " << after << "% on " << limit << " test images");
  CHECK(before > 90.0);
  CHECK(before - after <= 1.0);

  // 15 convs (13 with a BatchNorm) and the fc; the residual adds with their ReLU.
  std::int64_t convs = 0, folded = 0, adds = 0, linears = 0, bytes_before = 0, bytes_after = 0;
  for (const auto& layer : report->layers) {
    convs += layer.kind == "conv2d";
    folded += layer.fused_bn;
    adds += layer.kind == "add" && layer.fused_relu;
    linears += layer.kind == "linear";
    if (layer.kind != "add") CHECK_MESSAGE(layer.bytes_after < layer.bytes_before, layer.path);
    bytes_before += layer.bytes_before;
    bytes_after += layer.bytes_after;
    CHECK_MESSAGE(layer.error < 0.1, layer.path << " error " << layer.error);
  }
  // A per-channel scale and zero point (16 bytes a channel) weigh on the smallest convs; in all, < 1/3.
  MESSAGE("weight bytes " << bytes_before << " -> " << bytes_after);
  CHECK(bytes_after * 3 < bytes_before);
  CHECK(convs == 15);
  CHECK(folded == 15);
  CHECK(adds == 6);
  CHECK(linears == 1);
  CHECK(report->engine == "onednn");
  // Quantized from the input to the end: one quantize at the entry, one dequantize at the output.
  CHECK(report->quantize_nodes == 1);
  CHECK(report->dequantize_nodes == 1);
  CHECK(static_count_nodes(quantized, "aten::conv2d") == 0);
  CHECK(static_count_nodes(quantized, "quantized::add_relu") == 6);
  // The packed weights sit at the layers' own paths.
  CHECK(quantized.attr("conv1").toModule().hasattr("_packed_params"));
}

TEST_CASE("a statically quantized model saved and loaded in Python with oneDNN gives LibTorch's output") {
  StaticOnednn engine;
  const StaticSplit train = static_split("train");
  torch::jit::Module quantized = static_load_resnet();
  auto report = quantize_static_int8(quantized, static_calibration(train, 2, 64));
  REQUIRE_MESSAGE(report.is_ok(), report.status().to_string());
  torch::Tensor input = train.images.narrow(0, 100, 16).clone();
  TempDir dir;
  torch::Tensor ours = static_forward(quantized, input);
  torch::Tensor python = static_python_forward(quantized, input, dir);
  const auto difference = profagent::test::relative_difference(ours, python);
  MESSAGE("python vs ours: " << difference);
  CHECK(difference.relative < profagent::test::kExactRelative);
  // And the file loads back here too.
  torch::jit::Module reloaded = torch::jit::load((dir.path() / "model.pt").string());
  CHECK(profagent::test::relative_difference(static_forward(reloaded, input), ours).relative <
        profagent::test::kExactRelative);
}

TEST_CASE("the percentile observer quantizes the fixture ResNet within 1 point too") {
  StaticOnednn engine;
  const StaticSplit train = static_split("train");
  const StaticSplit test = static_split("t10k");
  torch::jit::Module fp32 = static_load_resnet();
  torch::jit::Module quantized = static_load_resnet();
  StaticInt8Options options;
  options.observer = "percentile";
  options.percentile = 99.99;
  auto report = quantize_static_int8(quantized, static_calibration(train, 4, 64), options);
  REQUIRE_MESSAGE(report.is_ok(), report.status().to_string());
  CHECK(report->observer == "percentile");
  const double before = static_accuracy(fp32, test, 1000);
  const double after = static_accuracy(quantized, test, 1000);
  MESSAGE("accuracy fp32 " << before << "%, static int8 (percentile) " << after << "%");
  CHECK(before - after <= 1.0);
}

TEST_CASE("the static profile of a statically quantized model counts its MACs and its packed weights") {
  StaticOnednn engine;
  const StaticSplit train = static_split("train");
  torch::jit::Module fp32 = static_load_resnet();
  torch::jit::Module quantized = static_load_resnet();
  auto report = quantize_static_int8(quantized, static_calibration(train, 2, 32));
  REQUIRE_MESSAGE(report.is_ok(), report.status().to_string());
  const std::vector<torch::jit::IValue> input{train.images.narrow(0, 0, 1).clone()};
  auto before = profagent::torch_tk::static_profile(fp32, input);
  auto after = profagent::torch_tk::static_profile(quantized, input);
  REQUIRE_MESSAGE(before.is_ok(), before.status().to_string());
  REQUIRE_MESSAGE(after.is_ok(), after.status().to_string());
  MESSAGE("macs fp32 " << before->macs << ", int8 " << after->macs << "; params fp32 " << before->params
                       << ", int8 " << after->params << "; param_bytes " << before->param_bytes << " -> "
                       << after->param_bytes);
  // Folding BatchNorm removes no MAC (its multiply was never one): the counts agree.
  CHECK(static_cast<double>(after->macs) == doctest::Approx(static_cast<double>(before->macs)).epsilon(0.01));
  // Every conv and fc weight is still counted, now packed.
  // Each BatchNorm's γ and β (2C) became its conv's bias (C).
  std::int64_t bn_affine = 0;
  for (const auto& p : fp32.named_parameters()) {
    const bool norm =
        p.name.find("bn") != std::string::npos || p.name.find("shortcut.1") != std::string::npos;
    if (norm) bn_affine += p.value.numel();
  }
  CHECK(after->params == before->params - bn_affine / 2);
  CHECK(after->param_bytes * 3 < before->param_bytes);
  CHECK(after->param_counting.find("packed") != std::string::npos);
  CHECK(before->param_counting == "parameters");
  // The quantized convs land in their own layers with their MACs.
  const auto* conv1 = after->find("conv1");
  const auto* conv1_fp32 = before->find("conv1");
  REQUIRE(conv1 != nullptr);
  REQUIRE(conv1_fp32 != nullptr);
  CHECK(conv1->macs == conv1_fp32->macs);
  CHECK(conv1->kind == "conv");
}

TEST_CASE(
    "static int8 refuses an unknown observer, an unknown layer with a suggestion, and no calibration data") {
  torch::jit::Module model = static_load_resnet();
  const std::vector<std::vector<c10::IValue>> one{{torch::zeros({2, 1, 28, 28})}};
  StaticInt8Options options;
  options.observer = "histogramm";
  auto bad_observer = quantize_static_int8(model, one, options);
  REQUIRE_FALSE(bad_observer.is_ok());
  CHECK(bad_observer.status().message().find("unknown observer 'histogramm'") != std::string::npos);

  options = {};
  options.layers = {"conv2"};
  auto bad_layer = quantize_static_int8(model, one, options);
  REQUIRE_FALSE(bad_layer.is_ok());
  MESSAGE(bad_layer.status().message());
  CHECK(bad_layer.status().message().find("layer 'conv2'") != std::string::npos);
  CHECK(bad_layer.status().message().find("did you mean") != std::string::npos);

  auto none = quantize_static_int8(model, {}, {});
  REQUIRE_FALSE(none.is_ok());
  CHECK(none.status().code() == profagent::ErrorCode::kInvalidArgument);
  // The model is left as it was.
  CHECK(static_count_nodes(model, "quantized::conv2d_relu") == 0);
}

TEST_CASE("static int8 of chosen layers leaves the others in fp32 with their weights as parameters") {
  StaticOnednn engine;
  const StaticSplit train = static_split("train");
  torch::jit::Module fp32 = static_load_resnet();
  torch::jit::Module quantized = static_load_resnet();
  StaticInt8Options options;
  options.layers = {"conv1", "fc"};
  auto report = quantize_static_int8(quantized, static_calibration(train, 2, 32), options);
  REQUIRE_MESSAGE(report.is_ok(), report.status().to_string());
  REQUIRE(report->layers.size() == 2);
  CHECK(report->layers[0].path == "conv1");
  CHECK(report->layers[1].path == "fc");
  CHECK(static_count_nodes(quantized, "aten::conv2d") == 14);
  const torch::Tensor input = train.images.narrow(0, 0, 64).clone();
  const auto difference =
      profagent::test::relative_difference(static_forward(quantized, input), static_forward(fp32, input));
  MESSAGE("two layers int8 vs fp32: " << difference);
  CHECK(difference.relative < 0.1);
  auto profile = profagent::torch_tk::static_profile(quantized, {input.narrow(0, 0, 1)});
  REQUIRE_MESSAGE(profile.is_ok(), profile.status().to_string());
  auto reference = profagent::torch_tk::static_profile(fp32, {input.narrow(0, 0, 1)});
  REQUIRE(reference.is_ok());
  CHECK(static_cast<double>(profile->macs) ==
        doctest::Approx(static_cast<double>(reference->macs)).epsilon(0.01));
}

TEST_CASE(
    "the evaluation of a statically quantized model reports its packed params, its file size and "
    "agreement.rel_l2") {
  StaticOnednn engine;
  const StaticSplit train = static_split("train");
  torch::jit::Module fp32 = static_load_resnet();
  torch::jit::Module quantized = static_load_resnet();
  // Without a dataset the evaluation compares on random inputs (make_inputs, seed + 1 + batch): a model
  // calibrated on Fashion-MNIST sees them far outside its ranges (rel_l2 ≈ 1 measured), so this one is
  // calibrated on draws of the same kind, other seeds.
  const std::vector<profagent::torch_tk::InputSpec> specs{{{1, 1, 28, 28}, torch::kFloat32}};
  std::vector<std::vector<c10::IValue>> calibration;
  for (std::uint64_t seed = 100; seed < 104; ++seed)
    calibration.push_back({profagent::torch_tk::make_inputs(specs, 32, seed, torch::kCPU)[0]});
  auto report = quantize_static_int8(quantized, calibration);
  REQUIRE_MESSAGE(report.is_ok(), report.status().to_string());
  TempDir dir;
  quantized.save((dir.path() / "int8.pt").string());
  profagent::agents::EvaluationInputs inputs;
  inputs.model = &quantized;
  inputs.reference = &fp32;
  inputs.model_summary = Json{{"path", (dir.path() / "int8.pt").string()}};
  inputs.work_dir = dir.path();
  profagent::agents::EvaluationOptions options;
  options.input_shape = std::vector<std::int64_t>{1, 1, 28, 28};
  options.warmup = 1;
  options.repeats = 3;
  auto metrics = profagent::agents::evaluate(inputs, options);
  REQUIRE_MESSAGE(metrics.is_ok(), metrics.status().to_string());
  MESSAGE("agreement " << (*metrics)["agreement"].dump() << ", params " << (*metrics)["params"] << ", size "
                       << (*metrics)["size_bytes"]);
  const double rel_l2 = (*metrics)["agreement"]["rel_l2"].get<double>();
  // The same figure computed here on the evaluation's own draw (32 samples: one batch, seed 0 + 1).
  const torch::Tensor drawn = profagent::torch_tk::make_inputs(specs, 32, 1, torch::kCPU)[0];
  const torch::Tensor ours = static_forward(quantized, drawn), reference = static_forward(fp32, drawn);
  const double expected = (ours - reference).norm().item<double>() / reference.norm().item<double>();
  CHECK(rel_l2 == doctest::Approx(expected).epsilon(1e-3));
  CHECK(rel_l2 > 0.0);  // int8 is not exact...
  CHECK(rel_l2 < 0.2);  // ...but close on inputs like its calibration's
  CHECK((*metrics)["size_bytes"] == static_cast<std::int64_t>(fs::file_size(dir.path() / "int8.pt")));
  CHECK((*metrics)["size_source"] == "file");
  CHECK((*metrics)["params"].get<std::int64_t>() >
        150000);  // 174,970 in fp32, less the folded BatchNorms' halves
  CHECK((*metrics)["param_counting"].get<std::string>().find("packed") != std::string::npos);
  auto profile = profagent::torch_tk::static_profile(fp32, {torch::zeros({1, 1, 28, 28})});
  REQUIRE(profile.is_ok());
  CHECK(static_cast<double>((*metrics)["macs"].get<std::int64_t>()) ==
        doctest::Approx(static_cast<double>(profile->macs)).epsilon(0.01));
}
