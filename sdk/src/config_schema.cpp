#include "profagent/config_schema.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <system_error>
#include <utility>

#include "profagent/text.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN
namespace {

// Kept identical to what parse_duration_seconds() accepts, so the exported schema and the validator agree.
constexpr const char* kDurationPattern = R"(^([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|ms|s|m|h)?$)";
constexpr const char* kDurationHelp =
    "expected a number followed by one of the units ns, us, ms, s, m, h (e.g. \"90s\", \"1.5m\", \"250ms\"), "
    "or a bare number of seconds";
constexpr const char* kHidden = "***";
constexpr std::size_t kMaxShownChars = 80;

using Path = std::vector<std::string>;

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Bounds are doubles but people write integers: "maximum 1" reads better than "maximum 1.000000".
std::string format_number(double value) {
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15)
    return std::to_string(static_cast<long long>(value));
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.15g", value);
  return buffer;
}

// Long values (a whole list pasted in the wrong key) would drown the message; the start is enough.
std::string show(const Json& value, bool secret) {
  if (secret) return kHidden;
  std::string text = value.dump();
  if (text.size() > kMaxShownChars) text = text.substr(0, kMaxShownChars) + "...";
  return text;
}

std::string join_path(const Path& path) {
  std::string out;
  for (const auto& part : path) {
    if (!out.empty()) out += '.';
    out += part;
  }
  return out;
}

std::string issue_line(const ConfigIssue& issue) {
  return issue.path.empty() ? issue.message : join_path(issue.path) + ": " + issue.message;
}

std::optional<std::string> closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  auto matches = close_matches(word, candidates, 1);
  if (matches.empty()) return std::nullopt;
  return matches.front();
}

std::optional<std::int64_t> parse_int(const std::string& text, bool* out_of_range) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range) *out_of_range = true;
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

std::optional<double> parse_double(const std::string& text) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value, std::chars_format::general);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) return std::nullopt;
  return value;
}

// Scalars where text is expected: YAML `name: 123` arrives as a number though the person meant text.
std::optional<std::string> scalar_text(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return std::string(value.get<bool>() ? "true" : "false");
  if (value.is_number()) return value.dump();
  return std::nullopt;
}

// A person counts characters, not UTF-8 bytes.
std::size_t utf8_length(const std::string& text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](unsigned char c) { return (c & 0xC0) != 0x80; }));
}

std::string count_of(std::size_t n, const char* singular, const char* plural) {
  return std::to_string(n) + " " + (n == 1 ? singular : plural);
}

class Checker {
 public:
  // `choices_may_follow`: a builder default is checked before choices() may have been called.
  Checker(std::vector<ConfigIssue>& issues, bool choices_may_follow)
      : issues_(issues), choices_may_follow_(choices_may_follow) {}

  // The normalized value, or nullopt after recording at least one issue.
  std::optional<Json> check(const ConfigField& field, const Json& value, Path& path, bool secret) {
    secret = secret || field.secret;
    switch (field.type) {
      case ConfigType::kBool: return check_bool(value, path, secret);
      case ConfigType::kInt: return check_int(field, value, path, secret);
      case ConfigType::kFloat: return check_float(field, value, path, secret);
      case ConfigType::kString:
      case ConfigType::kPath: return check_text(field, value, path, secret);
      case ConfigType::kDuration: return check_duration(field, value, path, secret);
      case ConfigType::kEnum: return check_enum(field, value, path, secret);
      case ConfigType::kList: return check_list(field, value, path, secret);
      case ConfigType::kMap: return check_map(field, value, path, secret);
    }
    fail(path, "unknown config type");
    return std::nullopt;
  }

 private:
  void fail(const Path& path, std::string message) { issues_.push_back({path, std::move(message)}); }

  bool check_range(const ConfigField& field, double value, const std::string& label, const char* unit,
                   const Path& path) {
    if (field.min && value < *field.min) {
      fail(path, label + " is below the minimum " + format_number(*field.min) + unit);
      return false;
    }
    if (field.max && value > *field.max) {
      fail(path, label + " is above the maximum " + format_number(*field.max) + unit);
      return false;
    }
    return true;
  }

