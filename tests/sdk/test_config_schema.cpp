// The config schema is the contract between a workflow's `with:` block and a factory: these tests pin
// down what each type accepts, what it refuses and how the refusal reads.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "profagent/config_schema.hpp"

using profagent::Config;
using profagent::ConfigField;
using profagent::ConfigIssue;
using profagent::ConfigSchema;
using profagent::ConfigType;
using profagent::ErrorCode;
using profagent::Json;
using profagent::Status;
using profagent::StatusError;

namespace {

// The Status a call throws as StatusError, or ok when it does not throw (which fails any code check).
template <class F>
Status thrown_status(F&& call) {
  try {
    call();
  } catch (const StatusError& error) {
    return error.status();
  }
  return Status();
}

// The normalized value of `key` after resolving {key: value}; fails the test when resolving fails.
Json resolved(const ConfigSchema& schema, const std::string& key, const Json& value) {
  auto config = schema.resolve(Json{{key, value}});
  REQUIRE_MESSAGE(config.is_ok(), config.status().message());
  return config->get(key);
}

// The only issue of validating {key: value}; fails the test unless there is exactly one.
ConfigIssue only_issue(const ConfigSchema& schema, const std::string& key, const Json& value) {
  std::vector<ConfigIssue> issues = schema.validate(Json{{key, value}});
  REQUIRE(issues.size() == 1);
  return issues.front();
}

std::vector<std::string> path(std::initializer_list<const char*> parts) {
  return std::vector<std::string>(parts.begin(), parts.end());
}

}  // namespace

TEST_CASE("to_string names every config type") {
  CHECK(std::string(to_string(ConfigType::kBool)) == "bool");
  CHECK(std::string(to_string(ConfigType::kInt)) == "int");
  CHECK(std::string(to_string(ConfigType::kFloat)) == "float");
  CHECK(std::string(to_string(ConfigType::kString)) == "string");
  CHECK(std::string(to_string(ConfigType::kPath)) == "path");
  CHECK(std::string(to_string(ConfigType::kDuration)) == "duration");
  CHECK(std::string(to_string(ConfigType::kEnum)) == "enum");
  CHECK(std::string(to_string(ConfigType::kList)) == "list");
  CHECK(std::string(to_string(ConfigType::kMap)) == "map");
}

TEST_CASE("a bool field accepts true and false, also as strings from env interpolation") {
  ConfigSchema schema;
  schema.add("verbose", ConfigType::kBool);
  CHECK(resolved(schema, "verbose", true) == Json(true));
  CHECK(resolved(schema, "verbose", false) == Json(false));
  CHECK(resolved(schema, "verbose", "true") == Json(true));
  CHECK(resolved(schema, "verbose", "false") == Json(false));
  CHECK(resolved(schema, "verbose", "TRUE") == Json(true));
}

TEST_CASE("a bool field refuses a number and a word that is not true or false") {
  ConfigSchema schema;
  schema.add("verbose", ConfigType::kBool);
  ConfigIssue issue = only_issue(schema, "verbose", 1);
  CHECK(issue.path == path({"verbose"}));
  CHECK(issue.message == "expected a bool (true or false), got 1");
  CHECK(only_issue(schema, "verbose", "yes").message == "expected a bool (true or false), got \"yes\"");
}

TEST_CASE("an int field accepts an integer and a string that is wholly an integer") {
  ConfigSchema schema;
  schema.add("count", ConfigType::kInt);
  Json value = resolved(schema, "count", 42);
  CHECK(value.is_number_integer());
  CHECK(value == Json(42));
  value = resolved(schema, "count", "-7");
  CHECK(value.is_number_integer());
  CHECK(value == Json(-7));
}

TEST_CASE("an int field refuses 3.5 and names the key") {
  ConfigSchema schema;
  schema.add("count", ConfigType::kInt);
  ConfigIssue issue = only_issue(schema, "count", 3.5);
  CHECK(issue.path == path({"count"}));
  CHECK(issue.message == "expected an integer, got 3.5");
  CHECK(only_issue(schema, "count", "3.5").message == "expected an integer, got \"3.5\"");
  CHECK(only_issue(schema, "count", "3x").message == "expected an integer, got \"3x\"");
  CHECK(only_issue(schema, "count", "").message == "expected an integer, got \"\"");
  CHECK(only_issue(schema, "count", true).message == "expected an integer, got true");
  auto config = schema.resolve(Json{{"count", 3.5}});
  REQUIRE_FALSE(config.is_ok());
  CHECK(config.status().message() == "count: expected an integer, got 3.5");
}

