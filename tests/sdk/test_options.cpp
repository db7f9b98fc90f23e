// Typed options (profagent/options.hpp): one declaration is a factory's schema, its defaults and the
// struct its code reads. These tests pin down that the three agree, and how a refusal reads.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "profagent/options.hpp"

using profagent::Agent;
using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::Config;
using profagent::ConfigField;
using profagent::ConfigSchema;
using profagent::ConfigType;
using profagent::ErrorCode;
using profagent::Json;
using profagent::OptionsSchema;
using profagent::Provider;
using profagent::ProviderFactory;
using profagent::Result;
using profagent::Status;

namespace {

enum class Mode { kFast, kExact };

struct Base {
  std::string device = "cpu";
};

struct Options : Base {
  std::int64_t batch_size = 256;
  double ratio = 0.25;
  bool verbose = false;
  std::string name = "model";
  std::filesystem::path cache = "cache/dir";
  std::vector<std::string> layers = {"conv1", "fc"};
  std::vector<std::int64_t> empty_list;
  Json extra = Json::object();
  Json dataset;                      // null: no default
  std::optional<int> threads;        // no default
  std::optional<std::vector<std::int64_t>> shape;
  std::int64_t limit = 0;            // 0: all; the key has no default
  int small = 7;
  std::uint64_t seed = 3;
  double timeout = 1.5;              // seconds
  Mode mode = Mode::kExact;
};

const char* to_string(Mode mode) { return mode == Mode::kFast ? "fast" : "exact"; }

OptionsSchema<Options> make_schema() {
  using O = Options;
  OptionsSchema<O> s;
  s.field("device", &O::device, ConfigType::kEnum).choices({"cpu", "cuda"}).describe("where to run");
  s.field("batch_size", &O::batch_size).min(1).describe("samples per batch");
  s.field("ratio", &O::ratio).range(0.0, 1.0);
  s.field("verbose", &O::verbose);
  s.field("name", &O::name);
  s.field("cache", &O::cache);
  s.field("layers", &O::layers);
  s.field("empty_list", &O::empty_list);
  s.field("extra", &O::extra);
  s.field("dataset", &O::dataset);
  s.field("threads", &O::threads).min(1);
  s.field("shape", &O::shape).min(1);
  s.field_without_default("limit", &O::limit).min(1);
  s.field("small", &O::small);
  s.field("seed", &O::seed).min(0);
  s.field("timeout", &O::timeout, ConfigType::kDuration);
  s.field_with("mode", ConfigType::kEnum,
               [](const Json& value, O& options) -> Status {
                 const std::string text = value.get<std::string>();
                 if (text == "fast") {
                   options.mode = Mode::kFast;
                 } else if (text == "exact") {
                   options.mode = Mode::kExact;
                 } else {
                   return Status(ErrorCode::kInvalidArgument, "'" + text + "' is not a mode this build knows");
                 }
                 return Status::ok();
               })
      .choices({"fast", "exact", "legacy"})
      .default_value(to_string(O{}.mode));
  return s;
}

const ConfigField& field_of(const OptionsSchema<Options>& schema, const std::string& key) {
  const ConfigField* field = schema.schema().find(key);
  REQUIRE_MESSAGE(field != nullptr, key);
  return *field;
}

Config resolved(const ConfigSchema& schema, const Json& input) {
  auto config = schema.resolve(input);
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  return std::move(config).value();
}

class NullAgent : public Agent {
 public:
  explicit NullAgent(Options options) : options_(std::move(options)) {}
  Status run(AgentContext&) override { return Status::ok(); }
  const Options& options() const { return options_; }

 private:
  Options options_;
};

class NullProvider : public Provider {};

}  // namespace

