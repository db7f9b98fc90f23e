// The profiling stage without the kernel: a fixture model in, a `profile` artifact out with the
// documented keys, saved with its Chrome trace and report section; and the errors a user meets.
#include "torch_doctest.hpp"

#include <filesystem>
#include <memory>
#include <string>

#include "profagent/fs.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "profiler.hpp"
#include "profile_artifact.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using profagent::ArtifactPtr;
using profagent::Json;
using profagent::Status;
using profagent::test::contains;
using profagent::test::TempDir;
using profagent::test::TestAgentContext;

namespace {

const fs::path kModels = fs::path(PROFAGENT_TEST_FIXTURES_DIR) / "models";

ArtifactPtr fixture_model(const std::string& file) {
  auto module = std::make_shared<torch::jit::Module>(torch::jit::load((kModels / file).string()));
  return std::make_shared<profagent::ModelArtifact>(module, Json{{"source", file}, {"path", (kModels / file).string()}});
}

profagent::Config config_of(Json with, const fs::path& roofline_cache) {
  with["roofline_cache"] = roofline_cache.string();
  auto config = profagent::agents::profile_options_schema().schema().resolve(with);
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  return std::move(config).value();
}

Status run_stage(TestAgentContext& context) {
  auto options = profagent::agents::profile_options_schema().read(context.config());
  REQUIRE_MESSAGE(options.is_ok(), options.status().to_string());
  return profagent::agents::run_profile_stage(context, options.value());
}

}  // namespace

TEST_CASE("profiling the fixture ViT publishes a profile with totals, layers, roofline and bottlenecks") {
  TempDir dir("profiler_agent");
  Json shapes = {{"inputs", Json::array({{{"shape", {1, 3, 28, 28}}, {"dtype", "float32"}}})}};
  TestAgentContext context(config_of({{"repeats", 5}, {"threads", 1}, {"top_k", 5}}, dir.path() / "roofline.json"),
                           "profile",
                           {{"model", fixture_model("vit_fmnist.pt")},
                            {"shapes", std::make_shared<profagent::JsonArtifact>(profagent::kinds::kShapeSpec, shapes)}});
  auto ran = run_stage(context);
  REQUIRE_MESSAGE(ran.is_ok(), ran.to_string());
  REQUIRE(context.outputs().count("profile") == 1);
  const ArtifactPtr artifact = context.outputs().at("profile");
  CHECK(artifact->kind() == "profile");
  const Json profile = artifact->summary();

  CHECK(profile["total"]["params"] == 145290);  // tests/fixtures/models/README.md
  CHECK(profile["total"]["macs"].get<std::int64_t>() > 0);
  CHECK(profile["total"]["latency_ms"].get<double>() > 0);
  CHECK(profile["threads"] == 1);
  CHECK(profile["method"] == "timeline_partition");
  CHECK(profile["sum_ratio"].get<double>() > 0);
  CHECK(profile.contains("gap_ms"));
  CHECK(profile["environment"].contains("libtorch"));
  CHECK(profile["kinds"].contains("linear"));
  CHECK(profile["kinds"].contains("attention"));
  CHECK(profile["roofline"]["peak_gflops"].get<double>() > 0);
  CHECK(profile["bottlenecks"].size() == 5);

  std::int64_t params = 0, macs = 0;
  double shares = 0;
  for (const auto& layer : profile["layers"]) {
    for (const char* key : {"name", "kind", "params", "macs", "latency_ms", "latency_p90_ms", "latency_share",
                            "activation_bytes", "peak_bytes", "intensity", "bound"})
      CHECK_MESSAGE(layer.contains(key), layer["name"] << " lacks " << key);
    params += layer["params"].get<std::int64_t>();
    macs += layer["macs"].get<std::int64_t>();
    shares += layer["latency_share"].get<double>();
  }
  CHECK(params == profile["total"]["params"].get<std::int64_t>());
  CHECK(macs == profile["total"]["macs"].get<std::int64_t>());
  CHECK(shares == doctest::Approx(1.0).epsilon(1e-6));
  // The bottlenecks are the slowest layers, slowest first.
  double previous = 1e300;
  for (const auto& entry : profile["bottlenecks"]) {
    CHECK(entry["latency_ms"].get<double>() <= previous);
    previous = entry["latency_ms"].get<double>();
    CHECK((entry["bound"] == "compute" || entry["bound"] == "memory" || entry["bound"] == "none"));
  }

  // Saved: the document, the Chrome trace and the report section side by side.
  const fs::path saved = dir.path() / "saved";
  REQUIRE(profagent::save_artifact(*artifact, saved).is_ok());
  auto data = profagent::read_json(saved / "data.json");
  REQUIRE(data.is_ok());
  CHECK((*data)["total"] == profile["total"]);
  auto trace = profagent::read_json(saved / "trace.json");
  REQUIRE(trace.is_ok());
  CHECK(trace->contains("traceEvents"));
  CHECK((*trace)["traceEvents"].size() > 10);
  auto markdown = profagent::read_file(saved / "report.md");
  REQUIRE(markdown.is_ok());
  CHECK(contains(markdown.value(), "| # | layer | kind | params | MACs | latency ms | share % | intensity | bound |"));
  CHECK(contains(markdown.value(), "`" + profile["bottlenecks"][0]["name"].get<std::string>() + "`"));
}

TEST_CASE("without a shapes input or input_shape, the stage fails naming both ways to give one") {
  TempDir dir("profiler_agent_noshape");
  TestAgentContext context(config_of(Json::object(), dir.path() / "roofline.json"), "profile",
                           {{"model", fixture_model("resnet_fmnist.pt")}});
  auto ran = run_stage(context);
  REQUIRE_FALSE(ran.is_ok());
  CHECK(contains(ran.to_string(), "input_shape"));
  CHECK(contains(ran.to_string(), "shapes"));
}

TEST_CASE("an input shape the model cannot take fails naming the model and the shape") {
  TempDir dir("profiler_agent_badshape");
  TestAgentContext context(config_of({{"input_shape", {1, 3, 28, 28}}, {"roofline", false}}, dir.path() / "r.json"),
                           "profile", {{"model", fixture_model("resnet_fmnist.pt")}});
  auto ran = run_stage(context);
  REQUIRE_FALSE(ran.is_ok());
  CHECK(contains(ran.to_string(), "resnet_fmnist.pt"));
  CHECK(contains(ran.to_string(), "[1, 3, 28, 28]"));
}
