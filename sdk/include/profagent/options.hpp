#pragma once
// Typed options: one declaration gives a factory's config schema, its defaults and the struct its
// code reads, so the schema and the reader cannot drift apart.
//
//   struct Options { std::int64_t batch_size = 256; std::optional<int> threads; std::string device = "cpu"; };
//   OptionsSchema<Options> schema;
//   schema.field("batch_size", &Options::batch_size).min(1).describe("samples per forward");
//   schema.field("threads", &Options::threads).min(1).describe("intra-op threads");
//   schema.field("device", &Options::device, ConfigType::kEnum).choices({"cpu", "cuda"});
//   Result<Options> options = schema.read(config);   // config validated by schema.schema()
//
// The config type follows the member's type (bool, integers, floating point, std::string,
// std::filesystem::path, Json for maps, std::vector<...> for lists, std::optional<...> for keys
// without a default); pass a ConfigType for enums and durations (seconds in a double). The default is
// the member's value in a default-constructed Options, except for std::optional members and null Json
// members, which have none; field_without_default() binds a member whose initial value means "not
// given" (0 for "all", an empty required path). Members may belong to a base class of Options. Members
// of other types (enums of the code, parsed structures) are bound with field_with() and a reader;
// keys another library declares on a ConfigSchema are bound with fields_from(); rules across keys go
// in check().
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "profagent/agent.hpp"
#include "profagent/config_schema.hpp"
#include "profagent/json.hpp"
#include "profagent/provider.hpp"
#include "profagent/status.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

namespace options_detail {

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {
  using Value = T;
};
template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {
  using Value = T;
};
template <class T>
struct IsStringMap : std::false_type {};
template <class T>
struct IsStringMap<std::map<std::string, T>> : std::true_type {
  using Value = T;
};

// T itself, or the value type of std::optional<T>.
template <class T>
struct Unwrapped {
  using Type = T;
};
template <class T>
struct Unwrapped<std::optional<T>> {
  using Type = T;
};

// The config type a member of type T reads as.
template <class T>
constexpr ConfigType config_type_of() {
  if constexpr (IsOptional<T>::value) {
    return config_type_of<typename IsOptional<T>::Value>();
  } else if constexpr (std::is_same_v<T, bool>) {
    return ConfigType::kBool;
  } else if constexpr (std::is_integral_v<T>) {
    return ConfigType::kInt;
  } else if constexpr (std::is_floating_point_v<T>) {
    return ConfigType::kFloat;
  } else if constexpr (std::is_same_v<T, std::string>) {
    return ConfigType::kString;
  } else if constexpr (std::is_same_v<T, std::filesystem::path>) {
    return ConfigType::kPath;
  } else if constexpr (IsVector<T>::value) {
    return ConfigType::kList;
  } else if constexpr (IsStringMap<T>::value || std::is_same_v<T, Json>) {
    return ConfigType::kMap;
  } else {
    static_assert(IsVector<T>::value, "bind members of this type with OptionsSchema::field_with");
    return ConfigType::kMap;
  }
}

template <class T>
Json to_config_json(const T& value) {
  if constexpr (std::is_same_v<T, std::filesystem::path>) {
    return Json(value.string());
  } else if constexpr (IsVector<T>::value) {
    Json list = Json::array();
    for (const auto& element : value) list.push_back(to_config_json(element));
    return list;
  } else {
    return Json(value);
  }
}

// The member's value from a validated, normalized config value. Integers narrower than the config's
// 64 bits are range-checked (the schema's min/max may not cover the member's type); the exception
// becomes a Status naming the key in OptionsSchema::read.
template <class T>
T from_config_json(const Json& value) {
  if constexpr (std::is_same_v<T, std::filesystem::path>) {
    return std::filesystem::path(value.get<std::string>());
  } else if constexpr (std::is_same_v<T, Json>) {
    return value;
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (!value.is_number_integer()) throw std::invalid_argument(value.dump() + " is not an integer");
    const bool negative = value.is_number_unsigned() ? false : value.get<std::int64_t>() < 0;
    if (negative) {
      const auto number = value.get<std::int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        throw std::out_of_range(std::to_string(number) + " is negative");
      } else {
        if (number < static_cast<std::int64_t>(std::numeric_limits<T>::min()))
          throw std::out_of_range(std::to_string(number) + " is out of range (at least " +
                                  std::to_string(std::numeric_limits<T>::min()) + ")");
      }
      return static_cast<T>(number);
    }
    const auto number = value.get<std::uint64_t>();
    if (number > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
      throw std::out_of_range(std::to_string(number) + " is out of range (at most " +
                              std::to_string(std::numeric_limits<T>::max()) + ")");
    return static_cast<T>(number);
  } else if constexpr (IsVector<T>::value) {
    T list;
    for (const Json& element : value) list.push_back(from_config_json<typename IsVector<T>::Value>(element));
    return list;
  } else {
    return value.get<T>();
  }
}

}  // namespace options_detail

