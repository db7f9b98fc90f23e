// The linear quantizer on real models: the Fashion-MNIST fixture ViT (torchvision VisionTransformer,
// nn.MultiheadAttention) and a tiny torchvision Swin (F.linear inside shifted_window_attention).
#include "torch_doctest.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <typeinfo>

#include "model_loader.hpp"
#include "profagent/prune/prune_apply.hpp"
#include "profagent/quantize/linear_quantize.hpp"
#include "profagent/quantize/plan_quantization.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "profagent/torch/model_io.hpp"
#include "profagent/torch/quantized_engine.hpp"
#include "relative_difference.hpp"
#include "test_support.hpp"
#include "tiny_transformers.hpp"
#include "torchvision_source.hpp"

namespace fs = std::filesystem;
using profagent::ErrorCode;
using profagent::quantize::Scheme;

namespace {

const fs::path kQuantizeFixtures = fs::path(PROFAGENT_TEST_FIXTURES_DIR) / "models";

torch::jit::Module load_fixture(const std::string& file) {
  torch::jit::Module module = torch::jit::load((kQuantizeFixtures / file).string());
  module.eval();
  return module;
}

torch::Tensor quantize_forward(torch::jit::Module& module, const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  return profagent::torch_tk::output_tensors(module.forward({input})).at(0);
}

double relative_l2(const torch::Tensor& actual, const torch::Tensor& expected) {
  return (actual - expected).norm().item<double>() / expected.norm().item<double>();
}

std::map<std::string, Scheme> every_layer(const torch::jit::Module& model, Scheme scheme) {
  auto layers = profagent::quantize::find_linear_layers(model);
  REQUIRE_MESSAGE(layers, layers.status().to_string());
  std::map<std::string, Scheme> schemes;
  for (const auto& layer : layers.value()) schemes[layer.path] = scheme;
  return schemes;
}

// Python (torch.jit.load with the oneDNN engine set first) runs the saved model on `input`.
torch::Tensor quantize_python_forward(const torch::jit::Module& module, const torch::Tensor& input) {
  profagent::test::TempDir dir("quantize_python");
  const fs::path model = dir.path() / "model.pt", input_file = dir.path() / "input.pt",
                 output_file = dir.path() / "output.pt", program = dir.path() / "run.py";
  module.save(model.string());
  {
    auto bytes = torch::pickle_save(input);
    std::ofstream(input_file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::ofstream(program) << "import sys, torch\n"
                            "torch.backends.quantized.engine = 'onednn'\n"
                            "m = torch.jit.load(sys.argv[1]).eval()\n"
                            "x = torch.load(sys.argv[2])\n"
                            "with torch.no_grad():\n"
                            "    torch.save(m(x), sys.argv[3])\n";
  const std::string command = profagent::agents::default_python().string() + " " + program.string() + " " +
                              model.string() + " " + input_file.string() + " " + output_file.string();
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "python failed: " << command);
  std::ifstream stream(output_file, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  return torch::pickle_load(bytes).toTensor();
}

std::set<std::string> parameter_names(const torch::jit::Module& module) {
  std::set<std::string> names;
  for (const auto& item : module.named_parameters()) names.insert(item.name);
  return names;
}

}  // namespace

TEST_CASE("quantize: the fixture ViT's linear layers include every attention projection") {
  torch::jit::Module vit = load_fixture("vit_fmnist.pt");
  auto layers = profagent::quantize::find_linear_layers(vit);
  REQUIRE_MESSAGE(layers, layers.status().to_string());
  std::map<std::string, std::vector<std::string>> ops;
  for (const auto& layer : layers.value()) ops[layer.path] = layer.ops;
  // 4 blocks × (attention in_proj, out_proj, mlp.0, mlp.3) + the head
  CHECK(layers->size() == 17);
  CHECK(ops["encoder.layers.encoder_layer_0.self_attention"] == std::vector<std::string>{"attention_in_proj"});
  CHECK(ops["encoder.layers.encoder_layer_0.self_attention.out_proj"] ==
        std::vector<std::string>{"attention_out_proj"});
  CHECK(ops["encoder.layers.encoder_layer_3.mlp.0"] == std::vector<std::string>{"linear"});
  CHECK(ops["heads.head"] == std::vector<std::string>{"linear"});
}

TEST_CASE("quantize: int8 dynamic ViT: every linear weight packed, fp32 weights gone, close to fp32, Python agrees") {
  torch::jit::Module vit = load_fixture("vit_fmnist.pt");
  torch::manual_seed(0);
  const torch::Tensor input = torch::randn({4, 3, 28, 28});
  const torch::Tensor expected = quantize_forward(vit, input);

  auto quantized = profagent::quantize::quantize_linear_layers(vit, every_layer(vit, Scheme::kInt8Dynamic));
  REQUIRE_MESSAGE(quantized, quantized.status().to_string());
  CHECK(quantized->engine == "onednn");
  const std::set<std::string> names = parameter_names(*quantized->module);
  for (const auto& name : parameter_names(vit)) {
    // Every linear weight and bias is in packed params now (the bias is packed with its weight);
    // the rest (conv_proj, class token, position embedding, layer norms) stays as it was.
    bool linear = false;
    for (const char* part : {"in_proj_", "out_proj.", "mlp.0.", "mlp.3.", "heads.head."})
      linear |= name.find(part) != std::string::npos;
    CAPTURE(name);
    CHECK(names.count(name) == (linear ? 0u : 1u));
  }
  std::int64_t before = 0, after = 0;
  for (const auto& layer : quantized->layers) {
    CAPTURE(layer.path);
    CHECK(layer.scheme == Scheme::kInt8Dynamic);
    CHECK_FALSE(layer.fp32_kept);
    CHECK(layer.weight_rel_error < 0.02);
    before += layer.bytes_before;
    after += layer.bytes_after;
  }
  MESSAGE("linear bytes " << before << " -> " << after);
  CHECK(after < before * 0.35);

  const torch::Tensor ours = quantize_forward(*quantized->module, input);
  const double error = relative_l2(ours, expected);
  MESSAGE("int8 dynamic vs fp32: relative L2 " << error);
  CHECK(error < 0.05);
  CHECK(error > 0.0);  // really quantized
  const auto python = profagent::test::relative_difference(quantize_python_forward(*quantized->module, input), ours);
  MESSAGE("python vs ours: " << python);
  CHECK(python.relative < 1e-5);
}

TEST_CASE("quantize: every scheme on the fixture ViT agrees with fp32 by its precision and with Python") {
  torch::jit::Module vit = load_fixture("vit_fmnist.pt");
  torch::manual_seed(1);
  const torch::Tensor input = torch::randn({2, 3, 28, 28});
  const torch::Tensor expected = quantize_forward(vit, input);
  for (auto [scheme, bound] : std::vector<std::pair<Scheme, double>>{
           {Scheme::kNone, 1e-5}, {Scheme::kInt8WeightOnly, 0.03}, {Scheme::kFp16, 2e-3}, {Scheme::kBf16, 0.03}}) {
    CAPTURE(profagent::quantize::scheme_name(scheme));
    auto quantized = profagent::quantize::quantize_linear_layers(vit, every_layer(vit, scheme));
    REQUIRE_MESSAGE(quantized, quantized.status().to_string());
    const torch::Tensor ours = quantize_forward(*quantized->module, input);
    CHECK((ours.scalar_type() == torch::kFloat));
    const double error = relative_l2(ours, expected);
    MESSAGE(profagent::quantize::scheme_name(scheme) << " vs fp32: relative L2 " << error);
    CHECK(error < bound);
    const auto python = profagent::test::relative_difference(quantize_python_forward(*quantized->module, input), ours);
    CHECK(python.relative < 1e-5);
  }
}

TEST_CASE("quantize: tiny Swin: F.linear inside shifted_window_attention is quantized") {
  torch::jit::Module swin = profagent::test::tiny_model("swin", "script");
  swin.eval();
  torch::manual_seed(2);
  const torch::Tensor input = torch::randn({1, 3, 32, 32});
  const torch::Tensor expected = quantize_forward(swin, input);
  auto schemes = every_layer(swin, Scheme::kInt8Dynamic);
  REQUIRE(schemes.count("features.1.0.attn.qkv") == 1);
  auto quantized = profagent::quantize::quantize_linear_layers(swin, schemes);
  REQUIRE_MESSAGE(quantized, quantized.status().to_string());
  CHECK(parameter_names(*quantized->module).count("features.1.0.attn.qkv.weight") == 0);
  // One int8 copy of qkv's weight: the attention function's F.linear and qkv's own forward share it.
  int packed = 0;
  torch::jit::Module qkv = quantized->module->attr("features").toModule().attr("1").toModule().attr("0").toModule()
                               .attr("attn").toModule().attr("qkv").toModule();
  for (const auto& attribute : qkv.named_attributes(/*recurse=*/false))
    packed += attribute.name.find("_int8_packed") != std::string::npos;
  CHECK(packed == 1);
  const double error = relative_l2(quantize_forward(*quantized->module, input), expected);
  MESSAGE("swin int8 dynamic vs fp32: relative L2 " << error);
  CHECK(error < 0.05);
}

TEST_CASE("quantize: plan section: schemes per layer, did-you-mean for unknown schemes and layers") {
  auto bad_scheme = profagent::quantize::parse_quantization_plan(
      profagent::Json::parse(R"({"quantization": {"layers": {"heads.head": "int8_dynamc"}}})"));
  REQUIRE_FALSE(bad_scheme);
  CHECK(profagent::test::contains(bad_scheme.status().message(), "did you mean 'int8_dynamic'"));
  auto plan = profagent::quantize::parse_quantization_plan(profagent::Json::parse(
      R"({"quantization": {"default": "fp16", "layers": {"heads.head": {"scheme": "none", "reason": "classifier"},
          "heads.hed": "bf16"}, "ignored_layers": ["encoder.layers.encoder_layer_0.mlp.0"]}})"));
  REQUIRE(plan);
  REQUIRE(plan->has_value());
  torch::jit::Module vit = load_fixture("vit_fmnist.pt");
  auto layers = profagent::quantize::find_linear_layers(vit);
  REQUIRE(layers);
  std::vector<std::string> paths;
  for (const auto& layer : layers.value()) paths.push_back(layer.path);
  auto unknown = profagent::quantize::resolve_layer_schemes(**plan, paths, Scheme::kInt8Dynamic, "vit");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.status().code() == ErrorCode::kNotFound);
  CHECK(profagent::test::contains(unknown.status().message(), "did you mean 'heads.head'"));
  (*plan)->layers.erase("heads.hed");
  auto schemes = profagent::quantize::resolve_layer_schemes(**plan, paths, Scheme::kInt8Dynamic, "vit");
  REQUIRE(schemes);
  CHECK(schemes->at("heads.head") == Scheme::kNone);
  CHECK(schemes->at("encoder.layers.encoder_layer_0.mlp.0") == Scheme::kNone);
  CHECK(schemes->at("encoder.layers.encoder_layer_1.mlp.0") == Scheme::kFp16);
  auto parsed_static = profagent::quantize::parse_scheme("int8_static", "");
  REQUIRE(parsed_static);
  auto refused = profagent::quantize::quantize_linear_layers(vit, {{"heads.head", Scheme::kInt8Static}});
  REQUIRE_FALSE(refused);
  CHECK(profagent::test::contains(refused.status().message(),
                                  "int8_static: needs the static int8 engine (issue 11 item 3)"));
}