  bool check_size(const ConfigField& field, std::size_t size, const char* singular, const char* plural,
                  const Path& path) {
    const auto n = static_cast<double>(size);
    if (field.min && n < *field.min) {
      fail(path,
           "has " + count_of(size, singular, plural) + ", below the minimum " + format_number(*field.min));
      return false;
    }
    if (field.max && n > *field.max) {
      fail(path,
           "has " + count_of(size, singular, plural) + ", above the maximum " + format_number(*field.max));
      return false;
    }
    return true;
  }

  std::optional<Json> check_bool(const Json& value, const Path& path, bool secret) {
    if (value.is_boolean()) return value;
    // ${env:X} interpolation yields text, and shells spell booleans in any case.
    if (value.is_string()) {
      const std::string text = lower(value.get<std::string>());
      if (text == "true") return Json(true);
      if (text == "false") return Json(false);
    }
    fail(path, "expected a bool (true or false), got " + show(value, secret));
    return std::nullopt;
  }

  std::optional<Json> check_int(const ConfigField& field, const Json& value, const Path& path, bool secret) {
    std::optional<std::int64_t> number;
    bool out_of_range = false;
    if (value.is_number_unsigned()) {
      if (value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        out_of_range = true;
      else
        number = value.get<std::int64_t>();
    } else if (value.is_number_integer()) {
      number = value.get<std::int64_t>();
    } else if (value.is_string()) {
      number = parse_int(value.get<std::string>(), &out_of_range);
    }
    if (out_of_range) {
      fail(path, show(value, secret) + " does not fit a 64-bit integer");
      return std::nullopt;
    }
    if (!number) {
      fail(path, "expected an integer, got " + show(value, secret));
      return std::nullopt;
    }
    const std::string label = secret ? kHidden : std::to_string(*number);
    if (!check_range(field, static_cast<double>(*number), label, "", path)) return std::nullopt;
    return Json(*number);
  }

  std::optional<Json> check_float(const ConfigField& field, const Json& value, const Path& path,
                                  bool secret) {
    std::optional<double> number;
    if (value.is_number())
      number = value.get<double>();
    else if (value.is_string())
      number = parse_double(value.get<std::string>());
    if (!number) {
      fail(path, "expected a number, got " + show(value, secret));
      return std::nullopt;
    }
    const std::string label = secret ? kHidden : format_number(*number);
    if (!check_range(field, *number, label, "", path)) return std::nullopt;
    return Json(*number);
  }

  std::optional<Json> check_text(const ConfigField& field, const Json& value, const Path& path, bool secret) {
    const bool is_path = field.type == ConfigType::kPath;
    const std::optional<std::string> text = scalar_text(value);
    if (!text) {
      fail(path,
           std::string(is_path ? "expected a path" : "expected a string") + ", got " + show(value, secret));
      return std::nullopt;
    }
    if (is_path && text->empty()) {
      fail(path, "expected a non-empty path");
      return std::nullopt;
    }
    if (!check_size(field, utf8_length(*text), "character", "characters", path)) return std::nullopt;
    return Json(*text);
  }

  std::optional<Json> check_duration(const ConfigField& field, const Json& value, const Path& path,
                                     bool secret) {
    double seconds = 0;
    std::string label;
    if (value.is_number()) {
      seconds = value.get<double>();
      if (seconds < 0) {
        fail(path, "a duration cannot be negative, got " + show(value, secret));
        return std::nullopt;
      }
      label = format_number(seconds) + "s";
    } else if (value.is_string()) {
      Result<double> parsed = parse_duration_seconds(value.get<std::string>());
      if (!parsed) {
        fail(path, secret ? std::string("invalid duration ") + kHidden + ": " + kDurationHelp
                          : parsed.status().message());
        return std::nullopt;
      }
      seconds = *parsed;
      label = value.dump() + " (" + format_number(seconds) + "s)";
    } else {
      fail(path, std::string("expected a duration such as \"90s\" or a number of seconds, got ") +
                     show(value, secret));
      return std::nullopt;
    }
    if (!check_range(field, seconds, secret ? kHidden : label, "s", path)) return std::nullopt;
    return Json(seconds);
  }

  std::optional<Json> check_enum(const ConfigField& field, const Json& value, const Path& path, bool secret) {
    const std::optional<std::string> text = scalar_text(value);
    if (text && field.choices.empty() && choices_may_follow_) return Json(*text);
    if (text && std::find(field.choices.begin(), field.choices.end(), *text) != field.choices.end())
      return Json(*text);
    std::string message = show(value, secret) + " is not one of: " + join(field.choices, ", ");
    if (text && !secret) {
      if (auto suggestion = closest_match(*text, field.choices)) message += "; did you mean '" + *suggestion + "'?";
    }
    fail(path, std::move(message));
    return std::nullopt;
  }

  std::optional<Json> check_list(const ConfigField& field, const Json& value, Path& path, bool secret) {
    if (!value.is_array()) {
      fail(path, "expected a list, got " + show(value, secret));
      return std::nullopt;
    }
    if (!check_size(field, value.size(), "item", "items", path)) return std::nullopt;
    Json out = Json::array();
    bool ok = true;
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (!field.element) {
        out.push_back(value[i]);
        continue;
      }
      path.push_back(std::to_string(i));
      std::optional<Json> element = check(*field.element, value[i], path, secret);
      path.pop_back();
      if (element)
        out.push_back(std::move(*element));
      else
        ok = false;
    }
    if (!ok) return std::nullopt;
    return out;
  }

