#pragma once
// The typed configuration of a factory (an agent or a provider). The kernel checks every workflow
// `with:` block against its factory's schema before anything runs: unknown keys, wrong types, values
// out of range and missing required keys are errors located at file:line:col. The schema also
// documents the factory (`profagent-run --describe ID`) and exports as JSON Schema.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

enum class ConfigType { kBool, kInt, kFloat, kString, kPath, kDuration, kEnum, kList, kMap };

PROFAGENT_SDK_API const char* to_string(ConfigType type);

struct ConfigField {
  std::string name;
  ConfigType type = ConfigType::kString;
  std::string description;
  std::optional<Json> default_value;  // stored already normalized (see ConfigSchema::resolve)
  bool required = false;
  std::optional<double> min;  // int/float: value bounds; list/map/string: size bounds; duration: seconds
  std::optional<double> max;
  std::vector<std::string> choices;      // kEnum
  std::shared_ptr<ConfigField> element;  // kList element / kMap value; null accepts any JSON value
  bool secret = false;                   // never logged, redacted in saved workflows and reports
  // The value names a provider of this interface (e.g. "importance"); `--validate` checks it against
  // the loaded plugins and the workflow's resources. kString: the provider's id or a resource name;
  // kMap: a whole provider block whose id key (e.g. `format` for datasets) names it and whose other
  // keys are its config (an empty map: none).
  std::string provider_interface;
  // kMap: the value configures the provider named by the field `provider_key` of the same config
  // (e.g. criterion_config for criterion); `--validate` checks it against that provider's schema.
  std::string provider_key;
};

// One problem found while validating a config. `path` is the key path inside the config block
// (map keys, list indices as decimal strings), so the kernel can point at the YAML node.
struct ConfigIssue {
  std::vector<std::string> path;
  std::string message;
};

class ConfigSchema;

// Fluent setters for the field just added: schema.add("ratio", ConfigType::kFloat).range(0, 1)...
class PROFAGENT_SDK_API ConfigFieldBuilder {
 public:
  ConfigFieldBuilder(ConfigSchema* schema, std::size_t index) : schema_(schema), index_(index) {}
  ConfigFieldBuilder& describe(std::string text);
  ConfigFieldBuilder& default_value(Json value);  // validated and normalized like user input
  ConfigFieldBuilder& required(bool yes = true);
  ConfigFieldBuilder& min(double value);
  ConfigFieldBuilder& max(double value);
  ConfigFieldBuilder& range(double lo, double hi) { return min(lo).max(hi); }
  ConfigFieldBuilder& choices(std::vector<std::string> values);  // for kEnum
  ConfigFieldBuilder& element(ConfigField element);              // for kList / kMap
  ConfigFieldBuilder& element(ConfigType type);
  ConfigFieldBuilder& secret(bool yes = true);
  ConfigFieldBuilder& names_provider(std::string interface);      // see ConfigField::provider_interface
  ConfigFieldBuilder& configures_provider(std::string key);       // see ConfigField::provider_key

 private:
  ConfigField& field();
  ConfigSchema* schema_;
  std::size_t index_;
};

// A validated configuration: every declared key that has a value (given or default), normalized:
// ints as integers, floats as numbers, durations as seconds (number), paths and strings as strings.
// The getters throw StatusError naming the key ("config key 'ratio' is not set", "... holds a string,
// not a number"); inside Agent::run and a factory's make the SDK's wrappers turn it into a Status.
class PROFAGENT_SDK_API Config {
 public:
  Config() = default;
  Config(Json values, std::vector<std::string> secret_keys)
      : values_(std::move(values)), secret_keys_(std::move(secret_keys)) {}

  bool has(const std::string& key) const;  // given or defaulted
  const Json& get(const std::string& key) const;  // throws StatusError(kNotFound) when absent

  bool get_bool(const std::string& key) const;
  std::int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::filesystem::path get_path(const std::string& key) const;
  std::chrono::duration<double> get_duration(const std::string& key) const;
  std::vector<Json> get_list(const std::string& key) const;

  const Json& values() const { return values_; }
  // The values with every secret replaced by "***": the only form that may be logged or saved.
  Json redacted() const;

 private:
  Json values_ = Json::object();
  std::vector<std::string> secret_keys_;
};

class PROFAGENT_SDK_API ConfigSchema {
 public:
  ConfigFieldBuilder add(std::string name, ConfigType type);

  const std::vector<ConfigField>& fields() const { return fields_; }
  const ConfigField* find(const std::string& name) const;

  // Every problem in `input` (a JSON object; null means empty). Empty when valid.
  std::vector<ConfigIssue> validate(const Json& input) const;
  // The normalized Config, or one kValidation Status listing every issue as "key: message".
  Result<Config> resolve(const Json& input) const;

  // JSON Schema (draft 2020-12) of the config object; additionalProperties is false.
  Json to_json_schema() const;

 private:
  friend class ConfigFieldBuilder;
  std::vector<ConfigField> fields_;
};

// Parses "90s", "1.5m", "250ms", "2h", "100us" or a bare number of seconds.
PROFAGENT_SDK_API Result<double> parse_duration_seconds(const std::string& text);

PROFAGENT_ABI_NAMESPACE_END