template <class Options>
class OptionsSchema {
 public:
  // Reads one key's validated, normalized value into the options.
  using Reader = std::function<Status(const Json& value, Options& options)>;
  // Reads several keys at once from the whole validated config (see fields_from).
  using ConfigReader = std::function<Status(const Config& config, Options& options)>;

  // Binds `key` to `member` (of Options or of a base class). `type` overrides the type deduced from
  // the member (kEnum, kDuration, kString for a path). A list's element type follows the member's
  // element type; element() replaces it.
  template <class T, class Base>
  ConfigFieldBuilder field(const std::string& key, T Base::*member, std::optional<ConfigType> type = {}) {
    ConfigFieldBuilder builder = field_without_default(key, member, type);
    if constexpr (!options_detail::IsOptional<T>::value) {
      const Options defaults{};
      Json value = options_detail::to_config_json(defaults.*as_member(member));
      if (!value.is_null()) builder.default_value(std::move(value));
    }
    return builder;
  }

  // Like field(), but the key has no default, whatever the member's initial value: absent, the member
  // keeps that value. For required keys and for members whose initial value means "not given" (e.g.
  // `limit = 0`: all) that the key's range excludes.
  template <class T, class Base>
  ConfigFieldBuilder field_without_default(const std::string& key, T Base::*member,
                                           std::optional<ConfigType> type = {}) {
    using Value = typename options_detail::Unwrapped<T>::Type;
    ConfigFieldBuilder builder = schema_.add(key, type.value_or(options_detail::config_type_of<T>()));
    if constexpr (options_detail::IsVector<Value>::value) {
      using Element = typename options_detail::IsVector<Value>::Value;
      if constexpr (!std::is_same_v<Element, Json>) builder.element(options_detail::config_type_of<Element>());
    }
    T Options::*bound = as_member(member);
    add_key_reader(key, [bound](const Json& value, Options& options) {
      options.*bound = options_detail::from_config_json<Value>(value);
      return Status::ok();
    });
    return builder;
  }

  // A key read by `reader` (members of types the config does not know: enums of the code, parsed
  // structures). The reader sees the validated, normalized value and may refuse it with a Status. The
  // key has no default unless one is given to the returned builder.
  ConfigFieldBuilder field_with(const std::string& key, ConfigType type, Reader reader) {
    add_key_reader(key, std::move(reader));
    return schema_.add(key, type);
  }

  // Keys that another declaration adds to a ConfigSchema (e.g. torch_tk::add_transform_fields), read
  // together into `member` by `read(const Config&) -> Result<T>`. Its errors are returned as they are.
  template <class T, class Base, class Add, class Read>
  void fields_from(T Base::*member, Add&& add, Read&& read) {
    add(schema_);
    T Options::*bound = as_member(member);
    readers_.push_back({std::string(), [bound, read = std::forward<Read>(read)](const Config& config,
                                                                                Options& options) -> Status {
                          Result<T> value = read(config);
                          if (!value) return std::move(value).take_status();
                          options.*bound = std::move(value).value();
                          return Status::ok();
                        }});
  }

  // A rule across keys, run on the options after every key is read (e.g. "nesterov needs a
  // momentum"); its Status is returned as it is.
  void check(std::function<Status(const Options&)> rule) { checks_.push_back(std::move(rule)); }