TEST_CASE("the config type of each key follows the member's type") {
  const auto schema = make_schema();
  CHECK(field_of(schema, "batch_size").type == ConfigType::kInt);
  CHECK(field_of(schema, "small").type == ConfigType::kInt);
  CHECK(field_of(schema, "seed").type == ConfigType::kInt);
  CHECK(field_of(schema, "ratio").type == ConfigType::kFloat);
  CHECK(field_of(schema, "verbose").type == ConfigType::kBool);
  CHECK(field_of(schema, "name").type == ConfigType::kString);
  CHECK(field_of(schema, "cache").type == ConfigType::kPath);
  CHECK(field_of(schema, "extra").type == ConfigType::kMap);
  CHECK(field_of(schema, "threads").type == ConfigType::kInt);
  CHECK(field_of(schema, "device").type == ConfigType::kEnum);
  CHECK(field_of(schema, "timeout").type == ConfigType::kDuration);
  REQUIRE(field_of(schema, "layers").type == ConfigType::kList);
  REQUIRE(field_of(schema, "layers").element != nullptr);
  CHECK(field_of(schema, "layers").element->type == ConfigType::kString);
  // The element type is found through std::optional too.
  REQUIRE(field_of(schema, "shape").element != nullptr);
  CHECK(field_of(schema, "shape").element->type == ConfigType::kInt);
}

TEST_CASE("defaults come from the struct's initializers") {
  const auto schema = make_schema();
  CHECK(field_of(schema, "device").default_value == Json("cpu"));  // a member of the base class
  CHECK(field_of(schema, "batch_size").default_value == Json(256));
  CHECK(field_of(schema, "ratio").default_value == Json(0.25));
  CHECK(field_of(schema, "verbose").default_value == Json(false));
  CHECK(field_of(schema, "name").default_value == Json("model"));
  CHECK(field_of(schema, "cache").default_value == Json("cache/dir"));
  CHECK(field_of(schema, "layers").default_value == Json::array({"conv1", "fc"}));
  CHECK(field_of(schema, "empty_list").default_value == Json::array());
  CHECK(field_of(schema, "extra").default_value == Json::object());
  CHECK(field_of(schema, "small").default_value == Json(7));
  CHECK(field_of(schema, "seed").default_value == Json(3));
  CHECK(field_of(schema, "timeout").default_value == Json(1.5));
  CHECK(field_of(schema, "mode").default_value == Json("exact"));
}

TEST_CASE("optional members, null maps and keys bound without a default have no default") {
  const auto schema = make_schema();
  CHECK_FALSE(field_of(schema, "threads").default_value.has_value());
  CHECK_FALSE(field_of(schema, "shape").default_value.has_value());
  CHECK_FALSE(field_of(schema, "dataset").default_value.has_value());
  CHECK_FALSE(field_of(schema, "limit").default_value.has_value());

  const Config config = resolved(schema.schema(), Json::object());
  CHECK_FALSE(config.has("threads"));
  CHECK_FALSE(config.has("limit"));
  auto options = schema.read(config);
  REQUIRE_MESSAGE(options.is_ok(), options.status().to_string());
  CHECK_FALSE(options->threads.has_value());
  CHECK_FALSE(options->shape.has_value());
  CHECK(options->dataset.is_null());
  CHECK(options->limit == 0);  // the initial value stays
}

TEST_CASE("an empty config reads back as the struct's defaults") {
  const auto schema = make_schema();
  auto options = schema.read(resolved(schema.schema(), Json::object()));
  REQUIRE_MESSAGE(options.is_ok(), options.status().to_string());
  const Options defaults;
  CHECK(options->device == defaults.device);
  CHECK(options->batch_size == defaults.batch_size);
  CHECK(options->ratio == defaults.ratio);
  CHECK(options->verbose == defaults.verbose);
  CHECK(options->name == defaults.name);
  CHECK(options->cache == defaults.cache);
  CHECK(options->layers == defaults.layers);
  CHECK(options->extra == defaults.extra);
  CHECK(options->seed == defaults.seed);
  CHECK(options->timeout == defaults.timeout);
  CHECK(options->mode == defaults.mode);
}