TEST_CASE("an int field refuses a value that does not fit 64 bits") {
  ConfigSchema schema;
  schema.add("count", ConfigType::kInt);
  CHECK(only_issue(schema, "count", std::uint64_t{1} << 63).message ==
        "9223372036854775808 does not fit a 64-bit integer");
  CHECK(only_issue(schema, "count", "99999999999999999999").message ==
        "\"99999999999999999999\" does not fit a 64-bit integer");
}

TEST_CASE("an int field enforces its minimum and maximum and says the bound") {
  ConfigSchema schema;
  schema.add("step", ConfigType::kInt).range(-10, 10);
  CHECK(resolved(schema, "step", -10) == Json(-10));
  CHECK(resolved(schema, "step", 10) == Json(10));
  CHECK(only_issue(schema, "step", 11).message == "11 is above the maximum 10");
  CHECK(only_issue(schema, "step", -11).message == "-11 is below the minimum -10");
  CHECK(only_issue(schema, "step", "12").message == "12 is above the maximum 10");
}

TEST_CASE("a float field accepts integers, floats and numeric strings and stores a float") {
  ConfigSchema schema;
  schema.add("ratio", ConfigType::kFloat);
  Json value = resolved(schema, "ratio", 1);
  CHECK(value.is_number_float());
  CHECK(value.get<double>() == 1.0);
  CHECK(resolved(schema, "ratio", 0.25).get<double>() == 0.25);
  CHECK(resolved(schema, "ratio", "0.5").get<double>() == 0.5);
  CHECK(resolved(schema, "ratio", "1e-3").get<double>() == doctest::Approx(0.001));
  CHECK(resolved(schema, "ratio", "-2").get<double>() == -2.0);
}

TEST_CASE("a float field refuses words, non-finite strings and bools") {
  ConfigSchema schema;
  schema.add("ratio", ConfigType::kFloat);
  CHECK(only_issue(schema, "ratio", "half").message == "expected a number, got \"half\"");
  CHECK(only_issue(schema, "ratio", "0.5x").message == "expected a number, got \"0.5x\"");
  CHECK(only_issue(schema, "ratio", "nan").message == "expected a number, got \"nan\"");
  CHECK(only_issue(schema, "ratio", "inf").message == "expected a number, got \"inf\"");
  CHECK(only_issue(schema, "ratio", false).message == "expected a number, got false");
  CHECK(only_issue(schema, "ratio", Json::array({0.5})).message == "expected a number, got [0.5]");
}

TEST_CASE("a float field enforces its range and says the bound") {
  ConfigSchema schema;
  schema.add("ratio", ConfigType::kFloat).range(0, 1);
  CHECK(resolved(schema, "ratio", 0).get<double>() == 0.0);
  CHECK(resolved(schema, "ratio", 1).get<double>() == 1.0);
  CHECK(only_issue(schema, "ratio", 1.5).message == "1.5 is above the maximum 1");
  CHECK(only_issue(schema, "ratio", -0.5).message == "-0.5 is below the minimum 0");
  auto config = schema.resolve(Json{{"ratio", 1.5}});
  REQUIRE_FALSE(config.is_ok());
  CHECK(config.status().message() == "ratio: 1.5 is above the maximum 1");
}

TEST_CASE("a string field accepts text and turns numbers and bools into their text") {
  ConfigSchema schema;
  schema.add("name", ConfigType::kString);
  CHECK(resolved(schema, "name", "resnet") == Json("resnet"));
  CHECK(resolved(schema, "name", 123) == Json("123"));
  CHECK(resolved(schema, "name", 1.5) == Json("1.5"));
  CHECK(resolved(schema, "name", true) == Json("true"));
  CHECK(resolved(schema, "name", "") == Json(""));
}

TEST_CASE("a string field refuses a list and a map") {
  ConfigSchema schema;
  schema.add("name", ConfigType::kString);
  CHECK(only_issue(schema, "name", Json::array({1, 2})).message == "expected a string, got [1,2]");
  CHECK(only_issue(schema, "name", Json{{"a", 1}}).message == "expected a string, got {\"a\":1}");
}

TEST_CASE("a string field bounds its length in characters, not bytes") {
  ConfigSchema schema;
  schema.add("tag", ConfigType::kString).range(2, 4);
  CHECK(resolved(schema, "tag", "h\xC3\xA9\xC3\xA9\xC3\xA9") ==
        Json("h\xC3\xA9\xC3\xA9\xC3\xA9"));  // 4 chars, 7 bytes
  CHECK(only_issue(schema, "tag", "a").message == "has 1 character, below the minimum 2");
  CHECK(only_issue(schema, "tag", "abcde").message == "has 5 characters, above the maximum 4");
}