TEST_CASE("quantize: the engine in the metadata is selected while the model loads, and put back") {
  const std::string before = profagent::torch_tk::current_quantized_engine();
  {
    profagent::torch_tk::QuantizedEngineGuard guard("qnnpack");
    REQUIRE(guard.ok());
    CHECK(profagent::torch_tk::current_quantized_engine() == "qnnpack");
  }
  CHECK(profagent::torch_tk::current_quantized_engine() == before);
  profagent::torch_tk::QuantizedEngineGuard missing("fbgemm");
  CHECK_FALSE(missing.ok());
  CHECK(profagent::test::contains(missing.error().message(), "onednn"));
  CHECK(profagent::torch_tk::engine_of_metadata(profagent::Json::parse(R"({"quantization": {"engine": "onednn"}})")) ==
        "onednn");
}

namespace {

// The C++ class of the packed weights behind a torchbind attribute (PackedLinearWeightsOnednn,
// PackedLinearWeightsQnnp, ...): which engine packed them. A torchbind object is an ivalue::Object
// whose one slot is a capsule holding the C++ object.
std::string quantize_packed_class(const torch::jit::Module& owner) {
  for (const auto& attribute : owner.named_attributes(/*recurse=*/false)) {
    if (attribute.name.find("_int8_packed") == std::string::npos) continue;
    c10::intrusive_ptr<torch::CustomClassHolder> held = attribute.value.toObject()->getSlot(0).toCapsule();
    return c10::demangle(typeid(*held).name());
  }
  return "no packed weight";
}

}  // namespace