TEST_CASE("a validated config reads back into the struct") {
  const auto schema = make_schema();
  const Config config = resolved(schema.schema(), Json{{"device", "cuda"},
                                                       {"batch_size", "64"},
                                                       {"ratio", 0.5},
                                                       {"verbose", true},
                                                       {"name", "resnet"},
                                                       {"cache", "/tmp/c"},
                                                       {"layers", {"a", "b", "c"}},
                                                       {"extra", {{"normalize", "max"}}},
                                                       {"dataset", {{"format", "idx"}}},
                                                       {"threads", 4},
                                                       {"shape", {1, 3, 32, 32}},
                                                       {"limit", 10},
                                                       {"small", -5},
                                                       {"seed", 42},
                                                       {"timeout", "250ms"},
                                                       {"mode", "fast"}});
  auto options = schema.read(config);
  REQUIRE_MESSAGE(options.is_ok(), options.status().to_string());
  CHECK(options->device == "cuda");
  CHECK(options->batch_size == 64);
  CHECK(options->ratio == 0.5);
  CHECK(options->verbose);
  CHECK(options->name == "resnet");
  CHECK(options->cache == std::filesystem::path("/tmp/c"));
  CHECK(options->layers == std::vector<std::string>{"a", "b", "c"});
  CHECK(options->extra == Json{{"normalize", "max"}});
  CHECK(options->dataset == Json{{"format", "idx"}});
  CHECK(options->threads == 4);
  CHECK(options->shape == std::vector<std::int64_t>{1, 3, 32, 32});
  CHECK(options->limit == 10);
  CHECK(options->small == -5);
  CHECK(options->seed == 42);
  CHECK(options->timeout == doctest::Approx(0.25));
  CHECK(options->mode == Mode::kFast);
}

TEST_CASE("a reader's refusal keeps its code and message and names the key") {
  const auto schema = make_schema();
  auto options = schema.read(resolved(schema.schema(), Json{{"mode", "legacy"}}));
  REQUIRE_FALSE(options.is_ok());
  CHECK(options.status().code() == ErrorCode::kInvalidArgument);
  CHECK(options.status().message() == "'legacy' is not a mode this build knows");
  CHECK(options.status().to_string().find("config key 'mode'") != std::string::npos);
}

TEST_CASE("an integer too large for a narrower member is refused naming the key") {
  const auto schema = make_schema();
  auto options = schema.read(resolved(schema.schema(), Json{{"small", 1LL << 40}}));
  REQUIRE_FALSE(options.is_ok());
  CHECK(options.status().code() == ErrorCode::kInvalidArgument);
  CHECK(options.status().message().rfind("config key 'small': ", 0) == 0);
  CHECK(options.status().message().find("out of range") != std::string::npos);
}

TEST_CASE("the JSON Schema of a bound schema equals the one declared by hand") {
  struct Small {
    std::int64_t batch_size = 32;
    std::string device = "cpu";
    std::optional<double> ratio;
    std::vector<std::string> ignored;
    Json criterion_config = Json::object();
    std::filesystem::path root;
  };
  OptionsSchema<Small> bound;
  bound.field("batch_size", &Small::batch_size).min(1).describe("samples per batch");
  bound.field("device", &Small::device, ConfigType::kEnum).choices({"cpu", "cuda"}).describe("where");
  bound.field("ratio", &Small::ratio).range(0.0, 0.95).describe("share to remove");
  bound.field("ignored", &Small::ignored).describe("layers left alone");
  bound.field("criterion_config", &Small::criterion_config).describe("the criterion's own config");
  bound.field_without_default("root", &Small::root).required().describe("the data");

  ConfigSchema by_hand;
  by_hand.add("batch_size", ConfigType::kInt).default_value(32).min(1).describe("samples per batch");
  by_hand.add("device", ConfigType::kEnum).choices({"cpu", "cuda"}).default_value("cpu").describe("where");
  by_hand.add("ratio", ConfigType::kFloat).range(0.0, 0.95).describe("share to remove");
  by_hand.add("ignored", ConfigType::kList)
      .element(ConfigType::kString)
      .default_value(Json::array())
      .describe("layers left alone");
  by_hand.add("criterion_config", ConfigType::kMap)
      .default_value(Json::object())
      .describe("the criterion's own config");
  by_hand.add("root", ConfigType::kPath).required().describe("the data");

  CHECK(bound.schema().to_json_schema() == by_hand.to_json_schema());
}