TEST_CASE("a path field accepts a non-empty string and refuses an empty one") {
  ConfigSchema schema;
  schema.add("out", ConfigType::kPath);
  auto config = schema.resolve(Json{{"out", "runs/a b/model.pt"}});
  REQUIRE(config.is_ok());
  CHECK(config->get_path("out") == std::filesystem::path("runs/a b/model.pt"));
  CHECK(only_issue(schema, "out", "").message == "expected a non-empty path");
  CHECK(only_issue(schema, "out", Json::array()).message == "expected a path, got []");
}

TEST_CASE("a path field bounds its length") {
  ConfigSchema schema;
  schema.add("out", ConfigType::kPath).max(5);
  CHECK(resolved(schema, "out", "a/b") == Json("a/b"));
  CHECK(only_issue(schema, "out", "a/b/c/d").message == "has 7 characters, above the maximum 5");
}

TEST_CASE("a duration field normalizes every unit to seconds") {
  ConfigSchema schema;
  schema.add("timeout", ConfigType::kDuration);
  CHECK(resolved(schema, "timeout", "90s").get<double>() == doctest::Approx(90));
  CHECK(resolved(schema, "timeout", "1.5m").get<double>() == doctest::Approx(90));
  CHECK(resolved(schema, "timeout", "250ms").get<double>() == doctest::Approx(0.25));
  CHECK(resolved(schema, "timeout", "2h").get<double>() == doctest::Approx(7200));
  CHECK(resolved(schema, "timeout", "100us").get<double>() == doctest::Approx(1e-4));
  CHECK(resolved(schema, "timeout", "10ns").get<double>() == doctest::Approx(1e-8));
  CHECK(resolved(schema, "timeout", "7").get<double>() == doctest::Approx(7));
  CHECK(resolved(schema, "timeout", 45).get<double>() == doctest::Approx(45));
  CHECK(resolved(schema, "timeout", 2.5).get<double>() == doctest::Approx(2.5));
  auto config = schema.resolve(Json{{"timeout", "1.5m"}});
  REQUIRE(config.is_ok());
  CHECK(config->get_duration("timeout").count() == doctest::Approx(90));
}

TEST_CASE("a duration field refuses an unknown unit, a negative value and a bool") {
  ConfigSchema schema;
  schema.add("timeout", ConfigType::kDuration);
  ConfigIssue issue = only_issue(schema, "timeout", "90x");
  CHECK(issue.path == path({"timeout"}));
  CHECK(issue.message == "invalid duration \"90x\": unknown unit 'x' (use ns, us, ms, s, m or h)");
  CHECK(only_issue(schema, "timeout", "-5s").message ==
        "invalid duration \"-5s\": a duration cannot be negative");
  CHECK(only_issue(schema, "timeout", -5).message == "a duration cannot be negative, got -5");
  CHECK(only_issue(schema, "timeout", true).message ==
        "expected a duration such as \"90s\" or a number of seconds, got true");
}

TEST_CASE("a duration field bounds its value in seconds") {
  ConfigSchema schema;
  schema.add("timeout", ConfigType::kDuration).range(1, 60);
  CHECK(resolved(schema, "timeout", "1m").get<double>() == doctest::Approx(60));
  CHECK(resolved(schema, "timeout", "1000ms").get<double>() == doctest::Approx(1));
  CHECK(only_issue(schema, "timeout", "2m").message == "\"2m\" (120s) is above the maximum 60s");
  CHECK(only_issue(schema, "timeout", "500ms").message == "\"500ms\" (0.5s) is below the minimum 1s");
  CHECK(only_issue(schema, "timeout", 0.5).message == "0.5s is below the minimum 1s");
  CHECK(only_issue(schema, "timeout", 61).message == "61s is above the maximum 60s");
}

TEST_CASE("an enum field accepts a listed choice and lists the choices when it refuses") {
  ConfigSchema schema;
  schema.add("criterion", ConfigType::kEnum).choices({"l1", "l2", "random"});
  CHECK(resolved(schema, "criterion", "l2") == Json("l2"));
  ConfigIssue issue = only_issue(schema, "criterion", "magnitude");
  CHECK(issue.path == path({"criterion"}));
  CHECK(issue.message == "\"magnitude\" is not one of: l1, l2, random");
  CHECK(only_issue(schema, "criterion", "randon").message ==
        "\"randon\" is not one of: l1, l2, random; did you mean 'random'?");
  CHECK(only_issue(schema, "criterion", "L2").message ==
        "\"L2\" is not one of: l1, l2, random; did you mean 'l2'?");
  CHECK(only_issue(schema, "criterion", Json::array({"l1"})).message ==
        "[\"l1\"] is not one of: l1, l2, random");
}