  std::optional<Json> check_map(const ConfigField& field, const Json& value, Path& path, bool secret) {
    if (!value.is_object()) {
      fail(path, "expected a map, got " + show(value, secret));
      return std::nullopt;
    }
    if (!check_size(field, value.size(), "entry", "entries", path)) return std::nullopt;
    Json out = Json::object();
    bool ok = true;
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (!field.element) {
        out[it.key()] = it.value();
        continue;
      }
      path.push_back(it.key());
      std::optional<Json> element = check(*field.element, it.value(), path, secret);
      path.pop_back();
      if (element)
        out[it.key()] = std::move(*element);
      else
        ok = false;
    }
    if (!ok) return std::nullopt;
    return out;
  }

  std::vector<ConfigIssue>& issues_;
  bool choices_may_follow_;
};

// Validates and normalizes the whole config block; both validate() and resolve() go through here so
// that they can never disagree.
Json check_config(const std::vector<ConfigField>& fields, const Json& input,
                  std::vector<ConfigIssue>& issues) {
  Json out = Json::object();
  if (input.is_null()) return check_config(fields, Json::object(), issues);
  if (!input.is_object()) {
    issues.push_back({{}, "expected a mapping of config keys, got " + show(input, false)});
    return out;
  }
  Checker checker(issues, false);
  for (const auto& field : fields) {
    const auto it = input.find(field.name);
    // YAML `key:` with nothing after it is null: the person gave no value, so the default applies.
    if (it == input.end() || it->is_null()) {
      if (field.default_value)
        out[field.name] = *field.default_value;
      else if (field.required)
        issues.push_back(
            {{field.name},
             it == input.end() ? "missing required key" : "missing required key (the value is empty)"});
      continue;
    }
    Path path{field.name};
    if (std::optional<Json> value = checker.check(field, *it, path, false))
      out[field.name] = std::move(*value);
  }
  std::vector<std::string> known;
  for (const auto& field : fields) known.push_back(field.name);
  for (auto it = input.begin(); it != input.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
    std::string message = "unknown key '" + it.key() + "'";
    message +=
        known.empty() ? " (this component takes no config keys)" : " (known: " + join(known, ", ") + ")";
    if (auto suggestion = closest_match(it.key(), known)) message += "; did you mean '" + *suggestion + "'?";
    issues.push_back({{it.key()}, std::move(message)});
  }
  return out;
}

bool has_secret(const ConfigField& field) {
  return field.secret || (field.element && has_secret(*field.element));
}

Json bound_json(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) return Json(static_cast<std::int64_t>(value));
  return Json(value);
}

// Sizes are whole numbers in JSON Schema; a fractional bound rounds inwards, as the validator behaves.
void put_size_bounds(Json& schema, const ConfigField& field, const char* min_key, const char* max_key,
                     double implicit_min = 0) {
  const double lo = std::max(implicit_min, field.min.value_or(implicit_min));
  if (lo > 0) schema[min_key] = static_cast<std::int64_t>(std::ceil(lo));
  if (field.max) schema[max_key] = static_cast<std::int64_t>(std::floor(*field.max));
}