TEST_CASE("quantize: a model packed for QNNPACK is re-packed for QNNPACK by the artifact loader (resume), oneDNN put back") {
  torch::jit::Module vit = load_fixture("vit_fmnist.pt");
  auto quantized =
      profagent::quantize::quantize_linear_layers(vit, {{"heads.head", Scheme::kInt8Dynamic}}, "qnnpack");
  REQUIRE_MESSAGE(quantized, quantized.status().to_string());
  const std::string process_engine = profagent::torch_tk::current_quantized_engine();
  REQUIRE(process_engine == "onednn");
  auto head = [](const torch::jit::Module& model) { return model.attr("heads").toModule().attr("head").toModule(); };
  CHECK(profagent::test::contains(quantize_packed_class(head(*quantized->module)), "Qnnp"));

  profagent::test::TempDir dir("quantize_artifact");
  profagent::ModelArtifact artifact(quantized->module, profagent::Json{{"source", "vit_fmnist.pt"}},
                                    profagent::Json{{"quantization", {{"engine", "qnnpack"}}}});
  REQUIRE(profagent::save_artifact(artifact, dir.path() / "model").is_ok());
  auto loaded = profagent::load_model_artifact(dir.path() / "model");
  REQUIRE_MESSAGE(loaded, loaded.status().to_string());
  const auto& model = static_cast<const profagent::ModelArtifact&>(*loaded.value()).module();
  const std::string packed = quantize_packed_class(head(model));
  MESSAGE("loaded with the metadata's engine: " << packed);
  CHECK(profagent::test::contains(packed, "Qnnp"));
  CHECK(profagent::torch_tk::current_quantized_engine() == process_engine);

  // The same file loaded without the guard re-packs with the process's engine: what the guard prevents.
  torch::jit::Module plain = torch::jit::load((dir.path() / "model" / "model.pt").string());
  CHECK(profagent::test::contains(quantize_packed_class(head(plain)), "Onednn"));
}