TEST_CASE("an enum of numeric choices accepts the YAML number") {
  ConfigSchema schema;
  schema.add("bits", ConfigType::kEnum).choices({"8", "16"});
  CHECK(resolved(schema, "bits", 8) == Json("8"));
  CHECK(only_issue(schema, "bits", 4).message == "4 is not one of: 8, 16");
}

TEST_CASE("a list field checks each element and names its index") {
  ConfigSchema schema;
  schema.add("layers", ConfigType::kList).element(ConfigType::kInt);
  Json value = resolved(schema, "layers", Json::array({1, "2", 3}));
  CHECK(value == Json::array({1, 2, 3}));
  CHECK(value[1].is_number_integer());
  std::vector<ConfigIssue> issues = schema.validate(Json{{"layers", Json::array({1, "x", 4.5})}});
  REQUIRE(issues.size() == 2);
  CHECK(issues[0].path == path({"layers", "1"}));
  CHECK(issues[0].message == "expected an integer, got \"x\"");
  CHECK(issues[1].path == path({"layers", "2"}));
  CHECK(issues[1].message == "expected an integer, got 4.5");
  CHECK(only_issue(schema, "layers", "1,2").message == "expected a list, got \"1,2\"");
}

TEST_CASE("a list field bounds its number of items") {
  ConfigSchema schema;
  schema.add("layers", ConfigType::kList).range(1, 3);
  CHECK(resolved(schema, "layers", Json::array({"a", "b", "c"})).size() == 3);
  CHECK(only_issue(schema, "layers", Json::array()).message == "has 0 items, below the minimum 1");
  CHECK(only_issue(schema, "layers", Json::array({1, 2, 3, 4})).message ==
        "has 4 items, above the maximum 3");
}

TEST_CASE("a list field without an element type keeps any values as given") {
  ConfigSchema schema;
  schema.add("anything", ConfigType::kList);
  Json given = Json::array({1, "a", Json{{"b", nullptr}}, Json::array()});
  CHECK(resolved(schema, "anything", given) == given);
}

TEST_CASE("a list of bounded elements reports the element bound at its index") {
  ConfigSchema schema;
  ConfigField ratio;
  ratio.type = ConfigType::kFloat;
  ratio.max = 1;
  schema.add("ratios", ConfigType::kList).element(ratio);
  ConfigIssue issue = only_issue(schema, "ratios", Json::array({0.5, 2}));
  CHECK(issue.path == path({"ratios", "1"}));
  CHECK(issue.message == "2 is above the maximum 1");
}

TEST_CASE("a map field checks each value and names its key") {
  ConfigSchema schema;
  schema.add("weights", ConfigType::kMap).element(ConfigType::kFloat);
  Json value = resolved(schema, "weights", Json{{"conv1", 1}, {"fc", "0.5"}});
  CHECK(value["conv1"].is_number_float());
  CHECK(value["fc"].get<double>() == 0.5);
  CHECK(value.begin().key() == "conv1");  // the order a person wrote is kept
  ConfigIssue issue = only_issue(schema, "weights", Json{{"conv1", 1}, {"fc", "heavy"}});
  CHECK(issue.path == path({"weights", "fc"}));
  CHECK(issue.message == "expected a number, got \"heavy\"");
}

TEST_CASE("a map field bounds its number of entries and refuses a list") {
  ConfigSchema schema;
  schema.add("weights", ConfigType::kMap).range(1, 2);
  CHECK(resolved(schema, "weights", Json{{"a", 1}}) == Json{{"a", 1}});
  CHECK(only_issue(schema, "weights", Json::object()).message == "has 0 entries, below the minimum 1");
  CHECK(only_issue(schema, "weights", Json{{"a", 1}, {"b", 2}, {"c", 3}}).message ==
        "has 3 entries, above the maximum 2");
  CHECK(only_issue(schema, "weights", Json::array({1})).message == "expected a map, got [1]");
}

TEST_CASE("defaults apply when a key is absent or empty and are stored normalized") {
  ConfigSchema schema;
  schema.add("timeout", ConfigType::kDuration).default_value("2m");
  schema.add("step", ConfigType::kInt).default_value("5");
  schema.add("ratio", ConfigType::kFloat).default_value(1);
  schema.add("mode", ConfigType::kEnum).choices({"fast", "slow"}).default_value("slow");
  const ConfigField* timeout = schema.find("timeout");
  REQUIRE(timeout != nullptr);
  REQUIRE(timeout->default_value.has_value());
  CHECK(timeout->default_value->get<double>() == doctest::Approx(120));
  CHECK(schema.find("step")->default_value->is_number_integer());
  CHECK(schema.find("ratio")->default_value->is_number_float());

  auto config = schema.resolve(Json{{"ratio", nullptr}});
  REQUIRE(config.is_ok());
  CHECK(config->get_duration("timeout").count() == doctest::Approx(120));
  CHECK(config->get_int("step") == 5);
  CHECK(config->get_float("ratio") == 1.0);
  CHECK(config->get_string("mode") == "slow");

  config = schema.resolve(Json{{"step", 9}});
  REQUIRE(config.is_ok());
  CHECK(config->get_int("step") == 9);
}