void put_value_bounds(Json& schema, const ConfigField& field) {
  if (field.min) schema["minimum"] = bound_json(*field.min);
  if (field.max) schema["maximum"] = bound_json(*field.max);
}

Json property_schema(const ConfigField& field, bool top_level) {
  Json schema = Json::object();
  if (top_level || !field.description.empty()) schema["description"] = field.description;
  switch (field.type) {
    case ConfigType::kBool: schema["type"] = "boolean"; break;
    case ConfigType::kInt:
      schema["type"] = "integer";
      put_value_bounds(schema, field);
      break;
    case ConfigType::kFloat:
      schema["type"] = "number";
      put_value_bounds(schema, field);
      break;
    case ConfigType::kString:
      schema["type"] = "string";
      put_size_bounds(schema, field, "minLength", "maxLength");
      break;
    case ConfigType::kPath:
      schema["type"] = "string";
      schema["format"] = "path";
      put_size_bounds(schema, field, "minLength", "maxLength", 1);
      break;
    case ConfigType::kDuration:
      // The bounds apply to the number form (seconds); a pattern cannot express them for text.
      schema["type"] = Json::array({"string", "number"});
      schema["pattern"] = kDurationPattern;
      schema["minimum"] = bound_json(std::max(0.0, field.min.value_or(0.0)));
      if (field.max) schema["maximum"] = bound_json(*field.max);
      break;
    case ConfigType::kEnum:
      schema["type"] = "string";
      schema["enum"] = field.choices;
      break;
    case ConfigType::kList:
      schema["type"] = "array";
      if (field.element) schema["items"] = property_schema(*field.element, false);
      put_size_bounds(schema, field, "minItems", "maxItems");
      break;
    case ConfigType::kMap:
      schema["type"] = "object";
      if (field.element) schema["additionalProperties"] = property_schema(*field.element, false);
      put_size_bounds(schema, field, "minProperties", "maxProperties");
      break;
  }
  // A secret default would be published by --describe; its absence is the safe side.
  if (field.default_value && !has_secret(field)) schema["default"] = *field.default_value;
  if (field.secret) schema["writeOnly"] = true;
  return schema;
}

[[noreturn]] void programming_error(const ConfigField& field, const std::string& what) {
  throw StatusError(Status(ErrorCode::kInternal, "config field '" + field.name + "': " + what));
}

// Re-run whenever a constraint changes, so `.default_value(5).range(0, 3)` fails however it is ordered.
void normalize_default(ConfigField& field) {
  if (!field.default_value) return;
  std::vector<ConfigIssue> issues;
  Path path{field.name};
  Checker checker(issues, /*choices_may_follow=*/true);
  std::optional<Json> normalized = checker.check(field, *field.default_value, path, false);
  if (!normalized) {
    std::vector<std::string> lines;
    for (const auto& issue : issues) lines.push_back(issue_line(issue));
    programming_error(field, "invalid default (" + join(lines, "; ") + ")");
  }
  field.default_value = std::move(*normalized);
}

void check_bounds_apply(const ConfigField& field, const char* setter) {
  if (field.type == ConfigType::kBool || field.type == ConfigType::kEnum)
    programming_error(field,
                      std::string(setter) + "() does not apply to a " + to_string(field.type) + " field");
}

void check_bounds_order(const ConfigField& field) {
  if (field.min && field.max && *field.min > *field.max)
    programming_error(
        field, "minimum " + format_number(*field.min) + " is above maximum " + format_number(*field.max));
}

const Json& lookup(const Json& values, const std::string& key) {
  const auto it = values.find(key);
  if (it == values.end())
    throw StatusError(Status(ErrorCode::kNotFound, "config key '" + key + "' is not set"));
  return *it;
}

[[noreturn]] void wrong_type(const std::string& key, const Json& value, const char* wanted) {
  throw StatusError(Status(ErrorCode::kInvalidArgument,
                           "config key '" + key + "' holds a " + value.type_name() + ", not " + wanted));
}

}  // namespace

const char* to_string(ConfigType type) {
  switch (type) {
    case ConfigType::kBool: return "bool";
    case ConfigType::kInt: return "int";
    case ConfigType::kFloat: return "float";
    case ConfigType::kString: return "string";
    case ConfigType::kPath: return "path";
    case ConfigType::kDuration: return "duration";
    case ConfigType::kEnum: return "enum";
    case ConfigType::kList: return "list";
    case ConfigType::kMap: return "map";
  }
  return "unknown";
}