TEST_CASE("quantize: a ViT whose heads were pruned (prune -> quantize) quantizes its attention with the fewer heads") {
  for (const std::string kind : {"script", "trace"}) {
    CAPTURE(kind);
    torch::jit::Module vit = profagent::test::tiny_model("vit", kind);
    const torch::Tensor input = profagent::test::vit_input();
    {
      // torchvision starts the classifier at zero: the output would be its bias whatever came before.
      torch::NoGradGuard no_grad;
      torch::manual_seed(3);
      vit.attr("heads").toModule().attr("head").toModule().attr("weight").toTensor().normal_(0.0, 0.3);
    }
    profagent::torch_tk::PruneOptions options;
    options.ratio = 0.5;
    auto pruned = profagent::torch_tk::prune(vit, {input}, options);
    REQUIRE_MESSAGE(pruned, pruned.status().to_string());
    const torch::jit::Module attention = pruned->module.attr("encoder").toModule().attr("layers").toModule()
                                             .attr("encoder_layer_0").toModule().attr("self_attention").toModule();
    REQUIRE(attention.attr("in_proj_weight").toTensor().size(0) == 3 * 2 * 8);  // 4 heads of 8 -> 2, width 32
    const torch::Tensor expected = quantize_forward(pruned->module, input);
    auto quantized = profagent::quantize::quantize_linear_layers(pruned->module, every_layer(pruned->module, Scheme::kInt8Dynamic));
    REQUIRE_MESSAGE(quantized, quantized.status().to_string());
    const double error = relative_l2(quantize_forward(*quantized->module, input), expected);
    MESSAGE("pruned then int8 dynamic vs pruned fp32: relative L2 " << error);
    CHECK(error < 0.05);
    CHECK(error > 1e-4);  // really quantized: int8 weights move the output
  }
}