TEST_CASE("a field with no value, no default and no requirement is absent from the config") {
  ConfigSchema schema;
  schema.add("seed", ConfigType::kInt);
  auto config = schema.resolve(Json::object());
  REQUIRE(config.is_ok());
  CHECK_FALSE(config->has("seed"));
  CHECK(config->values() == Json::object());
  CHECK(thrown_status([&] { (void)config->get_int("seed"); }).code() == ErrorCode::kNotFound);
}

TEST_CASE("a required key that is missing or empty is an issue, unless it has a default") {
  ConfigSchema schema;
  schema.add("file", ConfigType::kPath).required();
  schema.add("level", ConfigType::kInt).required().default_value(3);
  std::vector<ConfigIssue> issues = schema.validate(Json::object());
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].path == path({"file"}));
  CHECK(issues[0].message == "missing required key");
  issues = schema.validate(Json{{"file", nullptr}});
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].message == "missing required key (the value is empty)");
  CHECK(schema.validate(Json{{"file", "a.txt"}}).empty());
}

TEST_CASE("a bad default is a programming error that names the field, whatever the order of setters") {
  Status status = thrown_status([] {
    ConfigSchema schema;
    schema.add("ratio", ConfigType::kFloat).range(0, 1).default_value(1.5);
  });
  CHECK(status.code() == ErrorCode::kInternal);
  CHECK(status.message().find("'ratio'") != std::string::npos);
  CHECK(status.message().find("1.5 is above the maximum 1") != std::string::npos);

  status = thrown_status([] {
    ConfigSchema schema;
    schema.add("ratio", ConfigType::kFloat).default_value(1.5).range(0, 1);
  });
  CHECK(status.code() == ErrorCode::kInternal);
  CHECK(status.message().find("'ratio'") != std::string::npos);

  status = thrown_status([] {
    ConfigSchema schema;
    schema.add("count", ConfigType::kInt).default_value("many");
  });
  CHECK(status.code() == ErrorCode::kInternal);
  CHECK(status.message().find("expected an integer, got \"many\"") != std::string::npos);

  status = thrown_status([] {
    ConfigSchema schema;
    schema.add("mode", ConfigType::kEnum).default_value("medium").choices({"fast", "slow"});
  });
  CHECK(status.code() == ErrorCode::kInternal);
  CHECK(status.message().find("'mode'") != std::string::npos);

  status = thrown_status([] {
    ConfigSchema schema;
    schema.add("layers", ConfigType::kList).default_value(Json::array({1, "x"})).element(ConfigType::kInt);
  });
  CHECK(status.code() == ErrorCode::kInternal);
  CHECK(status.message().find("layers.1: expected an integer") != std::string::npos);
}

TEST_CASE("a default given before its choices is accepted once the choices include it") {
  ConfigSchema schema;
  schema.add("select", ConfigType::kEnum).default_value("last").choices({"last", "best"});
  REQUIRE(schema.find("select")->default_value.has_value());
  CHECK(*schema.find("select")->default_value == Json("last"));
}

TEST_CASE("declaring a field twice is a programming error") {
  ConfigSchema schema;
  schema.add("ratio", ConfigType::kFloat);
  Status status = thrown_status([&] { schema.add("ratio", ConfigType::kInt); });
  CHECK(status.code() == ErrorCode::kInternal);
  CHECK(status.message().find("'ratio'") != std::string::npos);
  CHECK(schema.fields().size() == 1);
}

TEST_CASE("setters that do not fit the field's type are programming errors") {
  CHECK(thrown_status([] {
          ConfigSchema schema;
          schema.add("n", ConfigType::kInt).choices({"a"});
        }).code() == ErrorCode::kInternal);
  CHECK(thrown_status([] {
          ConfigSchema schema;
          schema.add("s", ConfigType::kString).element(ConfigType::kInt);
        }).code() == ErrorCode::kInternal);
  CHECK(thrown_status([] {
          ConfigSchema schema;
          schema.add("b", ConfigType::kBool).min(0);
        }).code() == ErrorCode::kInternal);
  CHECK(thrown_status([] {
          ConfigSchema schema;
          schema.add("r", ConfigType::kFloat).min(2).max(1);
        }).code() == ErrorCode::kInternal);
  CHECK(thrown_status([] {
          ConfigSchema schema;
          schema.add("e", ConfigType::kEnum).choices({});
        }).code() == ErrorCode::kInternal);
}