Result<double> parse_duration_seconds(const std::string& text) {
  auto invalid = [&text](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, "invalid duration \"" + text + "\": " + why);
  };
  if (text.empty()) return invalid(std::string("empty; ") + kDurationHelp);
  if (text[0] == '-') return invalid("a duration cannot be negative");
  std::size_t i = 0;
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  while (i < text.size() && is_digit(text[i])) ++i;
  const std::size_t int_digits = i;
  std::size_t frac_digits = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && is_digit(text[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return invalid(kDurationHelp);
  const std::string unit = text.substr(i);
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1;
  else if (unit == "ns")
    scale = 1e-9;
  else if (unit == "us")
    scale = 1e-6;
  else if (unit == "ms")
    scale = 1e-3;
  else if (unit == "m")
    scale = 60;
  else if (unit == "h")
    scale = 3600;
  else if (std::all_of(unit.begin(), unit.end(), [](unsigned char c) { return std::isalpha(c); }))
    return invalid("unknown unit '" + unit + "' (use ns, us, ms, s, m or h)");
  else
    return invalid(kDurationHelp);
  // from_chars does not take "5." everywhere; the trailing dot means nothing, so drop it.
  std::string number = text.substr(0, i);
  if (!number.empty() && number.back() == '.') number.pop_back();
  const std::optional<double> value = parse_double(number);
  if (!value || !std::isfinite(*value * scale)) return invalid("the number is out of range");
  return *value * scale;
}

// ---- ConfigFieldBuilder ----

ConfigField& ConfigFieldBuilder::field() { return schema_->fields_.at(index_); }

ConfigFieldBuilder& ConfigFieldBuilder::describe(std::string text) {
  field().description = std::move(text);
  return *this;
}

ConfigFieldBuilder& ConfigFieldBuilder::default_value(Json value) {
  ConfigField& f = field();
  f.default_value = std::move(value);
  normalize_default(f);
  return *this;
}

ConfigFieldBuilder& ConfigFieldBuilder::required(bool yes) {
  field().required = yes;
  return *this;
}

ConfigFieldBuilder& ConfigFieldBuilder::min(double value) {
  ConfigField& f = field();
  check_bounds_apply(f, "min");
  if (std::isnan(value)) programming_error(f, "min() is NaN");
  f.min = value;
  check_bounds_order(f);
  normalize_default(f);
  return *this;
}

ConfigFieldBuilder& ConfigFieldBuilder::max(double value) {
  ConfigField& f = field();
  check_bounds_apply(f, "max");
  if (std::isnan(value)) programming_error(f, "max() is NaN");
  f.max = value;
  check_bounds_order(f);
  normalize_default(f);
  return *this;
}

ConfigFieldBuilder& ConfigFieldBuilder::choices(std::vector<std::string> values) {
  ConfigField& f = field();
  if (f.type != ConfigType::kEnum)
    programming_error(f, std::string("choices() applies to enum fields, not ") + to_string(f.type));
  if (values.empty()) programming_error(f, "an enum needs at least one choice");
  f.choices = std::move(values);
  normalize_default(f);
  return *this;
}

ConfigFieldBuilder& ConfigFieldBuilder::element(ConfigField element) {
  ConfigField& f = field();
  if (f.type != ConfigType::kList && f.type != ConfigType::kMap)
    programming_error(f, std::string("element() applies to list and map fields, not ") + to_string(f.type));
  if (element.name.empty()) element.name = f.name + "[]";
  f.element = std::make_shared<ConfigField>(std::move(element));
  normalize_default(f);
  return *this;
}

ConfigFieldBuilder& ConfigFieldBuilder::element(ConfigType type) {
  ConfigField e;
  e.type = type;
  return element(std::move(e));
}

ConfigFieldBuilder& ConfigFieldBuilder::secret(bool yes) {
  field().secret = yes;
  return *this;
}

ConfigFieldBuilder& ConfigFieldBuilder::names_provider(std::string interface) {
  field().provider_interface = std::move(interface);
  return *this;
}

ConfigFieldBuilder& ConfigFieldBuilder::configures_provider(std::string key) {
  field().provider_key = std::move(key);
  return *this;
}

// ---- Config ----

bool Config::has(const std::string& key) const { return values_.contains(key); }

const Json& Config::get(const std::string& key) const { return lookup(values_, key); }

bool Config::get_bool(const std::string& key) const {
  const Json& value = lookup(values_, key);
  if (!value.is_boolean()) wrong_type(key, value, "a bool");
  return value.get<bool>();
}

std::int64_t Config::get_int(const std::string& key) const {
  const Json& value = lookup(values_, key);
  if (!value.is_number_integer()) wrong_type(key, value, "an integer");
  if (value.is_number_unsigned() &&
      value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    throw StatusError(
        Status(ErrorCode::kInvalidArgument, "config key '" + key + "' does not fit a 64-bit integer"));
  return value.get<std::int64_t>();
}

double Config::get_float(const std::string& key) const {
  const Json& value = lookup(values_, key);
  if (!value.is_number()) wrong_type(key, value, "a number");
  return value.get<double>();
}

std::string Config::get_string(const std::string& key) const {
  const Json& value = lookup(values_, key);
  if (!value.is_string()) wrong_type(key, value, "a string");
  return value.get<std::string>();
}

std::filesystem::path Config::get_path(const std::string& key) const {
  const Json& value = lookup(values_, key);
  if (!value.is_string()) wrong_type(key, value, "a path");
  return std::filesystem::path(value.get<std::string>());
}

std::chrono::duration<double> Config::get_duration(const std::string& key) const {
  const Json& value = lookup(values_, key);
  if (!value.is_number()) wrong_type(key, value, "a duration in seconds");
  return std::chrono::duration<double>(value.get<double>());
}

std::vector<Json> Config::get_list(const std::string& key) const {
  const Json& value = lookup(values_, key);
  if (!value.is_array()) wrong_type(key, value, "a list");
  return std::vector<Json>(value.begin(), value.end());
}

Json Config::redacted() const {
  Json out = values_;
  for (const auto& key : secret_keys_) {
    if (out.contains(key)) out[key] = kHidden;
  }
  return out;
}

// ---- ConfigSchema ----

ConfigFieldBuilder ConfigSchema::add(std::string name, ConfigType type) {
  if (name.empty()) throw StatusError(Status(ErrorCode::kInternal, "a config field needs a name"));
  if (find(name) != nullptr)
    throw StatusError(Status(ErrorCode::kInternal, "config field '" + name + "' is declared twice"));
  ConfigField field;
  field.name = std::move(name);
  field.type = type;
  fields_.push_back(std::move(field));
  return ConfigFieldBuilder(this, fields_.size() - 1);
}

const ConfigField* ConfigSchema::find(const std::string& name) const {
  const auto it =
      std::find_if(fields_.begin(), fields_.end(), [&](const ConfigField& f) { return f.name == name; });
  return it == fields_.end() ? nullptr : &*it;
}

std::vector<ConfigIssue> ConfigSchema::validate(const Json& input) const {
  std::vector<ConfigIssue> issues;
  (void)check_config(fields_, input, issues);
  return issues;
}

Result<Config> ConfigSchema::resolve(const Json& input) const {
  std::vector<ConfigIssue> issues;
  Json values = check_config(fields_, input, issues);
  if (!issues.empty()) {
    std::vector<std::string> lines;
    for (const auto& issue : issues) lines.push_back(issue_line(issue));
    return Status(ErrorCode::kValidation, join(lines, "\n"));
  }
  std::vector<std::string> secret_keys;
  for (const auto& field : fields_) {
    if (has_secret(field)) secret_keys.push_back(field.name);
  }
  return Config(std::move(values), std::move(secret_keys));
}

Json ConfigSchema::to_json_schema() const {
  Json properties = Json::object();
  Json required = Json::array();
  for (const auto& field : fields_) {
    properties[field.name] = property_schema(field, true);
    if (field.required) required.push_back(field.name);
  }
  Json schema = Json::object();
  schema["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  schema["type"] = "object";
  schema["properties"] = std::move(properties);
  schema["required"] = std::move(required);
  schema["additionalProperties"] = false;
  return schema;
}

PROFAGENT_ABI_NAMESPACE_END