  const ConfigSchema& schema() const { return schema_; }

  // The options a validated config gives: Options{} with every key that has a value (given or default)
  // assigned, then the checks. Errors of a key's reader name the key.
  Result<Options> read(const Config& config) const {
    Options options{};
    for (const auto& [key, reader] : readers_) {
      try {
        Status status = reader(config, options);
        if (!status.is_ok()) return status;
      } catch (const std::exception& e) {
        if (key.empty()) return Status(ErrorCode::kInvalidArgument, std::string("config: ") + e.what());
        return Status(ErrorCode::kInvalidArgument, "config key '" + key + "': " + e.what());
      }
    }
    for (const auto& rule : checks_) {
      Status status = rule(options);
      if (!status.is_ok()) return status;
    }
    return options;
  }

 private:
  template <class T, class Base>
  static T Options::*as_member(T Base::*member) {
    static_assert(std::is_base_of_v<Base, Options>, "the member belongs neither to Options nor to a base of it");
    return member;
  }

  void add_key_reader(const std::string& key, Reader reader) {
    readers_.push_back({key, [key, reader = std::move(reader)](const Config& config, Options& options) -> Status {
                          if (!config.has(key)) return Status::ok();
                          Status status = reader(config.get(key), options);
                          if (!status.is_ok()) return std::move(status).with_context("config key '" + key + "'");
                          return status;
                        }});
  }

  ConfigSchema schema_;
  std::vector<std::pair<std::string, ConfigReader>> readers_;  // key (empty for fields_from), reader
  std::vector<std::function<Status(const Options&)>> checks_;
};

// Makes `factory` typed: its config schema is `options.schema()` and its make reads the options and
// passes them to `make`. `options` must outlive the factory (a function-local static). The make
// function is compiled into the plugin that calls this, so an exception from `make` is turned into a
// Status there and never crosses into the kernel.
template <class Options>
void bind_agent_options(AgentFactory& factory, const OptionsSchema<Options>& options,
                        std::function<Result<std::unique_ptr<Agent>>(Options)> make) {
  factory.config = options.schema();
  factory.make = [&options, make = std::move(make), id = factory.id](const Config& config)
      -> Result<std::unique_ptr<Agent>> {
    try {
      auto typed = options.read(config);
      if (!typed) return std::move(typed).take_status().with_context("agent '" + id + "'");
      return make(std::move(typed).value());
    } catch (const std::exception& e) {
      return Status(ErrorCode::kRuntime, "making agent '" + id + "' threw: " + e.what());
    }
  };
}

// The same for an agent class constructed from its options alone.
template <class AgentT, class Options>
void bind_agent_options(AgentFactory& factory, const OptionsSchema<Options>& options) {
  bind_agent_options<Options>(factory, options, [](Options typed) -> Result<std::unique_ptr<Agent>> {
    return std::unique_ptr<Agent>(std::make_unique<AgentT>(std::move(typed)));
  });
}

// The same for a provider factory: errors name the provider by its id.
template <class Options>
void bind_provider_options(ProviderFactory& factory, const OptionsSchema<Options>& options,
                           std::function<Result<std::unique_ptr<Provider>>(Options)> make) {
  factory.config = options.schema();
  factory.make = [&options, make = std::move(make), id = factory.id](const Config& config)
      -> Result<std::unique_ptr<Provider>> {
    try {
      auto typed = options.read(config);
      if (!typed) return std::move(typed).take_status().with_context("provider '" + id + "'");
      return make(std::move(typed).value());
    } catch (const std::exception& e) {
      return Status(ErrorCode::kRuntime, "making provider '" + id + "' threw: " + e.what());
    }
  };
}

// The same for a provider class constructed from its options alone.
template <class ProviderT, class Options>
void bind_provider_options(ProviderFactory& factory, const OptionsSchema<Options>& options) {
  bind_provider_options<Options>(factory, options, [](Options typed) -> Result<std::unique_ptr<Provider>> {
    return std::unique_ptr<Provider>(std::make_unique<ProviderT>(std::move(typed)));
  });
}

PROFAGENT_ABI_NAMESPACE_END