TEST_CASE("find returns the declared field or null") {
  ConfigSchema schema;
  schema.add("ratio", ConfigType::kFloat).describe("fraction of channels").secret();
  const ConfigField* field = schema.find("ratio");
  REQUIRE(field != nullptr);
  CHECK(field->type == ConfigType::kFloat);
  CHECK(field->description == "fraction of channels");
  CHECK(field->secret);
  CHECK(schema.find("missing") == nullptr);
}

TEST_CASE("an unknown key is refused with the known keys and a did-you-mean suggestion") {
  ConfigSchema schema;
  schema.add("ratio", ConfigType::kFloat);
  schema.add("criterion", ConfigType::kString);
  std::vector<ConfigIssue> issues = schema.validate(Json{{"ratoi", 0.5}});
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].path == path({"ratoi"}));
  CHECK(issues[0].message == "unknown key 'ratoi' (known: ratio, criterion); did you mean 'ratio'?");
  CHECK(schema.validate(Json{{"criterium", "l1"}})[0].message.find("did you mean 'criterion'?") !=
        std::string::npos);
}

TEST_CASE("an unknown key far from every known key gets no suggestion") {
  ConfigSchema schema;
  schema.add("ratio", ConfigType::kFloat);
  std::vector<ConfigIssue> issues = schema.validate(Json{{"batch_size", 8}});
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].message == "unknown key 'batch_size' (known: ratio)");
  CHECK(ConfigSchema().validate(Json{{"x", 1}})[0].message ==
        "unknown key 'x' (this component takes no config keys)");
}

TEST_CASE("null input is an empty config and a non-object input is one issue at the root") {
  ConfigSchema schema;
  schema.add("ratio", ConfigType::kFloat).default_value(0.5);
  CHECK(schema.validate(nullptr).empty());
  auto config = schema.resolve(nullptr);
  REQUIRE(config.is_ok());
  CHECK(config->get_float("ratio") == 0.5);

  std::vector<ConfigIssue> issues = schema.validate(Json::array({1, 2}));
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].path.empty());
  CHECK(issues[0].message == "expected a mapping of config keys, got [1,2]");
  auto failed = schema.resolve("ratio=1");
  REQUIRE_FALSE(failed.is_ok());
  CHECK(failed.status().message() == "expected a mapping of config keys, got \"ratio=1\"");
}

TEST_CASE("validate reports every issue in field order, then unknown keys in input order") {
  ConfigSchema schema;
  schema.add("a", ConfigType::kInt);
  schema.add("b", ConfigType::kInt).required();
  schema.add("c", ConfigType::kBool);
  Json input = Json::object();
  input["zz"] = 1;
  input["c"] = "maybe";
  input["a"] = "x";
  input["yy"] = 2;
  std::vector<ConfigIssue> issues = schema.validate(input);
  REQUIRE(issues.size() == 5);
  CHECK(issues[0].path == path({"a"}));
  CHECK(issues[1].path == path({"b"}));
  CHECK(issues[2].path == path({"c"}));
  CHECK(issues[3].path == path({"zz"}));
  CHECK(issues[4].path == path({"yy"}));
}

TEST_CASE("resolve returns one validation status listing every issue as a key path line") {
  ConfigSchema schema;
  schema.add("ratio", ConfigType::kFloat).range(0, 1);
  schema.add("layers", ConfigType::kList).element(ConfigType::kInt);
  schema.add("file", ConfigType::kPath).required();
  auto config = schema.resolve(Json{{"ratio", 1.5}, {"layers", Json::array({1, 2, "x"})}, {"ratoi", 1}});
  REQUIRE_FALSE(config.is_ok());
  CHECK(config.status().code() == ErrorCode::kValidation);
  CHECK(config.status().message() ==
        "ratio: 1.5 is above the maximum 1\n"
        "layers.2: expected an integer, got \"x\"\n"
        "file: missing required key\n"
        "ratoi: unknown key 'ratoi' (known: ratio, layers, file); did you mean 'ratio'?");
}