TEST_CASE("a cross-key check runs after reading and keys from another declaration are read together") {
  struct Block {
    std::int64_t width = 0;
    std::int64_t height = 0;
  };
  struct WithBlock {
    bool strict = true;
    Block block;
  };
  OptionsSchema<WithBlock> schema;
  schema.field("strict", &WithBlock::strict);
  schema.fields_from(
      &WithBlock::block,
      [](ConfigSchema& s) {
        s.add("width", ConfigType::kInt).min(1);
        s.add("height", ConfigType::kInt).min(1);
      },
      [](const Config& config) -> Result<Block> {
        if (config.has("width") != config.has("height"))
          return Status(ErrorCode::kInvalidArgument, "width and height go together");
        Block block;
        if (config.has("width")) block = Block{config.get_int("width"), config.get_int("height")};
        return block;
      });
  schema.check([](const WithBlock& options) {
    if (options.strict && options.block.width == 0)
      return Status(ErrorCode::kInvalidArgument, "strict needs a size");
    return Status::ok();
  });
  CHECK(schema.schema().find("width") != nullptr);

  auto read = schema.read(resolved(schema.schema(), Json{{"width", 4}, {"height", 3}}));
  REQUIRE_MESSAGE(read.is_ok(), read.status().to_string());
  CHECK(read->block.width == 4);
  CHECK(read->block.height == 3);

  auto half = schema.read(resolved(schema.schema(), Json{{"width", 4}}));
  REQUIRE_FALSE(half.is_ok());
  CHECK(half.status().message() == "width and height go together");

  auto unchecked = schema.read(resolved(schema.schema(), Json::object()));
  REQUIRE_FALSE(unchecked.is_ok());
  CHECK(unchecked.status().message() == "strict needs a size");
  CHECK(schema.read(resolved(schema.schema(), Json{{"strict", false}})).is_ok());
}

TEST_CASE("a bound agent factory takes the schema, reads its options and names the agent in errors") {
  static const OptionsSchema<Options> schema = make_schema();
  AgentFactory factory;
  factory.id = "typed";
  profagent::bind_agent_options<NullAgent>(factory, schema);
  CHECK(factory.config.to_json_schema() == schema.schema().to_json_schema());

  auto made = factory.make(resolved(factory.config, Json{{"batch_size", 8}}));
  REQUIRE_MESSAGE(made.is_ok(), made.status().to_string());
  auto* agent = dynamic_cast<NullAgent*>(made.value().get());
  REQUIRE(agent != nullptr);
  CHECK(agent->options().batch_size == 8);
  CHECK(agent->options().name == "model");

  auto refused = factory.make(resolved(factory.config, Json{{"mode", "legacy"}}));
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().to_string().find("agent 'typed'") != std::string::npos);
  CHECK(refused.status().to_string().find("config key 'mode'") != std::string::npos);

  AgentFactory throwing;
  throwing.id = "thrower";
  profagent::bind_agent_options<Options>(throwing, schema, [](Options) -> Result<std::unique_ptr<Agent>> {
    throw std::runtime_error("boom");
  });
  auto thrown = throwing.make(resolved(throwing.config, Json::object()));
  REQUIRE_FALSE(thrown.is_ok());
  CHECK(thrown.status().code() == ErrorCode::kRuntime);
  CHECK(thrown.status().message() == "making agent 'thrower' threw: boom");
}

TEST_CASE("a bound provider factory reads its options and names the provider in errors") {
  static const OptionsSchema<Options> schema = make_schema();
  ProviderFactory factory;
  factory.id = "typed_provider";
  factory.interface = "test";
  std::int64_t seen = 0;
  profagent::bind_provider_options<Options>(factory, schema,
                                            [&seen](Options options) -> Result<std::unique_ptr<Provider>> {
                                              seen = options.batch_size;
                                              if (options.name == "throw") throw std::runtime_error("bad name");
                                              return std::unique_ptr<Provider>(std::make_unique<NullProvider>());
                                            });
  CHECK(factory.config.to_json_schema() == schema.schema().to_json_schema());
  REQUIRE(factory.make(resolved(factory.config, Json{{"batch_size", 5}})).is_ok());
  CHECK(seen == 5);

  auto refused = factory.make(resolved(factory.config, Json{{"mode", "legacy"}}));
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().to_string().find("provider 'typed_provider'") != std::string::npos);

  auto thrown = factory.make(resolved(factory.config, Json{{"name", "throw"}}));
  REQUIRE_FALSE(thrown.is_ok());
  CHECK(thrown.status().code() == ErrorCode::kRuntime);
  CHECK(thrown.status().message() == "making provider 'typed_provider' threw: bad name");
}