TEST_CASE("typed getters return the values and refuse a missing key or a wrong type") {
  ConfigSchema schema;
  schema.add("verbose", ConfigType::kBool);
  schema.add("step", ConfigType::kInt);
  schema.add("ratio", ConfigType::kFloat);
  schema.add("name", ConfigType::kString);
  schema.add("out", ConfigType::kPath);
  schema.add("timeout", ConfigType::kDuration);
  schema.add("layers", ConfigType::kList);
  auto config = schema.resolve(Json{{"verbose", "true"},
                                    {"step", "3"},
                                    {"ratio", 0.5},
                                    {"name", "n"},
                                    {"out", "o.pt"},
                                    {"timeout", "250ms"},
                                    {"layers", Json::array({"a", "b"})}});
  REQUIRE_MESSAGE(config.is_ok(), config.status().message());
  CHECK(config->get_bool("verbose"));
  CHECK(config->get_int("step") == 3);
  CHECK(config->get_float("ratio") == 0.5);
  CHECK(config->get_float("step") == 3.0);
  CHECK(config->get_string("name") == "n");
  CHECK(config->get_path("out") == std::filesystem::path("o.pt"));
  CHECK(config->get_duration("timeout").count() == doctest::Approx(0.25));
  CHECK(config->get_list("layers") == std::vector<Json>{"a", "b"});
  CHECK(config->has("step"));
  CHECK(config->get("name") == Json("n"));

  CHECK(thrown_status([&] { (void)config->get("nope"); }).code() == ErrorCode::kNotFound);
  CHECK(thrown_status([&] { (void)config->get_string("nope"); }).code() == ErrorCode::kNotFound);
  CHECK(thrown_status([&] { (void)config->get_bool("step"); }).code() == ErrorCode::kInvalidArgument);
  CHECK(thrown_status([&] { (void)config->get_int("ratio"); }).code() == ErrorCode::kInvalidArgument);
  CHECK(thrown_status([&] { (void)config->get_float("name"); }).code() == ErrorCode::kInvalidArgument);
  CHECK(thrown_status([&] { (void)config->get_string("step"); }).code() == ErrorCode::kInvalidArgument);
  CHECK(thrown_status([&] { (void)config->get_path("verbose"); }).code() == ErrorCode::kInvalidArgument);
  CHECK(thrown_status([&] { (void)config->get_duration("name"); }).code() == ErrorCode::kInvalidArgument);
  CHECK(thrown_status([&] { (void)config->get_list("name"); }).code() == ErrorCode::kInvalidArgument);
  Status wrong = thrown_status([&] { (void)config->get_int("name"); });
  CHECK(wrong.message().find("'name'") != std::string::npos);
}

TEST_CASE("redacted replaces every secret value and keeps the rest") {
  ConfigSchema schema;
  schema.add("token", ConfigType::kString).secret();
  schema.add("name", ConfigType::kString);
  ConfigField header;
  header.type = ConfigType::kString;
  header.secret = true;
  schema.add("headers", ConfigType::kMap).element(header);
  schema.add("password", ConfigType::kString).secret();
  auto config = schema.resolve(Json{{"token", "abc123"}, {"name", "n"}, {"headers", Json{{"auth", "xyz"}}}});
  REQUIRE(config.is_ok());
  Json redacted = config->redacted();
  CHECK(redacted["token"] == Json("***"));
  CHECK(redacted["headers"] == Json("***"));
  CHECK(redacted["name"] == Json("n"));
  CHECK_FALSE(redacted.contains("password"));
  CHECK(config->get_string("token") == "abc123");
  CHECK(redacted.dump().find("abc123") == std::string::npos);
  CHECK(redacted.dump().find("xyz") == std::string::npos);
}

TEST_CASE("a secret value is never echoed in an issue message") {
  ConfigSchema schema;
  schema.add("pin", ConfigType::kInt).secret().max(9999);
  schema.add("token", ConfigType::kString).secret().max(4);
  auto config = schema.resolve(Json{{"pin", "hunter2"}, {"token", "supersecret"}});
  REQUIRE_FALSE(config.is_ok());
  CHECK(config.status().message().find("hunter2") == std::string::npos);
  CHECK(config.status().message().find("supersecret") == std::string::npos);
  CHECK(config.status().message().find("pin: expected an integer, got ***") != std::string::npos);
  CHECK(only_issue(schema, "pin", 123456).message == "*** is above the maximum 9999");
}

TEST_CASE("the JSON Schema export describes every type") {
  ConfigSchema schema;
  schema.add("verbose", ConfigType::kBool).describe("log more").default_value(false);
  schema.add("step", ConfigType::kInt).range(-3, 3).default_value(1).describe("step");
  schema.add("ratio", ConfigType::kFloat).range(0, 0.5).required().describe("ratio");
  schema.add("name", ConfigType::kString).range(1, 8);
  schema.add("out", ConfigType::kPath).required();
  schema.add("timeout", ConfigType::kDuration).max(60).default_value("30s");
  schema.add("mode", ConfigType::kEnum).choices({"fast", "slow"});
  schema.add("layers", ConfigType::kList).element(ConfigType::kInt).range(1, 4);
  schema.add("weights", ConfigType::kMap).element(ConfigType::kFloat).max(10);
  schema.add("anything", ConfigType::kList);
  schema.add("token", ConfigType::kString).secret().default_value("dev-token");

  Json js = schema.to_json_schema();
  CHECK(js["$schema"] == Json("https://json-schema.org/draft/2020-12/schema"));
  CHECK(js["type"] == Json("object"));
  CHECK(js["additionalProperties"] == Json(false));
  CHECK(js["required"] == Json::array({"ratio", "out"}));
  const Json& p = js["properties"];
  REQUIRE(p.size() == 11);

  CHECK(p["verbose"] == Json{{"description", "log more"}, {"type", "boolean"}, {"default", false}});
  CHECK(p["step"] ==
        Json{{"description", "step"}, {"type", "integer"}, {"minimum", -3}, {"maximum", 3}, {"default", 1}});
  CHECK(p["ratio"]["type"] == Json("number"));
  CHECK(p["ratio"]["minimum"] == Json(0));
  CHECK(p["ratio"]["maximum"] == Json(0.5));
  CHECK(p["name"]["type"] == Json("string"));
  CHECK(p["name"]["minLength"] == Json(1));
  CHECK(p["name"]["maxLength"] == Json(8));
  CHECK(p["out"]["type"] == Json("string"));
  CHECK(p["out"]["format"] == Json("path"));
  CHECK(p["out"]["minLength"] == Json(1));
  CHECK(p["timeout"]["type"] == Json::array({"string", "number"}));
  CHECK(p["timeout"].contains("pattern"));
  CHECK(p["timeout"]["minimum"] == Json(0));
  CHECK(p["timeout"]["maximum"] == Json(60));
  CHECK(p["timeout"]["default"] == Json(30.0));
  CHECK(p["mode"]["type"] == Json("string"));
  CHECK(p["mode"]["enum"] == Json::array({"fast", "slow"}));
  CHECK(p["layers"]["type"] == Json("array"));
  CHECK(p["layers"]["items"] == Json{{"type", "integer"}});
  CHECK(p["layers"]["minItems"] == Json(1));
  CHECK(p["layers"]["maxItems"] == Json(4));
  CHECK(p["weights"]["type"] == Json("object"));
  CHECK(p["weights"]["additionalProperties"] == Json{{"type", "number"}});
  CHECK(p["weights"]["maxProperties"] == Json(10));
  CHECK_FALSE(p["weights"].contains("minProperties"));
  CHECK(p["anything"] == Json{{"description", ""}, {"type", "array"}});
  CHECK(p["token"]["writeOnly"] == Json(true));
  CHECK_FALSE(p["token"].contains("default"));  // --describe must not print a secret
  for (auto it = p.begin(); it != p.end(); ++it) CHECK_MESSAGE(it->contains("description"), it.key());
  CHECK_FALSE(p["verbose"].contains("writeOnly"));
}

TEST_CASE("parse_duration_seconds reads every accepted form") {
  struct Row {
    const char* text;
    double seconds;
  };
  const Row rows[] = {{"90s", 90},    {"1.5m", 90},    {"250ms", 0.25}, {"2h", 7200}, {"100us", 1e-4},
                      {"10ns", 1e-8}, {"0", 0},        {"45", 45},      {"2.5", 2.5}, {".5s", 0.5},
                      {"5.s", 5},     {"0.001h", 3.6}, {"0s", 0},       {"1000ms", 1}};
  for (const Row& row : rows) {
    CAPTURE(row.text);
    auto seconds = profagent::parse_duration_seconds(row.text);
    REQUIRE_MESSAGE(seconds.is_ok(), seconds.status().message());
    CHECK(*seconds == doctest::Approx(row.seconds));
  }
}

TEST_CASE("parse_duration_seconds refuses malformed text and names it") {
  const char* bad[] = {"90x", "", "-5s", "s", "1.5.5s", "5 s", "+5s", "1h30m", "ms5", "90S", " 5s"};
  for (const char* text : bad) {
    CAPTURE(text);
    auto seconds = profagent::parse_duration_seconds(text);
    REQUIRE_FALSE(seconds.is_ok());
    CHECK(seconds.status().code() == ErrorCode::kInvalidArgument);
    CHECK(seconds.status().message().find("\"" + std::string(text) + "\"") != std::string::npos);
  }
  CHECK(profagent::parse_duration_seconds("-5s").status().message().find("negative") != std::string::npos);
  CHECK(profagent::parse_duration_seconds("90x").status().message().find("unknown unit 'x'") !=
        std::string::npos);
}
